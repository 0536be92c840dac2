//! Bulkhead core: the pieces every service shares.
//!
//! - [`event`]: the public event envelope and deterministic ids.
//! - [`batch`]: Lambda batches, each record decoded on its own.
//! - [`store`]: the table port and its adapters.
//! - [`bus`]: the event bus port and its adapters.
//! - [`trigger`]: stream records to public events, with per-record failure.
//! - [`listener`]: queued events to views, with per-message failure.
//! - [`contract`]: the schema of every public event, compatibility, consumers' readers.
//! - [`command`]: optimistic concurrency and idempotency for write commands.
//! - [`http`]: problem+json errors, the caller's claims, request helpers.
//! - [`openapi`]: routers and the OpenAPI document from the same route declarations.
//! - [`host`]: what a handler is given: environment, tables, bus.
//! - [`telemetry`]: structured logs.
#![forbid(unsafe_code)]

pub mod batch;
pub mod bus;
pub mod command;
pub mod contract;
#[cfg(feature = "embedded")]
pub mod embedded;
mod error;
pub mod event;
pub mod host;
pub mod http;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod listener;
pub mod mail;
pub mod openapi;
#[cfg(feature = "aws")]
pub mod sdk;
pub mod store;
pub mod telemetry;
pub mod trigger;

pub use error::Error;

/// Every binary that links the core allocates with mimalloc, not glibc's malloc. The
/// pipelines make and drop many small strings and maps a record; under glibc a third of a
/// listener's cycles went to `malloc`, `free` and their consolidation (README: Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Current time in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
