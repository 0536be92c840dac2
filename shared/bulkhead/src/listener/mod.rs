//! Queue listener: events routed by the bus to a service's queue, applied to its views.
//!
//! A listener declares what it takes, as [`EventSet`]s, each with the function that applies
//! those events; the declaration is its routing, and what tests and fixtures read. Each
//! message succeeds or fails alone: one that cannot be parsed or applied is reported in
//! `batchItemFailures`, so the queue redelivers it and finally moves it to the dead-letter
//! queue, while the rest of the batch is deleted.
//!
//! The two kinds of view have their helpers here: [`snapshot`] keeps the newest version of
//! a thing, [`counter`] keeps totals that count each aggregate version once. Both depend only
//! on each aggregate's newest state, so they declare their routes with [`Routes::on_newest`]:
//! of several versions of one aggregate in a batch, only the newest is applied.

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
    /// Whether a newer version of the same aggregate in the batch makes an event redundant.
    newest_only: bool,
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
    pub fn on<S, F, Fut>(self, events: EventSet, apply: F) -> Self
    where
        S: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        F: Fn(C, Delivered, S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.route(events, apply, false)
    }

    /// Takes `events` as [`Routes::on`] does, for a view that depends only on each
    /// aggregate's newest state (a [`snapshot`] or a [`counter`]): of the versions of one
    /// aggregate in a batch, only the newest is applied, and the older ones are acknowledged
    /// as superseded, with no request. Should the newest fail, the next newest is applied,
    /// so that a poison event still fails alone.
    ///
    /// Not for a view that acts on each event, such as one that sends a mail per event.
    pub fn on_newest<S, F, Fut>(self, events: EventSet, apply: F) -> Self
    where
        S: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        F: Fn(C, Delivered, S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.route(events, apply, true)
    }

    fn route<S, F, Fut>(mut self, events: EventSet, apply: F, newest_only: bool) -> Self
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
            newest_only,
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
        self.route_of(source, detail_type).is_some()
    }

    fn route_of(&self, source: &str, detail_type: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.events.contains(source, detail_type))
    }

    /// The aggregate whose older versions in a batch this event supersedes: only for an
    /// event that a route declared with [`Routes::on_newest`] takes, and labelled as its
    /// detail says (a mislabelled one fails alone in [`Listener::apply`]).
    fn superseding(&self, delivered: &Delivered) -> Option<Aggregate> {
        let detail = &delivered.detail;
        let route = self.route_of(&delivered.source, &delivered.detail_type)?;
        (route.newest_only && detail.event_type == delivered.detail_type).then(|| {
            (
                delivered.source.clone(),
                detail.aggregate.kind.clone(),
                detail.aggregate.id.clone(),
            )
        })
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
        match self.route_of(&delivered.source, &delivered.detail_type) {
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
        let superseding = |delivered: &Delivered| self.superseding(delivered);
        consume(
            batch,
            self.in_flight,
            self.name.as_deref(),
            superseding,
            |delivered| self.apply(delivered),
        )
        .await
    }
}

/// An aggregate, as its events name it: source, kind and id.
type Aggregate = (String, String, String);

/// A message of the batch, read.
struct Read {
    message_id: Option<String>,
    delivered: Result<Delivered>,
    attempt: Option<u32>,
}

impl Read {
    fn of(record: Record<SqsMessage>, function: Option<&str>) -> Read {
        let read = match record {
            Record::Decoded(message) => Read {
                delivered: Delivered::parse(&message),
                attempt: message
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|n| n.parse().ok()),
                message_id: message.message_id,
            },
            Record::Undecodable { id, error } => Read {
                delivered: Err(Error::Malformed(format!("SQS record: {error}"))),
                attempt: None,
                message_id: id,
            },
        };
        if read.delivered.is_err() {
            crate::telemetry::figures::message(
                function,
                crate::telemetry::outcome::Outcome::Failed,
            );
        }
        read
    }

    fn version(&self) -> u64 {
        self.delivered
            .as_ref()
            .map_or(0, |d| d.detail.aggregate.version)
    }
}

/// The batch's messages in units applied one after another: each version of an aggregate
/// that `superseding` names, newest first, in one unit; every other message alone.
fn units(
    reads: impl Iterator<Item = Read>,
    superseding: impl Fn(&Delivered) -> Option<Aggregate>,
) -> Vec<Vec<Read>> {
    let mut units: Vec<Vec<Read>> = vec![];
    let mut unit_of = std::collections::HashMap::new();
    for read in reads {
        match read.delivered.as_ref().ok().and_then(&superseding) {
            Some(aggregate) => {
                let at = *unit_of.entry(aggregate).or_insert_with(|| {
                    units.push(vec![]);
                    units.len() - 1
                });
                units[at].push(read);
            }
            None => units.push(vec![read]),
        }
    }
    for unit in &mut units {
        unit.sort_by_key(|read| std::cmp::Reverse(read.version()));
    }
    units
}

/// Applies `apply` to every message of the batch, `in_flight` units at a time (see
/// [`units`]), and reports the ones that failed. Each message is applied in its event's span
/// and says what became of it: applied, ignored (old, duplicate or superseded) or failed,
/// with the view's lag.
async fn consume<F, Fut>(
    batch: Batch<SqsMessage>,
    in_flight: usize,
    function: Option<&str>,
    superseding: impl Fn(&Delivered) -> Option<Aggregate>,
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
    let reads = batch.records.into_iter().map(|r| Read::of(r, function));
    let units = units(reads, superseding);
    let outcomes: Vec<Vec<(Option<String>, Result<()>)>> =
        futures::stream::iter(units.into_iter().map(|unit| {
            let apply_one = &apply_one;
            async move {
                let mut outcomes = Vec::with_capacity(unit.len());
                let mut unit = unit.into_iter();
                while let Some(Read {
                    message_id,
                    delivered,
                    attempt,
                }) = unit.next()
                {
                    let (result, newest) = match delivered {
                        Ok(delivered) => {
                            let version = delivered.detail.aggregate.version;
                            (apply_one(delivered, attempt).await, version)
                        }
                        Err(e) => (Err(e), 0),
                    };
                    let applied = result.is_ok();
                    outcomes.push((message_id, result));
                    if applied {
                        for older in unit.by_ref() {
                            if let Ok(delivered) = &older.delivered {
                                figures::message(function, outcome::Outcome::Ignored);
                                delivered.detail.span().in_scope(|| {
                                    tracing::info!(
                                        function,
                                        attempt = older.attempt,
                                        newest,
                                        "message superseded"
                                    )
                                });
                            }
                            outcomes.push((older.message_id, Ok(())));
                        }
                    }
                }
                outcomes
            }
        }))
        .buffer_unordered(in_flight)
        .collect()
        .await;
    figures::view_lag(function, lag);
    let mut response = SqsBatchResponse::default();
    for (message_id, outcome) in outcomes.into_iter().flatten() {
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

    /// A message of order `aggregate` at `version`, its state `state`.
    fn message(id: &str, aggregate: &str, version: u64, state: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.into());
        message.body = Some(format!(
            r#"{{"source":"bulkhead.shop","detail-type":"OrderPlaced","detail":{{"id":"order:{aggregate}:{version}","type":"OrderPlaced","schemaVersion":1,"aggregate":{{"type":"order","id":"{aggregate}","version":{version}}},"occurredAt":"t","state":{state}}}}}"#
        ));
        message
    }

    /// Handles `messages` as one batch: the states seen, sorted, and the ids that failed.
    async fn handle(
        listener: &Listener,
        seen: &Seen,
        messages: Vec<SqsMessage>,
    ) -> (Vec<u64>, Vec<String>) {
        let mut event = SqsEvent::default();
        event.records = messages;
        let response = listener.handle(event).await;
        let mut states = std::mem::take(&mut *seen.lock().unwrap());
        states.sort();
        let failed = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        (states, failed)
    }

    #[tokio::test]
    async fn of_one_aggregates_versions_in_a_batch_only_the_newest_is_applied() {
        let batch = || {
            vec![
                message("a", "o-1", 1, r#"{"n":11}"#),
                message("b", "o-1", 3, r#"{"n":13}"#),
                message("c", "o-2", 1, r#"{"n":21}"#),
                message("d", "o-1", 2, r#"{"n":12}"#),
            ]
        };
        let seen = Seen::default();
        let newest = listen(seen.clone()).on_newest(PLACED, record).listener();
        let (applied, failed) = handle(&newest, &seen, batch()).await;
        assert_eq!(applied, [13, 21]);
        assert!(failed.is_empty(), "{failed:?}");
        // Declared with `on`, every event is applied.
        let every = listen(seen.clone()).on(PLACED, record).listener();
        let (applied, failed) = handle(&every, &seen, batch()).await;
        assert_eq!(applied, [11, 12, 13, 21]);
        assert!(failed.is_empty(), "{failed:?}");
    }

    #[tokio::test]
    async fn when_the_newest_version_fails_the_next_newest_is_applied_and_it_fails_alone() {
        let seen = Seen::default();
        let newest = listen(seen.clone()).on_newest(PLACED, record).listener();
        let batch = vec![
            message("a", "o-1", 1, r#"{"n":11}"#),
            message("b", "o-1", 2, r#"{"n":12}"#),
            message("c", "o-1", 3, r#"{"n":"x"}"#),
        ];
        let (applied, failed) = handle(&newest, &seen, batch).await;
        assert_eq!(applied, [12]);
        assert_eq!(failed, ["c"]);
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
