//! Lambda entry points: each `src/bin/<service>-<role>.rs` builds its handler from an
//! [`AwsHost`](crate::host::AwsHost) and hands it to one of these.

use crate::batch::Batch;
use crate::listener::Listener;
use crate::trigger::Trigger;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::sqs::SqsMessage;
pub use lambda_runtime::Error;
use lambda_runtime::{LambdaEvent, service_fn};

/// Serves an API router behind API Gateway.
pub async fn run_http(router: axum::Router) -> Result<(), Error> {
    lambda_http::run(router).await
}

/// Serves a stream trigger.
/// `PUT_EVENTS_IN_FLIGHT`, if set, bounds the `PutEvents` requests kept in flight together.
pub async fn run_trigger(trigger: Trigger) -> Result<(), Error> {
    let trigger = match count_from_env("PUT_EVENTS_IN_FLIGHT")? {
        Some(requests) => trigger.with_in_flight(requests),
        None => trigger,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Batch<EventRecord>>| {
        let trigger = trigger.clone();
        let deadline = deadline_of(&event.context);
        async move { Ok::<_, Error>(trigger.handle_batch(event.payload, Some(deadline)).await) }
    }))
    .await
}

/// Serves a queue listener. `MESSAGES_IN_FLIGHT`, if set, bounds the messages of a batch
/// applied together.
pub async fn run_listener(listener: Listener) -> Result<(), Error> {
    let listener = match count_from_env("MESSAGES_IN_FLIGHT")? {
        Some(messages) => listener.with_in_flight(messages),
        None => listener,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Batch<SqsMessage>>| {
        let listener = listener.clone();
        async move { Ok::<_, Error>(listener.handle_batch(event.payload).await) }
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
