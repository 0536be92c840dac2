//! Request extractors with clear rejections: JSON bodies, query and path parameters, ids.

use super::Problem;
use super::headers::header_str;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, request::Parts};
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Unexpected, Visitor};
use serde_json::Value;

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

/// Parses JSON: 400 for bytes that are not JSON, 422 for JSON that does not fit `T`,
/// including an array where `T` has an object (see `Strict`).
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    let value: Value = serde_json::from_slice(raw).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Problem::unprocessable("invalid-body", e.to_string()),
        _ => Problem::bad_request("malformed-json", e.to_string()),
    })?;
    T::deserialize(Strict(value)).map_err(|e| Problem::unprocessable("invalid-body", e.to_string()))
}

/// A JSON value that deserializes a struct from an object only. serde's derived structs
/// also accept their fields as an array in order (`[["A1", 1]]` for `[{"sku", "quantity"}]`),
/// which serde_json allows and no client of this API means. Everything else is as
/// serde_json's own `Value` deserializer does it; nested values stay strict.
struct Strict(Value);

impl<'de> IntoDeserializer<'de, serde_json::Error> for Strict {
    type Deserializer = Strict;

    fn into_deserializer(self) -> Strict {
        self
    }
}

impl Strict {
    fn visit_object<'de, V: Visitor<'de>>(
        object: serde_json::Map<String, Value>,
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        let mut map = MapDeserializer::new(object.into_iter().map(|(k, v)| (k, Strict(v))));
        let value = visitor.visit_map(&mut map)?;
        map.end()?;
        Ok(value)
    }
}

impl<'de> Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(Strict));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(object) => Strict::visit_object(object, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(object) => Strict::visit_object(object, visitor),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Unexpected::Signed(i),
            (_, Some(u), _) => Unexpected::Unsigned(u),
            (_, _, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
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

    #[test]
    fn an_array_is_never_read_as_a_struct_at_any_depth() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Line {
            sku: String,
            quantity: i64,
            note: Option<String>,
        }
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Order {
            lines: Vec<Line>,
        }
        let parse = |body: &str| parse_json::<Order>(body.as_bytes());
        let ok = parse(
            r#"{"lines": [{"sku": "A1", "quantity": 2}, {"sku": "B", "quantity": 1, "note": "x"}]}"#,
        );
        assert_eq!(ok.unwrap().lines[1].note.as_deref(), Some("x"));
        for wrong in [
            r#"{"lines": [["A1", 1]]}"#,
            r#"{"lines": [["A1", 1, null]]}"#,
            r#"[[{"sku": "A1", "quantity": 1}]]"#,
            r#"{"lines": [{"sku": "A1", "quantity": 1, "colour": "red"}]}"#,
            r#"{"lines": [{"sku": "A1"}]}"#,
            r#"{"lines": {"sku": "A1", "quantity": 1}}"#,
            r#"{"lines": [{"sku": "A1", "quantity": 1.5}]}"#,
            r#"{"lines": [{"sku": "A1", "quantity": "1"}]}"#,
        ] {
            let problem = parse(wrong).unwrap_err();
            assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
        }
        let value = parse_json::<Value>(br#"{"a": [1, {"b": null}]}"#).unwrap();
        assert_eq!(value, serde_json::json!({"a": [1, {"b": null}]}));
    }
}
