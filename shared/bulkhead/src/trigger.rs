//! Stream trigger: DynamoDB stream records in, public events on the bus out.
//!
//! Records are turned into events in order, and the events are published in requests of
//! up to ten, [`DEFAULT_IN_FLIGHT`] requests in flight together. The first record that
//! cannot be turned into an event, or whose event the bus still rejects after retries, is
//! reported as the batch item failure; Lambda then retries from it, so order within a key
//! is kept. Records after it may be published again by that retry, which views absorb:
//! ids are deterministic and each version is applied once.

mod change;
#[cfg(feature = "embedded")]
pub mod embedded;
mod image_types;
mod record;

pub use change::{Change, ChangeKind, Image};
pub use image_types::{ImageType, ImageTypes};
pub use record::{StreamData, StreamRecord};

use crate::batch::{Batch, Record};
use crate::bus::{Bus, BusEntry};
use crate::event::{EventSet, EventToPublish, PublicEvent};
use crate::store::Item;
use crate::{Error, Result};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A service's anti-corruption layer: the only function that decides what is published.
/// It owns the change, so that it can read the images without copying them.
pub type Acl = fn(Change) -> Result<Option<EventToPublish>>;

/// Items written one after another, oldest first: a short history of one item of a
/// service's table, from which its ACL makes events.
pub type History = Vec<Item>;

/// Histories that together make at least one of each event a service publishes: how a
/// producer gives its consumers' tests and the Lambda fixtures real examples.
pub type Samples = fn() -> Result<Vec<History>>;

/// The events `acl` publishes as each history's items are written in turn, each change
/// read from its stream record as text.
pub fn events_of(acl: Acl, histories: &[History]) -> Result<Vec<PublicEvent>> {
    events_in(acl, Batch::from_json(stream_of(histories)?)?)
}

/// The stream batch of each history's items written in turn, as Lambda would deliver it.
fn stream_of(histories: &[History]) -> Result<String> {
    let mut records = vec![];
    for history in histories {
        let mut old: Option<&Item> = None;
        for new in history {
            let mut data = serde_json::json!({
                "Keys": crate::store::Key::of(new)?.to_item(),
                "NewImage": new,
                "SequenceNumber": records.len().to_string(),
            });
            let event_name = match old.replace(new) {
                Some(old) => {
                    data["OldImage"] = serde_json::to_value(old)?;
                    "MODIFY"
                }
                None => "INSERT",
            };
            records.push(serde_json::json!({ "eventName": event_name, "dynamodb": data }));
        }
    }
    Ok(serde_json::json!({ "Records": records }).to_string())
}

/// The events `acl` makes of a batch whose records all decode.
fn events_in(acl: Acl, batch: Batch<StreamRecord>) -> Result<Vec<PublicEvent>> {
    let mut events = vec![];
    for record in batch.records {
        let Record::Decoded(mut record) = record else {
            return Err(Error::Malformed(
                "a sample's stream record did not decode".into(),
            ));
        };
        if let Some(event) = acl(Change::take_from(&mut record)?)? {
            events.push(event.parsed()?);
        }
    }
    Ok(events)
}

/// How patiently transient bus failures are retried within one invocation.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Stop retrying this long before the invocation's deadline.
    pub margin: Duration,
    /// The budget when the host gives no deadline.
    pub budget: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            first_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(1),
            margin: Duration::from_millis(500),
            budget: Duration::from_secs(2),
        }
    }
}

/// Entry error codes that retrying the same entry will not fix.
const PERMANENT: [&str; 4] = [
    "MalformedDetail",
    "InvalidArgument",
    "AccessDeniedException",
    "NotAuthorizedForSourceException",
];

/// Codes of a refused request that sending it again will not fix: the trigger fails at its
/// first record at once instead of retrying until the deadline.
const PERMANENT_REFUSALS: [&str; 4] = [
    "AccessDeniedException",
    "UnrecognizedClientException",
    "ValidationException",
    "ResourceNotFoundException",
];

/// The stream-to-bus pipeline of one service.
#[derive(Clone)]
pub struct Trigger {
    bus: Arc<dyn Bus>,
    publishes: EventSet,
    acl: Acl,
    samples: Option<Samples>,
    retry: Retry,
    in_flight: usize,
    /// The function's name, as the label of its figures where one process runs many.
    name: Option<Arc<str>>,
    /// What the ACL reads images as, if declared: a batch is then read in one pass.
    images: Option<Arc<dyn image_types::ReadBatch>>,
}

/// How many `PutEvents` requests a trigger keeps in flight together unless told otherwise:
/// at 20 ms a request, a 1,000-record batch (about 90 requests) waits about 3 round trips.
pub const DEFAULT_IN_FLIGHT: usize = 32;

impl Trigger {
    /// A trigger that publishes what `acl` makes of each change, as long as it is one of the
    /// events the service declares it `publishes`.
    pub fn new(bus: Arc<dyn Bus>, publishes: EventSet, acl: Acl) -> Self {
        Trigger {
            bus,
            publishes,
            acl,
            samples: None,
            retry: Retry::default(),
            in_flight: DEFAULT_IN_FLIGHT,
            name: None,
            images: None,
        }
    }

    /// Tells the trigger what its ACL reads images as, so that each image is read once, as
    /// the batch is read ([`ImageTypes`]).
    pub fn reading<New: ImageType, Old: ImageType>(mut self, images: ImageTypes<New, Old>) -> Self {
        self.images = Some(Arc::new(images));
        self
    }

    /// Names the function, so that its figures carry the label `function`.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Gives the trigger the producer's sample histories.
    pub fn with_samples(mut self, samples: Samples) -> Self {
        self.samples = Some(samples);
        self
    }

    /// The events this trigger may publish, as declared.
    pub fn publishes(&self) -> EventSet {
        self.publishes
    }

    /// The producer's sample histories, if it gave any.
    pub fn sample_histories(&self) -> Result<Vec<History>> {
        self.samples.map_or(Ok(vec![]), |samples| samples())
    }

    /// What this trigger's ACL makes of the sample histories, read as the trigger reads a
    /// batch: in one pass, as its ACL's image types say, if it was told them
    /// ([`Trigger::reading`]), which the samples must then bear out.
    pub fn sample_events(&self) -> Result<Vec<PublicEvent>> {
        let stream = stream_of(&self.sample_histories()?)?;
        let batch = match &self.images {
            Some(images) => images.read(stream.as_bytes()).ok_or_else(|| {
                let source = self.publishes.source;
                Error::Malformed(format!(
                    "{source}'s samples do not read as its ImageTypes say"
                ))
            })?,
            None => Batch::from_json(stream)?,
        };
        events_in(self.acl, batch)
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Keeps up to `requests` `PutEvents` requests in flight together (at least one).
    pub fn with_in_flight(mut self, requests: usize) -> Self {
        self.in_flight = requests.max(1);
        self
    }

    /// Handles one stream batch as the event source sends it, JSON: read in one pass if the
    /// trigger knows what its ACL reads images as ([`Trigger::reading`]), else as
    /// [`Batch::from_json`] reads it. Fails only when the payload is not a batch.
    pub async fn handle_payload(
        &self,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<DynamoDbEventResponse> {
        let batch = match self.images.as_ref().and_then(|images| images.read(payload)) {
            Some(batch) => batch,
            None => Batch::from_json(payload)?,
        };
        Ok(self.handle_batch(batch, deadline).await)
    }

    /// Handles one stream batch and reports the first record that failed, if any: a record
    /// that did not decode fails at its place. Transient bus failures are retried until
    /// shortly before `deadline`, so that an outage shorter than the function's timeout
    /// uses none of the mapping's retries.
    pub async fn handle_batch(
        &self,
        mut batch: Batch<StreamRecord>,
        deadline: Option<Instant>,
    ) -> DynamoDbEventResponse {
        let count = batch.records.len();
        let records = &mut batch.records;
        let deadline = match deadline {
            Some(deadline) => deadline
                .checked_sub(self.retry.margin)
                .unwrap_or_else(Instant::now),
            None => Instant::now() + self.retry.budget,
        };
        let earliest_failure = AtomicUsize::new(usize::MAX);
        let slowest = crate::telemetry::figures::Largest::default();
        let mut events = 0;
        // Records become entries as requests are needed, so that the first requests are
        // in flight while later records are still being read.
        let mut next_record = 0;
        let entries = std::iter::from_fn(|| {
            while let Some(record) = records.get_mut(next_record) {
                let index = next_record;
                next_record += 1;
                let entry = match record {
                    Record::Decoded(record) => self.entry_for(record).map_err(|e| e.to_string()),
                    Record::Undecodable { error, .. } => Err(error.clone()),
                };
                match entry {
                    Ok(Some(entry)) => return Some((index, entry)),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::error!(%error, sequence_number = ?sequence_number(record), "stream record rejected");
                        earliest_failure.fetch_min(index, Ordering::Relaxed);
                        next_record = count;
                        return None;
                    }
                }
            }
            None
        });
        let mut requests = crate::bus::requests(entries, BusEntry::size_of_owned);
        let mut in_flight = futures::stream::FuturesUnordered::new();
        loop {
            while in_flight.len() < self.in_flight {
                let Some(request) = requests.next() else {
                    break;
                };
                events += request.len();
                in_flight.push(self.publish_request(
                    request,
                    deadline,
                    &earliest_failure,
                    &slowest,
                ));
            }
            if futures::StreamExt::next(&mut in_flight).await.is_none() {
                break;
            }
        }
        drop((requests, in_flight));
        crate::telemetry::figures::put_events_latency(self.name.as_deref(), &slowest);
        let first_failure = Some(earliest_failure.into_inner()).filter(|&i| i != usize::MAX);
        tracing::info!(
            records = count,
            events,
            failed_at = first_failure,
            source = self.publishes.source,
            "stream batch handled"
        );
        let mut response = DynamoDbEventResponse::default();
        if let Some(index) = first_failure {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = sequence_number(&batch.records[index]);
            response.batch_item_failures.push(failure);
        }
        response
    }

    fn entry_for(&self, record: &mut StreamRecord) -> Result<Option<BusEntry>> {
        let change = Change::take_from(record)?;
        let Some(event) = (self.acl)(change)? else {
            return Ok(None);
        };
        if !self.publishes.types.contains(&event.event_type.as_str()) {
            return Err(Error::Malformed(format!(
                "{} is not among the events {} declares",
                event.event_type, self.publishes.source
            )));
        }
        let entry = BusEntry {
            source: self.publishes.source.to_string(),
            detail_type: event.event_type.clone(),
            time: event.occurred_at.clone(),
            detail: serde_json::to_string(&event)?,
        };
        event.span().in_scope(|| {
            tracing::info!(
                function = self.name.as_deref(),
                source = self.publishes.source,
                sequenceNumber = record.dynamodb.sequence_number.as_deref(),
                writtenAtMs = record.dynamodb.written_at_ms(),
                schemaVersion = event.schema_version,
                bytes = entry.size(),
                "event to publish"
            )
        });
        Ok(Some(entry))
    }

    /// Puts one request's entries, each with the index of its record, retrying the ones
    /// that fail transiently, and records the earliest record that could not be put:
    /// rejected for good, or still failing at the deadline. Gives up early once an earlier
    /// record has failed: this request will be published again from there anyway.
    async fn publish_request(
        &self,
        request: Vec<(usize, BusEntry)>,
        deadline: Instant,
        earliest_failure: &AtomicUsize,
        slowest: &crate::telemetry::figures::Largest,
    ) {
        use crate::telemetry::figures;
        let first = request[0].0;
        let superseded = || earliest_failure.load(Ordering::Relaxed) < first;
        let fail = |index: usize| {
            earliest_failure.fetch_min(index, Ordering::Relaxed);
        };
        if superseded() {
            return;
        }
        let (owners, entries): (Vec<usize>, Vec<BusEntry>) = request.into_iter().unzip();
        if let Some(too_big) = entries
            .iter()
            .position(|e| e.size() > crate::bus::MAX_REQUEST_BYTES)
        {
            tracing::error!(
                bytes = entries[too_big].size(),
                "event too large for the bus"
            );
            return fail(owners[too_big]);
        }
        let range = 0..entries.len();
        let mut pending: Vec<usize> = range.clone().collect();
        let mut delay = self.retry.first_delay;
        loop {
            let started = Instant::now();
            let outcome = if pending.len() == range.len() {
                self.bus.put_events(&entries).await
            } else {
                let retried: Vec<BusEntry> = pending.iter().map(|&i| entries[i].clone()).collect();
                self.bus.put_events(&retried).await
            };
            slowest.add(started.elapsed().as_secs_f64() * 1000.0);
            let mut permanent = None;
            let sent = pending.len();
            pending = match outcome {
                Ok(outcomes) => pending
                    .iter()
                    .zip(outcomes)
                    .filter_map(|(&i, outcome)| {
                        let failure = outcome.err()?;
                        event_span(&entries[i]).in_scope(|| {
                            tracing::warn!(code = %failure.code, message = %failure.message, "entry rejected")
                        });
                        if PERMANENT.contains(&failure.code.as_str()) {
                            permanent = Some(permanent.map_or(i, |p: usize| p.min(i)));
                        }
                        Some(i)
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, entries = sent, "PutEvents failed");
                    if let Error::BusRefused { code, .. } = &e
                        && PERMANENT_REFUSALS.contains(&code.as_str())
                    {
                        permanent = pending.iter().min().copied();
                    }
                    pending
                }
            };
            figures::published(self.name.as_deref(), sent - pending.len());
            if let Some(index) = permanent {
                figures::rejected(self.name.as_deref(), pending.len());
                return fail(owners[index]);
            }
            let Some(&first_pending) = pending.iter().min() else {
                return;
            };
            let pause = jitter(delay);
            if Instant::now() + pause >= deadline {
                figures::rejected(self.name.as_deref(), pending.len());
                return fail(owners[first_pending]);
            }
            if superseded() {
                return;
            }
            tokio::time::sleep(pause).await;
            delay = (delay * 2).min(self.retry.max_delay);
        }
    }
}

/// The span of an entry's event, read back from its detail (on the failure path only).
fn event_span(entry: &BusEntry) -> tracing::Span {
    serde_json::from_str::<crate::event::PublicEvent>(&entry.detail)
        .map(|event| event.span())
        .unwrap_or_else(|_| tracing::Span::none())
}

/// A record's sequence number. A record without one fails the whole batch, and Lambda
/// bisects down to it.
fn sequence_number(record: &Record<StreamRecord>) -> Option<String> {
    match record {
        Record::Decoded(record) => record.dynamodb.sequence_number.clone(),
        Record::Undecodable { id, .. } => id.clone(),
    }
}

fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::random_range(0.5..1.0))
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::bus::embedded::{EmbeddedBus, Rule};
    use crate::embedded::Database;
    use crate::event::AggregateRef;
    use crate::store::{Key, to_item};
    use serde_json::json;

    /// Publishes `{"size": n}` items; an item without `size` cannot be read.
    fn acl(change: Change) -> Result<Option<EventToPublish>> {
        let item: serde_json::Value = change.new_as()?.unwrap_or_default();
        let size = item["size"]
            .as_u64()
            .ok_or_else(|| Error::Malformed("no size".into()))?;
        let event_type = if size == 13 { "Undeclared" } else { "Sized" };
        let mut event = PublicEvent::new(
            event_type,
            AggregateRef {
                kind: "thing".into(),
                id: change.pk().into(),
                version: 1,
            },
            "t".into(),
        );
        let fill = if item["poison"] == true {
            "poison"
        } else {
            "x"
        };
        event.state = json!({ "padding": fill.repeat(size as usize) });
        Ok(Some(event.to_publish()?))
    }

    fn record(seq: u32, item: serde_json::Value) -> serde_json::Value {
        let mut image = to_item(&item).unwrap();
        image.extend(
            Key::new(format!("k{seq}"), "#")
                .to_item()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        json!({
            "eventID": seq.to_string(), "eventName": "INSERT", "awsRegion": "us-east-1",
            "dynamodb": { "Keys": Key::new(format!("k{seq}"), "#").to_item(), "NewImage": image,
                          "SequenceNumber": seq.to_string(), "SizeBytes": 1 }
        })
    }

    /// Runs the trigger on a batch of `items`, read the tolerant way and in one pass
    /// ([`ImageTypes`]), which must come to the same.
    async fn run(items: Vec<serde_json::Value>) -> (DynamoDbEventResponse, usize) {
        let records = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| record(i as u32 + 1, item))
            .collect();
        run_records(records).await
    }

    async fn run_records(records: Vec<serde_json::Value>) -> (DynamoDbEventResponse, usize) {
        let (response, published) = run_reading(records.clone(), false).await;
        let (once, published_once) = run_reading(records, true).await;
        assert_eq!(
            (&response.batch_item_failures, published),
            (&once.batch_item_failures, published_once)
        );
        (response, published)
    }

    async fn run_reading(
        records: Vec<serde_json::Value>,
        in_one_pass: bool,
    ) -> (DynamoDbEventResponse, usize) {
        let db = Database::open_in_memory().unwrap();
        let rule = Rule {
            name: "all".into(),
            pattern: json!({"source": ["test"]}),
            target_queues: vec!["q".into()],
        };
        let bus = Arc::new(EmbeddedBus::new(db.clone(), &[rule], vec![]).unwrap());
        let publishes = EventSet {
            source: "test",
            types: &["Sized"],
        };
        let mut trigger = Trigger::new(bus, publishes, acl);
        if in_one_pass {
            trigger = trigger.reading(ImageTypes::<serde_json::Value, serde_json::Value>::under(
                "k",
            ));
        }
        let payload = json!({ "Records": records }).to_string();
        let deadline = Instant::now() + Duration::from_secs(1);
        let response = trigger
            .handle_payload(payload.as_bytes(), Some(deadline))
            .await;
        (response.unwrap(), db.peek("q", 100).unwrap().len())
    }

    fn failed_at(response: &DynamoDbEventResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_batch_publishes_every_record_in_requests_of_at_most_ten() {
        let (response, published) = run((0..25).map(|_| json!({"size": 10})).collect()).await;
        assert!(failed_at(&response).is_empty());
        assert_eq!(published, 25);
    }

    #[tokio::test]
    async fn an_unreadable_record_is_the_failure_and_nothing_after_it_is_published() {
        let (response, published) = run(vec![
            json!({"size": 1}),
            json!({"size": 1}),
            json!({}),
            json!({"size": 1}),
        ])
        .await;
        assert_eq!(failed_at(&response), ["3"]);
        assert_eq!(published, 2);
    }

    #[test]
    fn sample_events_are_read_as_the_trigger_reads_a_batch() {
        fn samples() -> Result<Vec<History>> {
            let item = |size: u64| to_item(&json!({"pk": "k1", "sk": "#", "size": size}));
            Ok(vec![vec![item(1)?, item(2)?]])
        }
        #[derive(serde::Deserialize)]
        struct Weighed {
            _weight: u64,
        }
        let bus =
            Arc::new(EmbeddedBus::new(Database::open_in_memory().unwrap(), &[], vec![]).unwrap());
        let publishes = EventSet {
            source: "test",
            types: &["Sized"],
        };
        let trigger = Trigger::new(bus, publishes, acl).with_samples(samples);
        let as_text = trigger.sample_events().unwrap();
        assert_eq!(as_text.len(), 2);
        let as_values =
            trigger
                .clone()
                .reading(ImageTypes::<serde_json::Value, serde_json::Value>::under(
                    "k",
                ));
        assert_eq!(as_values.sample_events().unwrap(), as_text);
        let as_weighed = trigger.reading(ImageTypes::<Weighed, Weighed>::under("k"));
        assert!(
            as_weighed.sample_events().is_err(),
            "the samples do not bear the declaration out"
        );
    }

    #[tokio::test]
    async fn a_record_that_does_not_decode_fails_alone_at_its_place() {
        let mut records: Vec<_> = (1..=4).map(|i| record(i, json!({"size": 1}))).collect();
        records[2]["dynamodb"]["Keys"] = json!({});
        let (response, published) = run_records(records).await;
        let failures = &response.batch_item_failures;
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].item_identifier.as_deref(), Some("3"));
        assert_eq!(published, 2);
    }

    #[tokio::test]
    async fn an_event_too_large_for_the_bus_fails_alone_at_its_place() {
        let (response, published) = run(vec![
            json!({"size": 1}),
            json!({"size": 300_000}),
            json!({"size": 1}),
        ])
        .await;
        assert_eq!(failed_at(&response), ["2"]);
        assert_eq!(published, 1);
    }

    /// The embedded bus behind a network-like delay, which counts the requests in flight
    /// together and rejects for good every entry whose detail holds `poison`.
    struct Slow {
        bus: EmbeddedBus,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Bus for Slow {
        async fn put_events(
            &self,
            entries: &[BusEntry],
        ) -> Result<Vec<Result<(), crate::bus::EntryFailure>>> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let (poisoned, clean): (Vec<_>, Vec<_>) =
                entries.iter().partition(|e| e.detail.contains("poison"));
            let clean: Vec<BusEntry> = clean.into_iter().cloned().collect();
            self.bus.put_events(&clean).await?;
            Ok(entries
                .iter()
                .map(|e| match poisoned.contains(&e) {
                    true => Err(crate::bus::EntryFailure {
                        code: "MalformedDetail".into(),
                        message: "poison".into(),
                    }),
                    false => Ok(()),
                })
                .collect())
        }
    }

    async fn run_slow(items: Vec<serde_json::Value>, in_flight: usize) -> (Vec<String>, usize) {
        let db = Database::open_in_memory().unwrap();
        let rule = Rule {
            name: "all".into(),
            pattern: json!({"source": ["test"]}),
            target_queues: vec!["q".into()],
        };
        let bus = Arc::new(Slow {
            bus: EmbeddedBus::new(db.clone(), &[rule], vec![]).unwrap(),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
        });
        let publishes = EventSet {
            source: "test",
            types: &["Sized"],
        };
        let trigger = Trigger::new(bus.clone(), publishes, acl).with_in_flight(in_flight);
        let records: Vec<_> = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| record(i as u32 + 1, item))
            .collect();
        let event = Batch::from_json(json!({ "Records": records }).to_string()).unwrap();
        let response = trigger
            .handle_batch(event, Some(Instant::now() + Duration::from_secs(5)))
            .await;
        // Counted, not timed: a wall-clock bound failed on a loaded CI machine.
        assert_eq!(bus.most_in_flight.load(Ordering::SeqCst), in_flight);
        (failed_at(&response), db.peek("q", 1000).unwrap().len())
    }

    #[tokio::test]
    async fn requests_are_in_flight_together_up_to_the_bound() {
        for in_flight in [1, 4, 10] {
            let (failed, published) = run_slow(vec![json!({"size": 1}); 100], in_flight).await;
            assert!(failed.is_empty());
            assert_eq!(published, 100);
        }
    }

    #[tokio::test]
    async fn with_requests_in_flight_the_earliest_rejected_record_is_the_failure() {
        // Records 35 and 72 are rejected for good; the requests after 35 may be published,
        // but the batch fails at 35, from where Lambda retries.
        let items = (1..=100)
            .map(|i| match i {
                35 | 72 => json!({"size": 1, "poison": true}),
                _ => json!({"size": 1}),
            })
            .collect();
        let (failed, published) = run_slow(items, 10).await;
        assert_eq!(failed, ["35"]);
        assert!(
            published >= 34,
            "everything before the failure is published"
        );
    }

    /// A bus whose service refuses every request with `code`, counting them.
    struct Refusing {
        code: &'static str,
        requests: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Bus for Refusing {
        async fn put_events(
            &self,
            _: &[BusEntry],
        ) -> Result<Vec<Result<(), crate::bus::EntryFailure>>> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            Err(Error::BusRefused {
                code: self.code.into(),
                reason: "refused".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_refusal_that_a_retry_cannot_fix_fails_at_once_and_others_are_retried() {
        for (code, retried) in [
            ("AccessDeniedException", false),
            ("ThrottlingException", true),
        ] {
            let bus = Arc::new(Refusing {
                code,
                requests: AtomicUsize::new(0),
            });
            let publishes = EventSet {
                source: "test",
                types: &["Sized"],
            };
            let trigger = Trigger::new(bus.clone(), publishes, acl).with_in_flight(1);
            let records: Vec<_> = (1..=3).map(|i| record(i, json!({"size": 1}))).collect();
            let event = Batch::from_json(json!({ "Records": records }).to_string()).unwrap();
            let response = trigger
                .handle_batch(event, Some(Instant::now() + Duration::from_secs(1)))
                .await;
            assert_eq!(failed_at(&response), ["1"], "{code}");
            assert_eq!(bus.requests.load(Ordering::SeqCst) > 1, retried, "{code}");
        }
    }

    #[tokio::test]
    async fn an_event_the_service_does_not_declare_is_never_published() {
        let (response, published) = run(vec![
            json!({"size": 1}),
            json!({"size": 13}),
            json!({"size": 1}),
        ])
        .await;
        assert_eq!(failed_at(&response), ["2"]);
        assert_eq!(published, 1);
    }
}
