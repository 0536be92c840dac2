//! The HTTP front: API Gateway's routing and JWT authorizer, then each request as an
//! API Gateway HTTP API (v2) event into the function's `lambda_http` adapter, exactly the
//! path it takes in Lambda. Also the devstack's own endpoints under `/_devstack/`.

use crate::auth::Auth;
use crate::faults::Faults;
use crate::infra::{ARCHIVE, Infra};
use crate::pollers::Progress;
use crate::template::{QueueSpec, Template};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
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
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

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

/// A stream poller, as the status sees it.
pub struct StreamConsumer {
    pub name: String,
    pub table: String,
    pub progress: Arc<Progress>,
}

pub struct Gateway {
    routes: Vec<GatewayRoute>,
    functions: HashMap<String, Router>,
    auth: Auth,
    faults: Arc<Faults>,
    infra: Arc<dyn Infra>,
    queues: BTreeMap<String, QueueSpec>,
    streams: Vec<StreamConsumer>,
    tables: Vec<String>,
    /// The API's OpenAPI document, served unauthenticated at `GET /openapi.json`.
    openapi: Bytes,
}

impl Gateway {
    pub fn new(
        template: &Template,
        functions: HashMap<String, Router>,
        auth: Auth,
        faults: Arc<Faults>,
        infra: Arc<dyn Infra>,
        streams: Vec<StreamConsumer>,
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
            faults,
            infra,
            queues: template.queues.clone(),
            streams,
            tables: template.tables.keys().cloned().collect(),
            openapi: Bytes::from(crate::openapi::text()),
        }
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

    /// Queue depths, stream lags and what is down: what a test waits on to drain.
    pub async fn status(&self) -> bulkhead::Result<Value> {
        let mut queues = Map::new();
        for q in self.queues.keys() {
            queues.insert(q.clone(), serde_json::to_value(self.infra.depth(q).await?)?);
        }
        let mut streams = Map::new();
        for consumer in &self.streams {
            let lag = match self
                .infra
                .stream_lag(&consumer.name, &consumer.table)
                .await?
            {
                Some(lag) => lag,
                None => i64::from(!consumer.progress.caught_up().await),
            };
            streams.insert(consumer.name.clone(), json!({ "lag": lag }));
        }
        Ok(json!({
            "down": self.faults.down(),
            "faults": self.faults.plan(),
            "injected": self.faults.injected(),
            "queues": queues,
            "streams": streams,
        }))
    }

    /// Moves every message of a dead-letter queue back to the queue it came from, as SQS's
    /// dead-letter queue redrive does. Answers how many moved.
    async fn redrive(&self, dlq: &str) -> Result<usize, Problem> {
        let (Some(spec), Some(source)) = (
            self.queues.get(dlq),
            self.queues.values().find(|q| {
                q.redrive
                    .as_ref()
                    .is_some_and(|r| r.dead_letter_queue == dlq)
            }),
        ) else {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "no-dead-letter-queue",
                format!("{dlq} is not any queue's dead-letter queue"),
            ));
        };
        let dead = self.infra.queue(spec)?;
        let mut moved = 0;
        loop {
            let messages = dead.receive(10, 30_000).await?;
            if messages.is_empty() {
                return Ok(moved);
            }
            for message in &messages {
                self.infra.send(&source.name, message.body.clone()).await?;
            }
            dead.delete(&messages).await?;
            moved += messages.len();
        }
    }
}

async fn handle(gateway: Arc<Gateway>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    if path == "/openapi.json" && request.method() == Method::GET {
        let document = gateway.openapi.clone();
        return ([(header::CONTENT_TYPE, "application/json")], document).into_response();
    }
    if let Some(admin) = path.strip_prefix("/_devstack/") {
        return devstack_endpoint(&gateway, admin.to_string(), request)
            .await
            .unwrap_or_else(|p| p.into_response());
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
    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "the request is larger than 10 MB",
        )
        .into_response();
    };
    let event = api_gateway_event(route, &parts, &params, claims, &body);
    let router = gateway.functions[&route.function].clone();
    invoke(router, event).await
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
async fn invoke(router: Router, event: Value) -> Response {
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

/// The devstack's own endpoints.
async fn devstack_endpoint(
    gateway: &Gateway,
    path: String,
    request: Request,
) -> Result<Response, Problem> {
    let method = request.method().clone();
    let segments: Vec<&str> = path.split('/').collect();
    let body = axum::body::to_bytes(request.into_body(), MAX_PAYLOAD)
        .await
        .map_err(|_| Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", "too large"))?;
    let ok = |v: Value| Ok(axum::Json(v).into_response());
    match (method, segments.as_slice()) {
        (Method::GET, ["status"]) => ok(gateway.status().await?),
        (Method::PUT, ["faults"]) | (Method::POST, ["faults"]) => {
            let plan: crate::faults::Plan = bulkhead::http::parse_json(&body)?;
            plan.validate().map_err(|e| {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-fault-plan", e)
            })?;
            gateway.faults.set(plan);
            ok(gateway.status().await?)
        }
        (Method::GET, ["archives", ARCHIVE, "events"]) => {
            ok(json!(gateway.infra.archived().await?))
        }
        (Method::GET, ["queues", queue, "messages"]) if gateway.queues.contains_key(*queue) => {
            ok(json!(gateway.infra.peek(queue).await?))
        }
        (Method::POST, ["queues", queue, "messages"]) if gateway.queues.contains_key(*queue) => {
            gateway
                .infra
                .send(queue, String::from_utf8_lossy(&body).into_owned())
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Method::POST, ["queues", dlq, "redrive"]) => ok(json!({
            "moved": gateway.redrive(dlq).await?,
        })),
        (Method::PUT, ["tables", table, "items"]) if gateway.tables.iter().any(|t| t == table) => {
            let item: bulkhead::store::Item = bulkhead::http::parse_json(&body)?;
            gateway.infra.put_raw(table, item).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no-route",
            format!("no devstack endpoint /_devstack/{path}"),
        )),
    }
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
