//! HTTP helpers for the API functions: problem+json errors, the caller's claims, JSON bodies
//! with clear rejections, versions and idempotency keys from headers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

mod role;
pub use role::Role;

/// The largest request body a command accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An RFC 9457 problem: every error answer of the API.
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    /// Stable and machine-readable, such as `invalid-quantity`.
    pub code: String,
    pub detail: String,
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code: code.into(),
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    /// Adds a member to the problem document.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }
    pub fn forbidden(role: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this action needs the role {role}"),
        )
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{} was not found", what.into()),
        )
    }
    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the service failed; try again",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("urn:bulkhead:problem:{}", self.code)),
        );
        body.insert(
            "title".into(),
            json!(self.status.canonical_reason().unwrap_or("Error")),
        );
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("code".into(), json!(self.code));
        body.insert("detail".into(), json!(self.detail));
        body.extend(self.extra);
        let mut response = (self.status, Value::Object(body).to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<crate::Error> for Problem {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::InvalidCursor => {
                Problem::bad_request("invalid-cursor", "the cursor is not valid for this list")
            }
            e => {
                tracing::error!(error = %e, "request failed");
                Problem::internal()
            }
        }
    }
}

/// The authenticated caller, from the JWT claims that API Gateway's authorizer passes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    pub roles: Vec<String>,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r == role.name())
    }

    /// `Ok` when the caller has the role, 403 otherwise.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(Problem::forbidden(role.name()))
        }
    }

    fn from_context(context: Option<&RequestContext>) -> Option<Caller> {
        #[allow(irrefutable_let_patterns)]
        let Some(RequestContext::ApiGatewayV2(context)) = context else {
            return None;
        };
        let claims = &context.authorizer.as_ref()?.jwt.as_ref()?.claims;
        let sub = claims.get("sub").filter(|s| !s.is_empty())?.clone();
        let roles = claims
            .get("cognito:groups")
            .map(|g| parse_groups(g))
            .unwrap_or_default();
        Some(Caller { sub, roles })
    }
}

/// Reads `cognito:groups` in JSON array form (`["a","b"]`) or in API Gateway's string form
/// (`[a b]`), or a single plain group.
pub fn parse_groups(value: &str) -> Vec<String> {
    if let Ok(groups) = serde_json::from_str::<Vec<String>>(value) {
        return groups;
    }
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|g| g.trim_matches('"'))
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect()
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Caller::from_context(parts.extensions.get::<RequestContext>())
            .ok_or_else(Problem::unauthorized)
    }
}

/// Where a request came from: the ids that events carry as correlation and causation.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    pub request_id: String,
    pub correlation_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        #[allow(irrefutable_let_patterns)]
        let request_id = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
            _ => None,
        }
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let correlation_id = header_str(&parts.headers, "x-correlation-id")
            .filter(|c| !c.is_empty() && c.len() <= 128)
            .map(String::from)
            .unwrap_or_else(|| request_id.clone());
        Ok(RequestMeta {
            request_id,
            correlation_id,
        })
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

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

/// The version in `If-Match`, if any: `3`, `"3"` or `W/"3"`. `*` means any version.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| Problem::bad_request("invalid-if-match", "If-Match must be a version number"))
}

/// The `Idempotency-Key` header, if any: 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_string()))
        }
        _ => Err(Problem::bad_request(
            "invalid-idempotency-key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// The strong entity tag of a version.
pub fn etag(version: u64) -> [(header::HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}

/// A JSON answer with a status.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Adds the problem+json answers for unknown routes and methods.
pub fn with_fallbacks(router: Router) -> Router {
    async fn not_found() -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "no-route", "no such route")
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
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

/// `?minVersion=N&maxWaitMs=W` on a view read.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    #[param(schema_with = min_version_param)]
    pub min_version: Option<u64>,
    #[param(schema_with = max_wait_param)]
    pub max_wait_ms: Option<u64>,
}

fn min_version_param() -> utoipa::openapi::schema::Object {
    crate::openapi::unsigned(
        "Read your writes: wait, polling the view with backoff, until it has this version or \
         a newer one. Still behind at the end of the wait: 412 `view-behind` with \
         `currentVersion` (0 when the view has not seen it) and `minVersion`. With it, an item \
         the caller may not see (or that does not exist) also ends in 412, never 404.",
    )
}

fn max_wait_param() -> utoipa::openapi::schema::Object {
    crate::openapi::unsigned(
        "How long `minVersion` may wait, in milliseconds. The default, and the ceiling of \
         larger values, is the function's `MIN_VERSION_MAX_WAIT_MS` (3000 in template.yaml).",
    )
}

/// Reads a view item until it has at least `query.min_version`, polling with backoff for
/// at most `query.max_wait_ms`, capped at `ceiling`. `read` answers the item and its
/// version, or `None` when the view has nothing this caller may see.
///
/// Without `minVersion`, a missing item is 404. With it, an item still behind at the end
/// of the wait is 412 `view-behind`, with `currentVersion` (0 when missing).
pub async fn read_at_least<T, F, Fut>(
    query: VersionQuery,
    ceiling: std::time::Duration,
    what: &str,
    mut read: F,
) -> Result<T, Problem>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::Result<Option<(T, u64)>>>,
{
    use std::time::{Duration, Instant};
    let wait = query
        .max_wait_ms
        .map_or(ceiling, Duration::from_millis)
        .min(ceiling);
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        let found = read().await?;
        let current = found.as_ref().map_or(0, |(_, v)| *v);
        match (found, query.min_version) {
            (Some((item, _)), None) => return Ok(item),
            (Some((item, version)), Some(min)) if version >= min => return Ok(item),
            (None, None) => return Err(Problem::not_found(what)),
            (_, Some(min)) if Instant::now() >= deadline => {
                return Err(Problem::new(
                    StatusCode::PRECONDITION_FAILED,
                    "view-behind",
                    format!("the view has version {current} of {what}, not yet {min}; try again"),
                )
                .with("currentVersion", current)
                .with("minVersion", min));
            }
            _ => {
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// `?limit=N&cursor=C` on a list, with the limit checked against `max`.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20); else 400 `invalid-limit` (or `invalid-query` when
    /// not a number).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<usize>,
    /// The opaque `cursor` of the previous page of the same list; one that is not answers 400
    /// `invalid-cursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, Problem> {
        let limit = self.limit.unwrap_or(default);
        if (1..=max).contains(&limit) {
            Ok(limit)
        } else {
            Err(Problem::bad_request(
                "invalid-limit",
                format!("limit must be between 1 and {max}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_parse_in_every_form_api_gateway_sends() {
        assert_eq!(parse_groups("[customer staff]"), ["customer", "staff"]);
        assert_eq!(
            parse_groups(r#"["customer","staff"]"#),
            ["customer", "staff"]
        );
        assert_eq!(parse_groups("staff"), ["staff"]);
        assert!(parse_groups("[]").is_empty());
    }

    #[test]
    fn if_match_accepts_plain_quoted_and_weak_versions() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_MATCH, v.parse().unwrap());
            if_match(&h)
        };
        assert_eq!(with("3").unwrap(), Some(3));
        assert_eq!(with("\"4\"").unwrap(), Some(4));
        assert_eq!(with("W/\"5\"").unwrap(), Some(5));
        assert_eq!(with("*").unwrap(), None);
        assert_eq!(with("abc").unwrap_err().status, StatusCode::BAD_REQUEST);
    }

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
