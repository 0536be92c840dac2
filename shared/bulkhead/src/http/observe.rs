//! One line per API request, in the request's span: its id, correlation id, the caller's
//! `sub`, the route, status and latency; and the `Commands` figure for writes, by outcome.
//! Handlers that take [`RequestMeta`] get the same ids that the line shows.

use super::RequestMeta;
use crate::telemetry::figures;
use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::request::RequestContext;
use tracing::Instrument;

pub async fn observe(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let (mut parts, body) = request.into_parts();
    let Ok(meta) = RequestMeta::from_request_parts(&mut parts, &()).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    parts.extensions.insert(meta.clone());
    #[allow(irrefutable_let_patterns)]
    let sub = match parts.extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|jwt| jwt.claims.get("sub").cloned()),
        _ => None,
    };
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let idempotency_key = super::idempotency_key(&parts.headers).ok().flatten();
    let write = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let span = tracing::info_span!(
        "request",
        requestId = %meta.request_id,
        correlationId = %meta.correlation_id,
        sub = sub.as_deref().unwrap_or("-"),
        method = %parts.method,
        route = route.as_deref().unwrap_or("-"),
        idempotencyKey = idempotency_key.as_deref(),
    );
    let response = next
        .run(Request::from_parts(parts, body))
        .instrument(span.clone())
        .await;
    let status = response.status();
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latencyMs = started.elapsed().as_secs_f64() * 1000.0,
            "request handled"
        )
    });
    if write {
        figures::command(match status.as_u16() {
            200..=399 => "accepted",
            400..=499 => "refused",
            _ => "failed",
        });
    }
    response
}
