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

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber once. The level comes from `RUST_LOG`, then
/// `AWS_LAMBDA_LOG_LEVEL`, then `info`, as `env_logger`'s directives (`warn,bulkhead=debug`);
/// an unreadable value means `info`.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .map(|l| l.to_lowercase().replace("fatal", "error"))
        })
        .unwrap_or_else(|_| "info".into());
    let json = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok()
        || std::env::var("LOG_FORMAT").as_deref() == Ok("json");
    if json {
        init_json(&filter, std::io::stdout);
    } else {
        let _ = tracing_subscriber::fmt()
            .with_target(false)
            .finish()
            .with(targets(&filter))
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
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .finish()
        .with(targets(filter))
        .try_init();
}

/// `Targets`, not `EnvFilter`: the functions filter by target and level only, and
/// `EnvFilter`'s span and field matching brings a regex engine, about 0.3 MB a bootstrap.
fn targets(filter: &str) -> Targets {
    filter
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
}

#[cfg(test)]
mod tests {
    use super::targets;
    use tracing::Level;

    #[test]
    fn directives_set_levels_by_target_and_a_bad_one_means_info() {
        let filter = targets("warn,bulkhead=debug");
        assert!(filter.would_enable("bulkhead::trigger", &Level::DEBUG));
        assert!(!filter.would_enable("hyper", &Level::INFO));
        assert!(filter.would_enable("hyper", &Level::WARN));
        let fallback = targets("bulkhead=loud");
        assert!(fallback.would_enable("bulkhead", &Level::INFO));
        assert!(!fallback.would_enable("bulkhead", &Level::DEBUG));
    }
}
