//! Queue listener: events routed by the bus to a service's queue, applied to its views.
//!
//! A listener declares what it takes, as [`EventSet`]s, each with the function that applies
//! those events; the declaration is its routing, and what tests and fixtures read. Each
//! message succeeds or fails alone: one that cannot be parsed or applied is reported in
//! `batchItemFailures`, so the queue redelivers it and finally moves it to the dead-letter
//! queue, while the rest of the batch is deleted.
//!
//! The two kinds of view have their helpers here: [`snapshot`] keeps the newest version of
//! a thing, [`counter`] keeps totals that count each aggregate version once.

pub mod counter;
pub mod snapshot;

use crate::batch::{Batch, Record};
use crate::event::{EventSet, PublicEvent};
use crate::{Error, Result};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;

/// An event as the bus delivered it.
#[derive(Clone, Debug, Deserialize)]
pub struct Delivered {
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: PublicEvent,
    /// The replay that sent this event again from the archive, as EventBridge marks a
    /// replayed event; `None` for a live event.
    #[serde(default, rename = "replay-name")]
    pub replay_name: Option<String>,
}

impl Delivered {
    /// Whether this is a replay of an archived event rather than a live one.
    pub fn is_replay(&self) -> bool {
        self.replay_name.is_some()
    }

    pub fn parse(message: &SqsMessage) -> Result<Delivered> {
        let body = message
            .body
            .as_deref()
            .ok_or_else(|| Error::Malformed("message without a body".into()))?;
        Ok(serde_json::from_str(body)?)
    }
}

/// How many messages of a batch are applied together unless told otherwise. A batch can
/// hold up to 10,000 messages; all at once would open as many connections to the table.
/// At 4 ms a DynamoDB request, 64 apply a 1,000-message batch in about 16 round trips.
pub const DEFAULT_IN_FLIGHT: usize = 64;

type Apply = Arc<dyn Fn(Delivered) -> BoxFuture<'static, Result<()>> + Send + Sync>;

#[derive(Clone)]
struct Route {
    events: EventSet,
    /// The schema of what the route reads of each event's state.
    reads: serde_json::Value,
    apply: Apply,
}

/// A queue listener, ready for either host: the events it takes and how it applies each.
#[derive(Clone)]
pub struct Listener {
    routes: Vec<Route>,
    in_flight: usize,
    /// The function's name, as the label of its figures where one process runs many.
    name: Option<Arc<str>>,
}

/// Starts a listener whose handlers are given `context` (a table, usually) with each event.
pub fn listen<C: Clone + Send + Sync + 'static>(context: C) -> Routes<C> {
    Routes {
        context,
        routes: vec![],
    }
}

/// A listener being declared: [`listen`], then one [`Routes::on`] per event set.
pub struct Routes<C> {
    context: C,
    routes: Vec<Route>,
}

impl<C: Clone + Send + Sync + 'static> Routes<C> {
    /// Takes `events`, and applies each with `apply`, given the context, the event and its
    /// public state read into `S` (what this service reads of it: a tolerant reader).
    ///
    /// `S`'s JSON Schema is what the contract tests hold against the producer's: every field
    /// it requires must be one the producer guarantees.
    pub fn on<S, F, Fut>(mut self, events: EventSet, apply: F) -> Self
    where
        S: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        F: Fn(C, Delivered, S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let context = self.context.clone();
        let apply = Arc::new(apply);
        self.routes.push(Route {
            events,
            reads: crate::contract::schema_of::<S>(crate::contract::Direction::Deserialize),
            apply: Arc::new(move |delivered: Delivered| {
                let (context, apply) = (context.clone(), apply.clone());
                Box::pin(async move {
                    let state: S = delivered.detail.state_as()?;
                    apply(context, delivered, state).await
                })
            }),
        });
        self
    }

    pub fn listener(self) -> Listener {
        Listener {
            routes: self.routes,
            in_flight: DEFAULT_IN_FLIGHT,
            name: None,
        }
    }
}

impl Listener {
    /// Applies up to `messages` messages of a batch together (at least one).
    pub fn with_in_flight(mut self, messages: usize) -> Self {
        self.in_flight = messages.max(1);
        self
    }

    /// Names the function, so that its figures carry the label `function` (the devstack
    /// runs every function in one process; in Lambda the EMF dimension says it).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// What this listener takes, as declared.
    pub fn subscriptions(&self) -> Vec<EventSet> {
        self.routes.iter().map(|r| r.events).collect()
    }

    /// What this listener reads of each event's state, by event set: the schema of the type
    /// its declaration reads the state into.
    pub fn reads(&self) -> Vec<(EventSet, &serde_json::Value)> {
        self.routes.iter().map(|r| (r.events, &r.reads)).collect()
    }

    /// Whether an entry with this source and detail type is one this listener takes.
    pub fn takes(&self, source: &str, detail_type: &str) -> bool {
        self.routes
            .iter()
            .any(|r| r.events.contains(source, detail_type))
    }

    /// Applies one delivered event through its route. An event that no route takes changes
    /// nothing: the bus rule should not have sent it, which the template checks catch.
    ///
    /// An event of an older `schemaVersion` is first raised to the newest one
    /// (`contract::upcast`), so that readers see one shape whatever the archive holds.
    pub async fn apply(&self, mut delivered: Delivered) -> Result<()> {
        if delivered.detail.event_type != delivered.detail_type {
            return Err(Error::Malformed(format!(
                "detail-type {} names another event than its detail, {}",
                delivered.detail_type, delivered.detail.event_type
            )));
        }
        crate::contract::upcast::upcast(&delivered.source, &mut delivered.detail)?;
        let route = self
            .routes
            .iter()
            .find(|r| r.events.contains(&delivered.source, &delivered.detail_type));
        match route {
            Some(route) => (route.apply)(delivered).await,
            None => {
                tracing::warn!(
                    source = %delivered.source,
                    detail_type = %delivered.detail_type,
                    "an event this listener does not take; ignored"
                );
                Ok(())
            }
        }
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_batch(Batch::decoded(event.records)).await
    }

    /// [`Listener::handle`] for a batch whose messages were decoded one by one: a message
    /// that did not decode fails alone.
    pub async fn handle_batch(&self, batch: Batch<SqsMessage>) -> SqsBatchResponse {
        consume(batch, self.in_flight, self.name.as_deref(), |delivered| {
            self.apply(delivered)
        })
        .await
    }
}

/// Applies `apply` to every message of the batch, `in_flight` at a time, and reports the
/// ones that failed. Each message is applied in its event's span and says what became of
/// it: applied, ignored (old or duplicate) or failed, with the view's lag.
async fn consume<F, Fut>(
    batch: Batch<SqsMessage>,
    in_flight: usize,
    function: Option<&str>,
    apply: F,
) -> SqsBatchResponse
where
    F: Fn(Delivered) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    use crate::telemetry::{figures, outcome};
    use futures::StreamExt;
    use tracing::Instrument;
    let largest_lag = figures::Largest::default();
    let lag = &largest_lag;
    let apply_one = |delivered: Delivered, attempt: Option<u32>| {
        let span = delivered.detail.span();
        let occurred_at = chrono::DateTime::parse_from_rfc3339(&delivered.detail.occurred_at).ok();
        let replay = delivered.replay_name.clone();
        let source = delivered.source.clone();
        let work = outcome::observe(apply(delivered));
        async move {
            let (result, outcome) = work.await;
            let lag_ms = occurred_at.map(|at| (crate::now_millis() - at.timestamp_millis()) as f64);
            figures::message(function, outcome);
            if let (outcome::Outcome::Applied, Some(ms), None) = (outcome, lag_ms, &replay) {
                lag.add(ms);
            }
            match &result {
                Ok(()) => tracing::info!(
                    function,
                    attempt,
                    source = %source,
                    outcome = outcome.as_str(),
                    lagMs = lag_ms,
                    replay = replay.as_deref(),
                    "message {}",
                    outcome.as_str()
                ),
                Err(e) => tracing::error!(function, attempt, source = %source, error = %e, "message failed"),
            }
            result
        }
        .instrument(span)
    };
    let messages = batch.records.len();
    let outcomes: Vec<(Option<String>, Result<()>)> =
        futures::stream::iter(batch.records.into_iter().map(|record| {
            let apply_one = &apply_one;
            async move {
                match record {
                    Record::Decoded(message) => {
                        let outcome = match Delivered::parse(&message) {
                            Ok(delivered) => {
                                let attempt = message
                                    .attributes
                                    .get("ApproximateReceiveCount")
                                    .and_then(|n| n.parse().ok());
                                apply_one(delivered, attempt).await
                            }
                            Err(e) => {
                                figures::message(function, outcome::Outcome::Failed);
                                Err(e)
                            }
                        };
                        (message.message_id, outcome)
                    }
                    Record::Undecodable { ref error, .. } => {
                        figures::message(function, outcome::Outcome::Failed);
                        (
                            record.raw_string(&["messageId"]),
                            Err(Error::Malformed(format!("SQS record: {error}"))),
                        )
                    }
                }
            }
        }))
        .buffer_unordered(in_flight)
        .collect()
        .await;
    figures::view_lag(function, lag);
    let mut response = SqsBatchResponse::default();
    for (message_id, outcome) in outcomes {
        if let Err(e) = outcome {
            tracing::warn!(error = %e, message_id = ?message_id, "message reported as failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    tracing::info!(
        messages,
        failed = response.batch_item_failures.len(),
        "queue batch handled"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AggregateRef;
    use std::sync::Mutex;

    const PLACED: EventSet = EventSet {
        source: "bulkhead.shop",
        types: &["OrderPlaced"],
    };

    #[derive(Deserialize, schemars::JsonSchema)]
    struct State {
        n: u64,
    }

    type Seen = Arc<Mutex<Vec<u64>>>;

    async fn record(seen: Seen, _: Delivered, state: State) -> Result<()> {
        seen.lock().unwrap().push(state.n);
        Ok(())
    }

    fn delivered(source: &str, detail_type: &str, event_type: &str, state: &str) -> Delivered {
        let aggregate = AggregateRef {
            kind: "order".into(),
            id: "o-1".into(),
            version: 1,
        };
        let mut detail = PublicEvent::new(event_type, aggregate, "t".into());
        detail.state = serde_json::from_str(state).unwrap();
        Delivered {
            source: source.into(),
            detail_type: detail_type.into(),
            detail,
            replay_name: None,
        }
    }

    #[tokio::test]
    async fn the_declaration_routes_and_an_undeclared_event_changes_nothing() {
        let seen = Seen::default();
        let listener = listen(seen.clone()).on(PLACED, record).listener();
        assert_eq!(listener.subscriptions(), [PLACED]);
        let reads = listener.reads();
        assert_eq!(reads[0].1["properties"]["n"]["type"], "integer");
        let placed = delivered("bulkhead.shop", "OrderPlaced", "OrderPlaced", r#"{"n":1}"#);
        listener.apply(placed).await.unwrap();
        for other in [
            delivered("bulkhead.shop", "OrderShipped", "OrderShipped", "{}"),
            delivered("bulkhead.catalog", "OrderPlaced", "OrderPlaced", "{}"),
        ] {
            listener.apply(other).await.unwrap();
        }
        assert_eq!(*seen.lock().unwrap(), [1]);
    }

    #[test]
    fn a_replayed_event_says_so_and_a_live_one_does_not() {
        let body = |extra: &str| {
            format!(
                r#"{{"source":"bulkhead.orders","detail-type":"OrderPlaced"{extra},"detail":{{"id":"order:o-1:1","type":"OrderPlaced","schemaVersion":1,"aggregate":{{"type":"order","id":"o-1","version":1}},"occurredAt":"t","state":{{}}}}}}"#
            )
        };
        let live: Delivered = serde_json::from_str(&body("")).unwrap();
        let replayed: Delivered = serde_json::from_str(&body(r#","replay-name":"r-1""#)).unwrap();
        assert!(!live.is_replay());
        assert_eq!(replayed.replay_name.as_deref(), Some("r-1"));
        assert!(replayed.is_replay());
    }

    #[tokio::test]
    async fn a_state_that_does_not_read_or_a_mislabelled_event_fails() {
        let listener = listen(Seen::default()).on(PLACED, record).listener();
        let unreadable = delivered(
            "bulkhead.shop",
            "OrderPlaced",
            "OrderPlaced",
            r#"{"n":"x"}"#,
        );
        assert!(listener.apply(unreadable).await.is_err());
        let mislabelled = delivered("bulkhead.shop", "OrderPlaced", "OrderShipped", r#"{"n":1}"#);
        assert!(listener.apply(mislabelled).await.is_err());
    }
}
