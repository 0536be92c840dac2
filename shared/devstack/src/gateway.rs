//! The HTTP front: API Gateway's routing and JWT authorizer, then each request as an
//! API Gateway HTTP API (v2) event into the function's `lambda_http` adapter, exactly the
//! path it takes in Lambda. The devstack's own endpoints are in [`crate::admin`].

use crate::admin::{Admin, StreamConsumer};
use crate::auth::Auth;
use crate::faults::Faults;
use crate::infra::Infra;
use crate::template::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bulkhead::http::Problem;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, RequestExt};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tower::ServiceExt;

/// API Gateway's payload limit.
pub(crate) const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

struct GatewayRoute {
    method: String,
    path: String,
    segments: Vec<String>,
    function: String,
    service: String,
}

impl GatewayRoute {
    /// The path parameters, when this route matches.
    fn matches(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        if self.method != "ANY" && self.method != method {
            return None;
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if !part.is_empty() => {
                    params.insert(name.to_string(), percent_decode(part));
                }
                Some(_) => return None,
                None if segment == part => {}
                None => return None,
            }
        }
        Some(params)
    }
}

pub struct Gateway {
    routes: Vec<GatewayRoute>,
    functions: HashMap<String, Router>,
    auth: Auth,
    faults: Arc<Faults>,
    admin: Admin,
    allow_remote: bool,
}

impl Gateway {
    pub fn new(
        template: &Template,
        functions: HashMap<String, Router>,
        auth: Auth,
        faults: Arc<Faults>,
        infra: Arc<dyn Infra>,
        streams: Vec<StreamConsumer>,
        rebuilder: Arc<crate::rebuild::Rebuilder>,
    ) -> Self {
        let mut routes = vec![];
        for f in &template.functions {
            for r in &f.routes {
                routes.push(GatewayRoute {
                    method: r.method.clone(),
                    path: r.path.clone(),
                    segments: r
                        .path
                        .trim_start_matches('/')
                        .split('/')
                        .map(String::from)
                        .collect(),
                    function: f.name.clone(),
                    service: f.service.clone(),
                });
            }
        }
        // Literal segments win over parameters, as in API Gateway.
        routes.sort_by_key(|r| {
            std::cmp::Reverse(r.segments.iter().filter(|s| !s.starts_with('{')).count())
        });
        Gateway {
            routes,
            functions,
            auth,
            admin: Admin::new(template, faults.clone(), infra, streams, rebuilder),
            faults,
            allow_remote: false,
        }
    }

    /// Serve any `Host` and `Origin` (see [`crate::Config::allow_remote`]).
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    pub fn into_router(self) -> Router {
        let gateway = Arc::new(self);
        Router::new().fallback(move |request: Request| {
            let gateway = gateway.clone();
            async move {
                tokio::spawn(handle(gateway, request))
                    .await
                    .unwrap_or_else(|_| Problem::internal().into_response())
            }
        })
    }
}

async fn handle(gateway: Arc<Gateway>, request: Request) -> Response {
    if !gateway.allow_remote
        && let Err(problem) = local(request.headers())
    {
        return problem.into_response();
    }
    let path = request.uri().path().to_string();
    if Admin::serves(request.method(), &path) {
        return gateway.admin.handle(request).await;
    }
    let method = request.method().as_str().to_string();
    let Some((route, params)) = gateway
        .routes
        .iter()
        .find_map(|r| r.matches(&method, &path).map(|p| (r, p)))
    else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "no-route",
            format!("no route for {method} {path}"),
        )
        .into_response();
    };
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(claims) = gateway.auth.verify(authorization) else {
        let mut response = Problem::unauthorized().into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    if gateway.faults.is_down(&route.service) {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-down",
            format!("{} is down", route.service),
        )
        .into_response();
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(problem) => return problem.into_response(),
    };
    let event = api_gateway_event(route, &parts, &params, claims, &body);
    let router = gateway.functions[&route.function].clone();
    invoke(router, event).await
}

/// The whole body, up to [`MAX_PAYLOAD`], if the client sends it within
/// [`crate::serve::BODY_READ_TIMEOUT`].
pub(crate) async fn read_body(body: Body) -> Result<Bytes, Problem> {
    match tokio::time::timeout(
        crate::serve::BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_PAYLOAD),
    )
    .await
    {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "the request is larger than 10 MB",
        )),
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "the body did not arrive in time",
        )),
    }
}

/// The API Gateway HTTP API payload (version 2.0) for this request.
fn api_gateway_event(
    route: &GatewayRoute,
    parts: &axum::http::request::Parts,
    params: &BTreeMap<String, String>,
    claims: HashMap<String, String>,
    body: &Bytes,
) -> Value {
    let mut headers = Map::new();
    let mut cookies = vec![];
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).to_string();
        if name == header::COOKIE {
            cookies.extend(value.split(';').map(|c| c.trim().to_string()));
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    let raw_query = parts.uri.query().unwrap_or_default().to_string();
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        match query.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k, Value::String(v));
            }
        }
    }
    let route_key = format!("{} {}", route.method, route.path);
    let now = chrono::Utc::now();
    let (body, encoded) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.into()), false),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "cookies": cookies,
        "headers": headers,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "pathParameters": if params.is_empty() { Value::Null } else { json!(params) },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "devstack",
            "authorizer": { "jwt": { "claims": claims, "scopes": null } },
            "domainName": parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": "devstack",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": parts.headers.get(header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": body,
        "isBase64Encoded": encoded,
    })
}

/// Runs the function's router on the request that `lambda_http` makes of the event, as
/// `lambda_http::run` does, with the Lambda context attached.
pub(crate) async fn invoke(router: Router, event: Value) -> Response {
    let request: LambdaRequest = match serde_json::from_value(event) {
        Ok(request) => request,
        Err(e) => {
            tracing::error!(error = %e, "could not build the API Gateway event");
            return Problem::internal().into_response();
        }
    };
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    let request: lambda_http::Request =
        lambda_http::Request::from(request).with_lambda_context(context);
    let request = request.map(|body| Body::from(Bytes::copy_from_slice(&body)));
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(e) => match e {},
    }
}

/// Percent-decodes a path segment (`+` stays `+`, as in a path).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether a name (a `Host` without its port, or an origin's host) is this machine.
fn loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses a request that a web page elsewhere could have sent: a `Host` that is not
/// loopback (DNS rebinding: a foreign name resolving to 127.0.0.1) or an `Origin` that is
/// not a loopback `http`/`https` origin (`null` included). A request without `Origin`, as
/// from curl or a test, passes.
fn local(headers: &axum::http::HeaderMap) -> Result<(), Problem> {
    let refuse = |what: &str| {
        Problem::new(
            StatusCode::FORBIDDEN,
            "foreign-origin",
            format!("{what}: the devstack serves this machine only (see --allow-remote)"),
        )
    };
    if let Some(host) = headers.get(axum::http::header::HOST) {
        let authority = host
            .to_str()
            .ok()
            .and_then(|h| h.parse::<axum::http::uri::Authority>().ok());
        if !authority.is_some_and(|a| loopback(a.host())) {
            return Err(refuse("Host is not loopback"));
        }
    }
    if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
        let uri = origin
            .to_str()
            .ok()
            .and_then(|o| o.parse::<axum::http::Uri>().ok());
        let ok = uri.is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(loopback)
        });
        if !ok {
            return Err(refuse("Origin is not this machine"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> GatewayRoute {
        GatewayRoute {
            method: "DELETE".into(),
            path: path.into(),
            segments: path
                .trim_start_matches('/')
                .split('/')
                .map(String::from)
                .collect(),
            function: "f".into(),
            service: "s".into(),
        }
    }

    #[test]
    fn only_requests_from_this_machine_pass() {
        let with = |pairs: &[(&'static str, &str)]| {
            let mut headers = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                headers.insert(*k, v.parse().unwrap());
            }
            local(&headers).is_ok()
        };
        for host in [
            "127.0.0.1:3000",
            "localhost",
            "LOCALHOST:1",
            "[::1]:3000",
            "127.9.9.9",
        ] {
            assert!(with(&[("host", host)]), "{host}");
        }
        for host in [
            "evil.example:3000",
            "127.0.0.1.evil.example",
            "0.0.0.0",
            "10.0.0.1:3000",
            "",
        ] {
            assert!(!with(&[("host", host)]), "{host}");
        }
        assert!(with(&[]));
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "https://[::1]",
        ] {
            assert!(
                with(&[("host", "127.0.0.1:3000"), ("origin", origin)]),
                "{origin}"
            );
        }
        for origin in [
            "null",
            "http://evil.example",
            "file://",
            "http://localhost.evil.example",
            "chrome-extension://abc",
        ] {
            assert!(
                !with(&[("host", "127.0.0.1:3000"), ("origin", origin)]),
                "{origin}"
            );
        }
    }

    #[test]
    fn routes_match_like_api_gateway() {
        let r = route("/orders/{id}/lines/{sku}");
        let params = r.matches("DELETE", "/orders/o-1/lines/A%201").unwrap();
        assert_eq!(params["id"], "o-1");
        assert_eq!(params["sku"], "A 1");
        assert!(r.matches("GET", "/orders/o-1/lines/A1").is_none());
        assert!(r.matches("DELETE", "/orders/o-1/lines").is_none());
        assert!(r.matches("DELETE", "/orders//lines/A1").is_none());
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
