//! Structured logs: JSON lines in Lambda (CloudWatch parses them), plain text on a terminal.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once. The level comes from `RUST_LOG`, then
/// `AWS_LAMBDA_LOG_LEVEL`, then `info`.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(filter));
    let json = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok()
        || std::env::var("LOG_FORMAT").as_deref() == Ok("json");
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
