//! HTTP helpers for the API functions, one concept a file: problem+json errors, the
//! caller and their roles, extractors with clear rejections, headers, read-your-writes
//! waits, paging, and the HTTP side of the write protocol.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

mod caller;
mod command;
mod extract;
mod headers;
mod observe;
mod paging;
mod problem;
mod role;
mod wait;

pub use caller::{Caller, RequestMeta, parse_groups};
pub use command::command_meta;
pub use extract::{JsonBody, MAX_BODY_BYTES, Params, Path, parse_json, valid_id};
pub use headers::{etag, idempotency_key, if_match};
pub use observe::observe;
pub use paging::PageQuery;
pub use problem::{Problem, with_fallbacks};
pub use role::Role;
pub use wait::{VersionQuery, read_at_least};

/// A JSON answer with a status.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
