//! What the functions tell about themselves: structured logs, JSON lines in Lambda
//! (CloudWatch parses them) and plain text on a terminal; the figures every function
//! reports (`figures`); and what became of a message (`outcome`).
//!
//! A trigger's or listener's line about one event carries, in its `span`, the event's
//! `eventId`, `eventType`, `aggregate`, `version`, `correlationId` and `causationId`; an API
//! line carries `requestId`, `correlationId`, the caller's `sub`, the route and status. One
//! correlation id finds a command's whole path (README: Observability).

pub mod figures;
pub mod outcome;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once. The level comes from `RUST_LOG`, then
/// `AWS_LAMBDA_LOG_LEVEL`, then `info`.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let json = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok()
        || std::env::var("LOG_FORMAT").as_deref() == Ok("json");
    if json {
        init_json(&filter, std::io::stdout);
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .with_target(false)
            .try_init();
    }
}

/// Installs, once, the subscriber of Lambda: one JSON object a line, the event's fields at
/// the top, the current span's fields under `span` (CloudWatch adds the time).
pub fn init_json<W>(filter: &str, writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .try_init();
}
