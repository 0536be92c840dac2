//! Stream trigger: DynamoDB stream records in, public events on the bus out.
//!
//! Records are handled in order. The first record that cannot be turned into an event,
//! or whose event the bus still rejects after retries, is reported as the batch item
//! failure; Lambda then retries from it, so order within a key is kept. Records after it
//! are not published in this invocation.

use crate::bus::{Bus, BusEntry, chunk};
use crate::event::PublicEvent;
use crate::store::{Item, from_item};
use crate::{Error, Result};
use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// What a stream record says happened to an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

/// A decoded stream record: the item's images before and after.
#[derive(Clone, Debug)]
pub struct Change {
    pub kind: ChangeKind,
    pub keys: Item,
    pub old: Option<Item>,
    pub new: Option<Item>,
}

impl Change {
    pub fn from_record(record: &EventRecord) -> Result<Change> {
        let kind = match record.event_name.as_str() {
            "INSERT" => ChangeKind::Insert,
            "MODIFY" => ChangeKind::Modify,
            "REMOVE" => ChangeKind::Remove,
            other => return Err(Error::Malformed(format!("unknown event name {other:?}"))),
        };
        let image = |item: &Item| (!item.is_empty()).then(|| item.clone());
        let change = Change {
            kind,
            keys: record.change.keys.clone(),
            old: image(&record.change.old_image),
            new: image(&record.change.new_image),
        };
        let consistent = match kind {
            ChangeKind::Insert => change.new.is_some(),
            ChangeKind::Modify => change.new.is_some() && change.old.is_some(),
            ChangeKind::Remove => change.old.is_some(),
        };
        if !consistent {
            return Err(Error::Malformed(format!(
                "{kind:?} record without its images"
            )));
        }
        Ok(change)
    }

    /// The key attribute `pk`, from the keys or either image.
    pub fn pk(&self) -> Option<String> {
        [Some(&self.keys), self.new.as_ref(), self.old.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|item| crate::store::string_attr(item, "pk").ok())
    }

    pub fn new_as<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.new.clone().map(from_item).transpose()
    }

    pub fn old_as<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.old.clone().map(from_item).transpose()
    }
}

/// A service's anti-corruption layer: the only function that decides what is published.
pub type Acl = fn(&Change) -> Result<Option<PublicEvent>>;

/// How often and how patiently rejected entries are retried.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub attempts: u32,
    pub first_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_delay: Duration::from_millis(25),
        }
    }
}

/// The stream-to-bus pipeline of one service.
#[derive(Clone)]
pub struct Trigger {
    bus: Arc<dyn Bus>,
    source: String,
    acl: Acl,
    retry: Retry,
}

impl Trigger {
    pub fn new(bus: Arc<dyn Bus>, source: impl Into<String>, acl: Acl) -> Self {
        Trigger {
            bus,
            source: source.into(),
            acl,
            retry: Retry::default(),
        }
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Handles one stream batch and reports the first record that failed, if any.
    pub async fn handle(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let records = &event.records;
        let mut entries = vec![];
        let mut owners = vec![];
        let mut first_failure = None;
        for (index, record) in records.iter().enumerate() {
            match self.entry_for(record) {
                Ok(Some(entry)) => {
                    entries.push(entry);
                    owners.push(index);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, event_id = %record.event_id, "stream record rejected");
                    first_failure = Some(index);
                    break;
                }
            }
        }
        if let Some(entry) = self.publish(&entries).await {
            let index = owners[entry];
            first_failure = Some(first_failure.map_or(index, |f: usize| f.min(index)));
        }
        tracing::info!(
            records = records.len(),
            events = entries.len(),
            failed_at = first_failure,
            source = %self.source,
            "stream batch handled"
        );
        let mut response = DynamoDbEventResponse::default();
        if let Some(index) = first_failure {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = records[index].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        response
    }

    fn entry_for(&self, record: &EventRecord) -> Result<Option<BusEntry>> {
        let change = Change::from_record(record)?;
        let Some(event) = (self.acl)(&change)? else {
            return Ok(None);
        };
        Ok(Some(BusEntry {
            source: self.source.clone(),
            detail_type: event.event_type.clone(),
            time: event.occurred_at.clone(),
            detail: serde_json::to_string(&event)?,
        }))
    }

    /// Publishes entries in order. Returns the index of the first entry that could not be
    /// put after all retries; entries after it are not attempted.
    async fn publish(&self, entries: &[BusEntry]) -> Option<usize> {
        for range in chunk(entries) {
            let mut pending: Vec<usize> = range.collect();
            let mut delay = self.retry.first_delay;
            for attempt in 1..=self.retry.attempts {
                let batch: Vec<BusEntry> = pending.iter().map(|&i| entries[i].clone()).collect();
                pending = match self.bus.put_events(&batch).await {
                    Ok(outcomes) => pending
                        .iter()
                        .zip(outcomes)
                        .filter_map(|(&i, outcome)| match outcome {
                            Ok(()) => None,
                            Err(failure) => {
                                tracing::warn!(code = %failure.code, message = %failure.message, attempt, "entry rejected");
                                Some(i)
                            }
                        })
                        .collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "PutEvents failed");
                        pending
                    }
                };
                if pending.is_empty() {
                    break;
                }
                if attempt < self.retry.attempts {
                    tokio::time::sleep(jitter(delay)).await;
                    delay *= 2;
                }
            }
            if let Some(&first) = pending.iter().min() {
                return Some(first);
            }
        }
        None
    }
}

fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::random_range(0.5..1.0))
}
