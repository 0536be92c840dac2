//! The AWS-API backend: the same functions through their AWS adapters, against any
//! AWS-compatible endpoint (moto in the tests). Stream positions and a copy of every routed
//! event are kept in the devstack's own database, so that a restart resumes where it stopped.
//!
//! - `aws/provision.rs`: creates the template's tables, streams, queues, bus and rules at the
//!   endpoint.
//! - `aws/streams.rs`: polls DynamoDB Streams, shard by shard, as a stream event source
//!   mapping does.
//! - `aws/sqs.rs`: receives from and deletes on SQS, as a queue event source mapping does.
//! - this file: [`AwsInfra`], the [`Infra`] the devstack runs on, and the archive's copy.

mod provision;
mod sqs;
mod streams;

use crate::infra::{ChangeFeed, Infra, QueueSource};
use crate::template::QueueSpec;
use async_trait::async_trait;
use bulkhead::bus::Bus;
use bulkhead::bus::aws::EventBridgeBus;
use bulkhead::embedded::{ArchivePage, ArchiveQuery, Database, QueueDepth};
use bulkhead::mail::outbox::Outbox;
use bulkhead::mail::{Mail, Mailer};
use bulkhead::store::aws::DynamoTable;
use bulkhead::store::{Item, Table};
use bulkhead::{Error, Result};
use serde_json::Value;
use sqs::SqsQueue;
use std::collections::HashMap;
use std::sync::Arc;
use streams::StreamsFeed;

/// The queue a rule of the devstack's own copies every event to, for the archive endpoint.
const ARCHIVE_QUEUE: &str = "DevstackArchive";

fn aws_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// Clients for one endpoint, and the names of what was created there.
pub struct AwsInfra {
    endpoint: String,
    prefix: String,
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    /// What the bus port is built from: it signs and sends `PutEvents` itself.
    config: aws_config::SdkConfig,
    db: Arc<Database>,
    queue_urls: HashMap<String, String>,
    stream_arns: HashMap<String, String>,
}

impl AwsInfra {
    fn physical(&self, logical: &str) -> String {
        format!("{}-{logical}", self.prefix)
    }

    fn url(&self, queue: &str) -> Result<&str> {
        self.queue_urls
            .get(queue)
            .map(String::as_str)
            .ok_or_else(|| Error::Config(format!("no queue {queue}")))
    }

    /// Moves what the archive queue holds into the devstack's database.
    async fn collect_archive(&self) -> Result<()> {
        let url = self.url(ARCHIVE_QUEUE)?;
        loop {
            let messages = sqs::receive(&self.sqs, url, 10, 30).await?;
            if messages.is_empty() {
                return Ok(());
            }
            let archived: Vec<(String, String)> = messages
                .iter()
                .map(|m| (crate::infra::ARCHIVE.to_string(), m.body.clone()))
                .collect();
            self.db.send(&[], &archived)?;
            sqs::delete(&self.sqs, url, &messages).await?;
        }
    }
}

#[async_trait]
impl Infra for AwsInfra {
    fn location(&self) -> String {
        format!("AWS API at {} (resources {}-*)", self.endpoint, self.prefix)
    }

    fn table(&self, logical: &str) -> Result<Arc<dyn Table>> {
        Ok(Arc::new(DynamoTable::new(
            self.dynamodb.clone(),
            self.physical(logical),
        )))
    }

    fn bus(&self, logical: &str) -> Result<Arc<dyn Bus>> {
        Ok(Arc::new(EventBridgeBus::new(
            &self.config,
            self.physical(logical),
        )?))
    }

    fn change_feed(&self, consumer: &str, table: &str) -> Result<Box<dyn ChangeFeed>> {
        let arn = self
            .stream_arns
            .get(table)
            .ok_or_else(|| Error::Config(format!("{table} has no stream")))?;
        Ok(Box::new(StreamsFeed::new(
            self.streams.clone(),
            arn.clone(),
            consumer,
            self.db.clone(),
        )))
    }

    fn queue(&self, spec: &QueueSpec) -> Result<Arc<dyn QueueSource>> {
        Ok(Arc::new(SqsQueue::new(
            self.sqs.clone(),
            self.url(&spec.name)?,
        )))
    }

    async fn stream_lag(&self, _consumer: &str, _table: &str) -> Result<Option<i64>> {
        Ok(None)
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        sqs::depth(&self.sqs, self.url(queue)?).await
    }

    async fn send(&self, queue: &str, body: String) -> Result<()> {
        self.sqs
            .send_message()
            .queue_url(self.url(queue)?)
            .message_body(body)
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        Ok(())
    }

    async fn peek(&self, queue: &str) -> Result<Vec<String>> {
        Ok(sqs::receive(&self.sqs, self.url(queue)?, 10, 0)
            .await?
            .into_iter()
            .map(|m| m.body)
            .collect())
    }

    async fn put_raw(&self, table: &str, item: Item) -> Result<()> {
        self.table(table)?
            .write(vec![bulkhead::store::Write::put(
                item,
                bulkhead::store::Condition::Always,
            )])
            .await
    }

    async fn archived(&self) -> Result<Vec<Value>> {
        self.collect_archive().await?;
        let mut events: Vec<Value> = self
            .db
            .archived(crate::infra::ARCHIVE)?
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect();
        // SQS does not keep order; the events' own time does.
        events.sort_by(|a, b| {
            a["detail"]["occurredAt"]
                .as_str()
                .cmp(&b["detail"]["occurredAt"].as_str())
        });
        Ok(events)
    }

    async fn archive_page(&self, query: &ArchiveQuery) -> Result<ArchivePage> {
        self.collect_archive().await?;
        self.db.archive_page(crate::infra::ARCHIVE, query)
    }

    fn mailer(&self) -> Arc<dyn Mailer> {
        Arc::new(Outbox::new(self.db.clone()))
    }

    fn outbox(&self) -> Result<Vec<Mail>> {
        self.db.outbox()
    }
}
