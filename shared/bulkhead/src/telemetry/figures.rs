//! The figures every function reports, through the `metrics` facade: in Lambda, CloudWatch
//! Embedded Metric Format lines after each invocation (`lambda.rs`, namespace `Bulkhead`,
//! dimension `function`); in the devstack, its status (`/_devstack/status`, `metrics`),
//! where each figure carries the function's name as the label `function`.
//!
//! A histogram is recorded once an invocation, as its largest value: the EMF writer holds
//! at most 100 values of a histogram between flushes, and blocks on the 101st.

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub const NAMESPACE: &str = "Bulkhead";
pub const EVENTS_PUBLISHED: &str = "EventsPublished";
pub const ENTRIES_REJECTED: &str = "EntriesRejected";
/// The slowest `PutEvents` request of an invocation.
pub const PUT_EVENTS_LATENCY: &str = "PutEventsLatency";
pub const MESSAGES_APPLIED: &str = "MessagesApplied";
pub const MESSAGES_IGNORED: &str = "MessagesIgnored";
pub const MESSAGES_FAILED: &str = "MessagesFailed";
/// From an event's `occurredAt` to the moment a view applied it: the largest of a batch's
/// live events (a replayed event is old by design).
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

/// The largest of many values, kept without a lock by the tasks of one invocation.
#[derive(Default)]
pub struct Largest {
    seen: AtomicBool,
    bits: AtomicU64,
}

impl Largest {
    pub fn add(&self, value: f64) {
        // The bits of non-negative floats order as the floats do.
        self.bits
            .fetch_max(value.max(0.0).to_bits(), Ordering::Relaxed);
        self.seen.store(true, Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<f64> {
        self.seen
            .load(Ordering::Relaxed)
            .then(|| f64::from_bits(self.bits.load(Ordering::Relaxed)))
    }
}

/// Entries the bus accepted.
pub fn published(function: Option<&str>, events: usize) {
    counter!(EVENTS_PUBLISHED, labels(function)).increment(events as u64);
}

/// Entries given up on: rejected for good, or still failing at the deadline.
pub fn rejected(function: Option<&str>, entries: usize) {
    counter!(ENTRIES_REJECTED, labels(function)).increment(entries as u64);
}

pub fn put_events_latency(function: Option<&str>, slowest: &Largest) {
    if let Some(ms) = slowest.get() {
        histogram!(PUT_EVENTS_LATENCY, labels(function)).record(ms);
    }
}

pub fn message(function: Option<&str>, outcome: super::outcome::Outcome) {
    use super::outcome::Outcome;
    let name = match outcome {
        Outcome::Applied => MESSAGES_APPLIED,
        Outcome::Ignored => MESSAGES_IGNORED,
        Outcome::Failed => MESSAGES_FAILED,
    };
    counter!(name, labels(function)).increment(1);
}

pub fn view_lag(function: Option<&str>, largest: &Largest) {
    if let Some(ms) = largest.get() {
        histogram!(VIEW_LAG, labels(function)).record(ms);
    }
}

pub fn command(outcome: &'static str) {
    counter!(COMMANDS, "outcome" => outcome).increment(1);
}
