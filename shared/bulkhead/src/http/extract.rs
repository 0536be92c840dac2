//! Request extractors with clear rejections: JSON bodies, query and path parameters, ids.

use super::Problem;
use super::headers::header_str;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, request::Parts};
use serde::de::DeserializeOwned;

/// The largest request body a command accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON request body: 415 unless the content type is JSON, 413 over [`MAX_BODY_BYTES`],
/// 400 when it is not JSON, 422 when it is JSON of the wrong shape.
#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let content_type = header_str(request.headers(), "content-type").unwrap_or_default();
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json"
            && !(mime.starts_with("application/") && mime.ends_with("+json"))
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the body must be application/json",
            ));
        }
        let raw = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    format!("the body must be at most {MAX_BODY_BYTES} bytes"),
                )
            })?;
        let value = parse_json(&raw)?;
        Ok(JsonBody { value, raw })
    }
}

/// Parses JSON: 400 for bytes that are not JSON, 422 for JSON that does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(raw).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Problem::unprocessable("invalid-body", e.to_string()),
        _ => Problem::bad_request("malformed-json", e.to_string()),
    })
}

/// Query parameters, with a 400 problem when they do not parse.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| Problem::bad_request("invalid-query", e.body_text()))
    }
}

/// Path parameters, with a 400 problem when they do not decode (such as invalid UTF-8).
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| Problem::bad_request("invalid-path", e.body_text()))
    }
}

/// Validates an identifier taken from a path: 1 to 64 letters, digits, `-` or `_`.
pub fn valid_id(kind: &str, id: &str) -> Result<(), Problem> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(
            &format!("invalid-{}", kind.replace(' ', "-")),
            format!("{id:?} is not a valid {kind}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn bad_json_is_400_and_wrong_shape_is_422() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            n: u32,
        }
        assert_eq!(
            parse_json::<Body>(b"{").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_json::<Body>(&[0xff, 0xfe]).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_json::<Body>(br#"{"n": "x"}"#).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let deep = "[".repeat(10_000);
        assert!(
            parse_json::<Body>(deep.as_bytes())
                .unwrap_err()
                .status
                .is_client_error()
        );
        assert_eq!(
            parse_json::<Value>(deep.as_bytes()).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
