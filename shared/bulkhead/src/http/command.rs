//! The HTTP side of the write protocol: a request's command metadata, and a command's
//! reply or refusal as a response.

use super::{Caller, Problem, RequestMeta, idempotency_key, if_match, json_response};
use crate::command::{CommandMeta, Idempotency, Refusal, Reply};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The command metadata of a request: `If-Match`, the idempotency key scoped to the caller,
/// and the correlation and causation ids.
pub fn command_meta(
    caller: &Caller,
    request: &RequestMeta,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<CommandMeta, Problem> {
    let idempotency = idempotency_key(headers)?
        .map(|key| Idempotency::new(&caller.sub, &key, method, path, body));
    Ok(CommandMeta {
        if_match: if_match(headers)?,
        idempotency,
        correlation_id: request.correlation_id.clone(),
        causation_id: request.request_id.clone(),
    })
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = json_response(status, &self.body);
        if self.replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", "true".parse().unwrap());
        }
        response
    }
}

impl From<Refusal<Problem>> for Problem {
    fn from(refusal: Refusal<Problem>) -> Self {
        match refusal {
            Refusal::Decided(problem) => problem,
            Refusal::VersionMismatch { current } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "version-mismatch",
                "If-Match does not name the current version",
            )
            .with("currentVersion", current),
            Refusal::Conflict { current } => Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "the order kept changing; read it and try again",
            )
            .with("currentVersion", current),
            Refusal::KeyReused => Problem::unprocessable(
                "idempotency-key-reused",
                "this Idempotency-Key was used with a different request",
            ),
            Refusal::Store(e) => e.into(),
        }
    }
}
