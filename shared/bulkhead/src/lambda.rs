//! Lambda entry points: each `src/bin/<service>-<role>.rs` builds its handler from an
//! [`AwsHost`](crate::host::AwsHost) and hands it to one of these.

use crate::batch::Batch;
use crate::listener::Listener;
use crate::trigger::Trigger;
use aws_lambda_events::event::sqs::SqsMessage;
pub use lambda_runtime::Error;
use lambda_runtime::{LambdaEvent, service_fn};

/// The figures of this function (`telemetry::figures`), written as CloudWatch Embedded
/// Metric Format lines to stdout after each invocation: namespace `Bulkhead`, dimension
/// `function` (the function's name), one line per label set.
fn figures() -> Option<&'static metrics_cloudwatch_embedded::Collector> {
    let function =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "unknown".to_string());
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(crate::telemetry::figures::NAMESPACE)
        .with_dimension("function", function)
        .init()
        .map_err(|e| tracing::warn!(error = %e, "no metrics: the recorder is taken"))
        .ok()?;
    crate::telemetry::figures::describe();
    Some(collector)
}

fn flush(collector: Option<&metrics_cloudwatch_embedded::Collector>) {
    if let Some(collector) = collector
        && let Err(e) = collector.flush(std::io::stdout().lock())
    {
        tracing::warn!(error = %e, "metrics not written");
    }
}

/// Serves an API router behind API Gateway.
pub async fn run_http(router: axum::Router) -> Result<(), Error> {
    let collector = figures();
    let router = router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let response = next.run(request).await;
            flush(collector);
            response
        },
    ));
    lambda_http::run(router).await
}

/// Serves a stream trigger.
/// `PUT_EVENTS_IN_FLIGHT`, if set, bounds the `PutEvents` requests kept in flight together.
pub async fn run_trigger(trigger: Trigger) -> Result<(), Error> {
    let trigger = match count_from_env("PUT_EVENTS_IN_FLIGHT")? {
        Some(requests) => trigger.with_in_flight(requests),
        None => trigger,
    };
    let collector = figures();
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Batch<crate::trigger::StreamRecord>>| {
            let trigger = trigger.clone();
            let deadline = deadline_of(&event.context);
            async move {
                let response = trigger.handle_batch(event.payload, Some(deadline)).await;
                flush(collector);
                Ok::<_, Error>(response)
            }
        },
    ))
    .await
}

/// Serves a queue listener. `MESSAGES_IN_FLIGHT`, if set, bounds the messages of a batch
/// applied together.
pub async fn run_listener(listener: Listener) -> Result<(), Error> {
    let listener = match count_from_env("MESSAGES_IN_FLIGHT")? {
        Some(messages) => listener.with_in_flight(messages),
        None => listener,
    };
    let collector = figures();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Batch<SqsMessage>>| {
        let listener = listener.clone();
        async move {
            let response = listener.handle_batch(event.payload).await;
            flush(collector);
            Ok::<_, Error>(response)
        }
    }))
    .await
}

/// The invocation's deadline as an `Instant`.
fn deadline_of(context: &lambda_runtime::Context) -> std::time::Instant {
    let left = (context.deadline as i64 - crate::now_millis()).max(0) as u64;
    std::time::Instant::now() + std::time::Duration::from_millis(left)
}

/// A count from the environment, if the variable is set.
fn count_from_env(name: &str) -> crate::Result<Option<usize>> {
    std::env::var(name)
        .ok()
        .map(|value| {
            value
                .parse()
                .map_err(|_| crate::Error::Config(format!("{name}={value:?} is not a count")))
        })
        .transpose()
}
