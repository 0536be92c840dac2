//! The figures every function reports, through the `metrics` facade: in Lambda, CloudWatch
//! Embedded Metric Format lines after each invocation (`lambda.rs`, namespace `Bulkhead`,
//! dimension `function`); in the devstack, its status (`/_devstack/status`, `metrics`),
//! where each figure carries the function's name as the label `function`.

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

pub const NAMESPACE: &str = "Bulkhead";
pub const EVENTS_PUBLISHED: &str = "EventsPublished";
pub const ENTRIES_REJECTED: &str = "EntriesRejected";
pub const PUT_EVENTS_LATENCY: &str = "PutEventsLatency";
pub const MESSAGES_APPLIED: &str = "MessagesApplied";
pub const MESSAGES_IGNORED: &str = "MessagesIgnored";
pub const MESSAGES_FAILED: &str = "MessagesFailed";
/// From an event's `occurredAt` to the moment a view applied it.
pub const VIEW_LAG: &str = "ViewLag";
/// Commands (API writes) by `outcome`: `accepted` (2xx), `refused` (4xx), `failed` (5xx).
pub const COMMANDS: &str = "Commands";

/// Units and descriptions, once per process.
pub fn describe() {
    describe_counter!(EVENTS_PUBLISHED, Unit::Count, "events the bus accepted");
    describe_counter!(ENTRIES_REJECTED, Unit::Count, "entries the bus rejected");
    describe_histogram!(
        PUT_EVENTS_LATENCY,
        Unit::Milliseconds,
        "one PutEvents request"
    );
    describe_counter!(
        MESSAGES_APPLIED,
        Unit::Count,
        "messages that changed a view"
    );
    describe_counter!(MESSAGES_IGNORED, Unit::Count, "old or duplicate messages");
    describe_counter!(MESSAGES_FAILED, Unit::Count, "messages that failed");
    describe_histogram!(VIEW_LAG, Unit::Milliseconds, "occurredAt to applied");
    describe_counter!(COMMANDS, Unit::Count, "API writes by outcome");
}

/// The label set of a figure: the function's name where one process runs many.
fn labels(function: Option<&str>) -> Vec<metrics::Label> {
    function
        .map(|f| metrics::Label::new("function", f.to_string()))
        .into_iter()
        .collect()
}

pub fn published(function: Option<&str>, events: usize, rejected: usize, latency_ms: f64) {
    let labels = labels(function);
    counter!(EVENTS_PUBLISHED, labels.clone()).increment(events as u64);
    if rejected > 0 {
        counter!(ENTRIES_REJECTED, labels.clone()).increment(rejected as u64);
    }
    histogram!(PUT_EVENTS_LATENCY, labels).record(latency_ms);
}

pub fn message(function: Option<&str>, outcome: super::outcome::Outcome, lag_ms: Option<f64>) {
    use super::outcome::Outcome;
    let labels = labels(function);
    let name = match outcome {
        Outcome::Applied => MESSAGES_APPLIED,
        Outcome::Ignored => MESSAGES_IGNORED,
        Outcome::Failed => MESSAGES_FAILED,
    };
    counter!(name, labels.clone()).increment(1);
    if let (Outcome::Applied, Some(lag)) = (outcome, lag_ms) {
        histogram!(VIEW_LAG, labels).record(lag.max(0.0));
    }
}

pub fn command(outcome: &'static str) {
    counter!(COMMANDS, "outcome" => outcome).increment(1);
}
