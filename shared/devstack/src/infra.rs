//! What the devstack runs on: the embedded database, or any AWS-compatible endpoint. Both
//! give the functions the same ports and give the pollers the same change feeds and queues.

use crate::template::{QueueSpec, Template};
use async_trait::async_trait;
use bulkhead::Result;
use bulkhead::bus::Bus;
use bulkhead::bus::embedded::{EmbeddedBus, Rule};
use bulkhead::embedded::{ArchivePage, ArchiveQuery, Database, QueueDepth, TableSpec};
use bulkhead::mail::outbox::Outbox;
use bulkhead::mail::{Mail, Mailer};
use bulkhead::store::embedded::EmbeddedTable;
use bulkhead::store::{Condition, Item, Table, Write};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";
/// The archive the devstack's own endpoint reads.
pub const ARCHIVE: &str = "BulkheadArchive";

/// One stream record, in the shape of a Lambda DynamoDB event record.
#[derive(Clone, Debug)]
pub struct FeedRecord {
    pub seq: String,
    pub at_millis: i64,
    pub record: Value,
}

/// A table's change feed, read from a checkpoint, as a stream event source mapping reads it.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Up to `max` records after the checkpoint, oldest first.
    async fn read(&mut self, max: usize) -> Result<Vec<FeedRecord>>;
    /// Marks every record up to and including `seq` as processed, durably.
    async fn commit(&mut self, seq: &str) -> Result<()>;
    /// Waits for new records, for at most `at_most`.
    async fn idle(&self, at_most: Duration) {
        tokio::time::sleep(at_most).await;
    }
}

/// A received queue message.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub receipt: String,
    pub body: String,
    pub receive_count: i64,
    pub sent_at: i64,
    pub first_received_at: i64,
}

/// A queue, as an SQS event source mapping polls it. Redrive to the dead-letter queue
/// happens on receive, as SQS does it.
#[async_trait]
pub trait QueueSource: Send + Sync {
    async fn receive(&self, max: usize, visibility_ms: i64) -> Result<Vec<Received>>;
    async fn delete(&self, done: &[Received]) -> Result<()>;
    /// Waits for new messages, for at most `at_most`.
    async fn idle(&self, at_most: Duration) {
        tokio::time::sleep(at_most).await;
    }
}

/// The infrastructure under the functions.
#[async_trait]
pub trait Infra: Send + Sync {
    /// Where the data lives, for the startup line.
    fn location(&self) -> String;
    fn table(&self, logical: &str) -> Result<Arc<dyn Table>>;
    fn bus(&self, logical: &str) -> Result<Arc<dyn Bus>>;
    fn change_feed(&self, consumer: &str, table: &str) -> Result<Box<dyn ChangeFeed>>;
    fn queue(&self, spec: &QueueSpec) -> Result<Arc<dyn QueueSource>>;
    /// Records not yet consumed, when the feed can tell without reading them.
    async fn stream_lag(&self, consumer: &str, table: &str) -> Result<Option<i64>>;
    async fn depth(&self, queue: &str) -> Result<QueueDepth>;
    async fn send(&self, queue: &str, body: String) -> Result<()>;
    /// Message bodies in a queue, without consuming them.
    async fn peek(&self, queue: &str) -> Result<Vec<String>>;
    /// Writes an item as it is, past every function: for injecting faults.
    async fn put_raw(&self, table: &str, item: Item) -> Result<()>;
    /// Every event the bus accepted, oldest first.
    async fn archived(&self) -> Result<Vec<Value>>;
    /// A page of the archive's events, in order of event time.
    async fn archive_page(&self, query: &ArchiveQuery) -> Result<ArchivePage>;
    /// The local outbox every function's mail goes to, on either backend.
    fn mailer(&self) -> Arc<dyn Mailer>;
    /// Every mail the outbox holds, oldest first.
    fn outbox(&self) -> Result<Vec<Mail>>;
    /// Generation `n` of a table (see `rebuild`): `<logical>~g<n>`, or the table itself
    /// for generation 1.
    fn generation(&self, logical: &str, n: u32) -> Result<Arc<dyn Table>> {
        let _ = (logical, n);
        Err(bulkhead::Error::Config(
            "this backend does not keep generations of a table".into(),
        ))
    }
    /// Every item of a generation, in key order.
    async fn generation_items(&self, logical: &str, n: u32) -> Result<Vec<Item>> {
        let _ = (logical, n);
        Err(bulkhead::Error::Config(
            "this backend does not keep generations of a table".into(),
        ))
    }
    /// Drops a generation, as DeleteTable does.
    async fn drop_generation(&self, logical: &str, n: u32) -> Result<()> {
        let _ = (logical, n);
        Err(bulkhead::Error::Config(
            "this backend does not keep generations of a table".into(),
        ))
    }
    /// Whether [`Infra::generation`] works here.
    fn keeps_generations(&self) -> bool {
        false
    }
}

/// The physical name of generation `n` of a table.
pub fn generation_name(logical: &str, n: u32) -> String {
    if n <= 1 {
        logical.to_string()
    } else {
        format!("{logical}~g{n}")
    }
}

/// The stream ARN the devstack gives a table.
pub fn stream_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/devstack")
}

/// The SQS event Lambda would pass for these messages.
pub fn sqs_event(
    queue_arn: &str,
    messages: &[Received],
) -> serde_json::Result<aws_lambda_events::event::sqs::SqsEvent> {
    let records: Vec<_> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": m.sent_at.to_string(),
                    "SenderId": ACCOUNT,
                    "ApproximateFirstReceiveTimestamp": m.first_received_at.to_string(),
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

/// The embedded backend: one SQLite database.
pub struct EmbeddedInfra {
    db: Arc<Database>,
    path: std::path::PathBuf,
    tables: HashMap<String, TableSpec>,
    buses: HashMap<String, Arc<dyn Bus>>,
}

impl EmbeddedInfra {
    pub fn open(template: &Template, path: &std::path::Path) -> Result<Self> {
        let db = Database::open(path)?;
        let mut buses: HashMap<String, Arc<dyn Bus>> = HashMap::new();
        for bus in &template.buses {
            let rules: Vec<Rule> = template
                .rules
                .iter()
                .filter(|r| &r.bus == bus)
                .map(|r| Rule {
                    name: r.name.clone(),
                    pattern: r.pattern.clone(),
                    target_queues: r.targets.clone(),
                })
                .collect();
            let archives = template
                .archives
                .iter()
                .filter(|(_, b)| b == bus)
                .map(|(a, _)| a.clone())
                .collect();
            buses.insert(
                bus.clone(),
                Arc::new(EmbeddedBus::new(db.clone(), &rules, archives)?),
            );
        }
        let tables = template
            .tables
            .iter()
            .map(|(name, (spec, _))| (name.clone(), spec.clone()))
            .collect();
        Ok(EmbeddedInfra {
            db,
            path: path.to_path_buf(),
            tables,
            buses,
        })
    }

    pub fn database(&self) -> Arc<Database> {
        self.db.clone()
    }

    fn spec(&self, table: &str) -> Result<&TableSpec> {
        self.tables
            .get(table)
            .ok_or_else(|| bulkhead::Error::Config(format!("no table {table}")))
    }
}

#[async_trait]
impl Infra for EmbeddedInfra {
    fn location(&self) -> String {
        format!("embedded data in {}", self.path.display())
    }

    fn table(&self, logical: &str) -> Result<Arc<dyn Table>> {
        Ok(Arc::new(EmbeddedTable::new(
            self.db.clone(),
            self.spec(logical)?.clone(),
        )))
    }

    fn bus(&self, logical: &str) -> Result<Arc<dyn Bus>> {
        self.buses
            .get(logical)
            .cloned()
            .ok_or_else(|| bulkhead::Error::Config(format!("no bus {logical}")))
    }

    fn change_feed(&self, consumer: &str, table: &str) -> Result<Box<dyn ChangeFeed>> {
        Ok(Box::new(EmbeddedFeed {
            db: self.db.clone(),
            consumer: consumer.into(),
            table: table.into(),
        }))
    }

    fn queue(&self, spec: &QueueSpec) -> Result<Arc<dyn QueueSource>> {
        Ok(Arc::new(EmbeddedQueue {
            db: self.db.clone(),
            spec: spec.clone(),
        }))
    }

    async fn stream_lag(&self, consumer: &str, table: &str) -> Result<Option<i64>> {
        Ok(Some(
            (self.db.last_change(table)? - self.db.checkpoint(consumer)?).max(0),
        ))
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        self.db.queue_depth(queue)
    }

    async fn send(&self, queue: &str, body: String) -> Result<()> {
        self.db.send(&[(queue.to_string(), body)], &[])
    }

    async fn peek(&self, queue: &str) -> Result<Vec<String>> {
        self.db.peek(queue, 1000)
    }

    async fn put_raw(&self, table: &str, item: Item) -> Result<()> {
        self.db
            .write(self.spec(table)?, vec![Write::put(item, Condition::Always)])
    }

    async fn archived(&self) -> Result<Vec<Value>> {
        Ok(self
            .db
            .archived(ARCHIVE)?
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect())
    }

    async fn archive_page(&self, query: &ArchiveQuery) -> Result<ArchivePage> {
        self.db.archive_page(ARCHIVE, query)
    }

    fn mailer(&self) -> Arc<dyn Mailer> {
        Arc::new(Outbox::new(self.db.clone()))
    }

    fn outbox(&self) -> Result<Vec<Mail>> {
        self.db.outbox()
    }

    fn generation(&self, logical: &str, n: u32) -> Result<Arc<dyn Table>> {
        let spec = TableSpec {
            name: generation_name(logical, n),
            ..self.spec(logical)?.clone()
        };
        Ok(Arc::new(EmbeddedTable::new(self.db.clone(), spec)))
    }

    async fn generation_items(&self, logical: &str, n: u32) -> Result<Vec<Item>> {
        self.spec(logical)?;
        self.db.items_of(&generation_name(logical, n))
    }

    async fn drop_generation(&self, logical: &str, n: u32) -> Result<()> {
        self.spec(logical)?;
        self.db.drop_table(&generation_name(logical, n)).map(drop)
    }

    fn keeps_generations(&self) -> bool {
        true
    }
}

struct EmbeddedFeed {
    db: Arc<Database>,
    consumer: String,
    table: String,
}

#[async_trait]
impl ChangeFeed for EmbeddedFeed {
    async fn read(&mut self, max: usize) -> Result<Vec<FeedRecord>> {
        let checkpoint = self.db.checkpoint(&self.consumer)?;
        let rows = self.db.changes_after(&self.table, checkpoint, max)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let seq = format!("{:021}", row.seq);
                let mut change = json!({
                    "ApproximateCreationDateTime": row.at_millis / 1000,
                    "Keys": row.keys,
                    "SequenceNumber": seq,
                    "SizeBytes": 1,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                });
                if let Some(new) = &row.new {
                    change["NewImage"] = json!(new);
                }
                if let Some(old) = &row.old {
                    change["OldImage"] = json!(old);
                }
                let record = json!({
                    "eventID": row.seq.to_string(),
                    "eventName": row.kind,
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": REGION,
                    "dynamodb": change,
                    "eventSourceARN": stream_arn(&self.table),
                });
                FeedRecord {
                    seq,
                    at_millis: row.at_millis,
                    record,
                }
            })
            .collect())
    }

    async fn commit(&mut self, seq: &str) -> Result<()> {
        let seq = seq
            .parse()
            .map_err(|_| bulkhead::Error::Malformed(format!("sequence number {seq}")))?;
        self.db.set_checkpoint(&self.consumer, seq)
    }

    async fn idle(&self, at_most: Duration) {
        let signal = self.db.signal(&format!("stream/{}", self.table));
        let _ = tokio::time::timeout(at_most, signal.notified()).await;
    }
}

struct EmbeddedQueue {
    db: Arc<Database>,
    spec: QueueSpec,
}

#[async_trait]
impl QueueSource for EmbeddedQueue {
    async fn receive(&self, max: usize, visibility_ms: i64) -> Result<Vec<Received>> {
        Ok(self
            .db
            .receive(
                &self.spec.name,
                max,
                visibility_ms,
                self.spec.redrive.as_ref(),
            )?
            .into_iter()
            .map(|m| Received {
                receipt: format!("{}#{}", m.id, m.receive_count),
                id: m.id,
                body: m.body,
                receive_count: m.receive_count,
                sent_at: m.sent_at,
                first_received_at: m.first_received_at,
            })
            .collect())
    }

    async fn delete(&self, done: &[Received]) -> Result<()> {
        let ids: Vec<String> = done.iter().map(|m| m.id.clone()).collect();
        self.db.delete(&ids)
    }

    async fn idle(&self, at_most: Duration) {
        let signal = self.db.signal(&format!("queue/{}", self.spec.name));
        let _ = tokio::time::timeout(at_most, signal.notified()).await;
    }
}
