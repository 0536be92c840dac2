//! The AWS-API backend: the same functions through their AWS adapters, against any
//! AWS-compatible endpoint (moto in the tests). The devstack creates the template's tables,
//! streams, queues, bus and rules there, and polls DynamoDB Streams and SQS the way Lambda's
//! event source mappings do. Stream positions and a copy of every routed event are kept in
//! the devstack's own database, so that a restart resumes where it stopped.

use crate::infra::{ChangeFeed, FeedRecord, Infra, QueueSource, Received};
use crate::template::{QueueSpec, Template};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use bulkhead::bus::Bus;
use bulkhead::bus::aws::EventBridgeBus;
use bulkhead::embedded::{Database, QueueDepth};
use bulkhead::store::aws::DynamoTable;
use bulkhead::store::{Item, Table};
use bulkhead::{Error, Result};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

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
    db: Arc<Database>,
    queue_urls: HashMap<String, String>,
    stream_arns: HashMap<String, String>,
}

impl AwsInfra {
    /// Creates (or finds) every resource of the template at the endpoint. Physical names are
    /// `<prefix>-<logical id>`.
    pub async fn provision(
        template: &Template,
        endpoint: &str,
        prefix: &str,
        db: Arc<Database>,
    ) -> Result<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(crate::infra::REGION));
        if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
            let credentials = aws_sdk_dynamodb::config::Credentials::new(
                "devstack", "devstack", None, None, "devstack",
            );
            loader = loader.credentials_provider(credentials);
        }
        let config = loader.load().await;
        let mut infra = AwsInfra {
            endpoint: endpoint.into(),
            prefix: prefix.into(),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            streams: aws_sdk_dynamodbstreams::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            db,
            queue_urls: HashMap::new(),
            stream_arns: HashMap::new(),
        };
        for (name, (spec, ttl)) in &template.tables {
            infra.create_table(name, spec, ttl.as_deref()).await?;
        }
        // Dead-letter queues first, so that redrive policies can name them.
        let mut queues: Vec<&QueueSpec> = template.queues.values().collect();
        queues.sort_by_key(|q| q.redrive.is_some());
        for queue in queues {
            infra.create_queue(&queue.name, queue).await?;
        }
        let archive = QueueSpec {
            name: ARCHIVE_QUEUE.into(),
            visibility_timeout_ms: 30_000,
            redrive: None,
        };
        infra.create_queue(ARCHIVE_QUEUE, &archive).await?;
        let sources: Vec<Value> = {
            let mut services: Vec<&str> = template
                .functions
                .iter()
                .map(|f| f.service.as_str())
                .collect();
            services.dedup();
            services
                .iter()
                .map(|s| json!(bulkhead::event::source_of(s)))
                .collect()
        };
        for bus in &template.buses {
            infra.create_bus(bus).await?;
            let mut rules: Vec<(String, Value, Vec<String>)> = template
                .rules
                .iter()
                .filter(|r| &r.bus == bus)
                .map(|r| (r.name.clone(), r.pattern.clone(), r.targets.clone()))
                .collect();
            // The devstack's copy of the archive: every event, to a queue it reads itself.
            rules.push((
                "DevstackArchiveRule".into(),
                json!({ "source": sources }),
                vec![ARCHIVE_QUEUE.into()],
            ));
            for (rule, pattern, targets) in rules {
                infra.create_rule(bus, &rule, &pattern, &targets).await?;
            }
        }
        Ok(infra)
    }

    fn physical(&self, logical: &str) -> String {
        format!("{}-{logical}", self.prefix)
    }

    async fn create_table(
        &mut self,
        name: &str,
        spec: &bulkhead::embedded::TableSpec,
        ttl: Option<&str>,
    ) -> Result<()> {
        let attribute = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |hash: &str, range: &str| -> Result<Vec<KeySchemaElement>> {
            Ok(vec![
                KeySchemaElement::builder()
                    .attribute_name(hash)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(aws_err)?,
                KeySchemaElement::builder()
                    .attribute_name(range)
                    .key_type(KeyType::Range)
                    .build()
                    .map_err(aws_err)?,
            ])
        };
        let mut attributes = vec![
            attribute("pk").map_err(aws_err)?,
            attribute("sk").map_err(aws_err)?,
        ];
        let mut indexes = vec![];
        for index in &spec.indexes {
            let (hash, range) = (format!("{index}pk"), format!("{index}sk"));
            attributes.push(attribute(&hash).map_err(aws_err)?);
            attributes.push(attribute(&range).map_err(aws_err)?);
            indexes.push(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .set_key_schema(Some(key(&hash, &range)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(aws_err)?,
            );
        }
        let mut create = self
            .dynamodb
            .create_table()
            .table_name(self.physical(name))
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(key("pk", "sk")?))
            .billing_mode(BillingMode::PayPerRequest);
        if !indexes.is_empty() {
            create = create.set_global_secondary_indexes(Some(indexes));
        }
        if spec.stream {
            let stream = StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(aws_err)?;
            create = create.stream_specification(stream);
        }
        if let Err(e) = create.send().await {
            let e = e.into_service_error();
            if !e.is_resource_in_use_exception() {
                return Err(aws_err(e));
            }
        }
        if let Some(attribute) = ttl {
            let ttl = TimeToLiveSpecification::builder()
                .attribute_name(attribute)
                .enabled(true)
                .build()
                .map_err(aws_err)?;
            let set = self
                .dynamodb
                .update_time_to_live()
                .table_name(self.physical(name))
                .time_to_live_specification(ttl);
            if let Err(e) = set.send().await {
                tracing::debug!(error = %aws_err(e.into_service_error()), "time to live not set");
            }
        }
        if spec.stream {
            let described = self
                .dynamodb
                .describe_table()
                .table_name(self.physical(name))
                .send()
                .await
                .map_err(|e| aws_err(e.into_service_error()))?;
            let arn = described
                .table()
                .and_then(|t| t.latest_stream_arn())
                .ok_or_else(|| Error::Store(format!("{name} has no stream")))?;
            self.stream_arns.insert(name.into(), arn.into());
        }
        Ok(())
    }

    async fn queue_arn(&self, url: &str) -> Result<String> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| Error::Store(format!("no ARN for {url}")))
    }

    async fn create_queue(&mut self, name: &str, spec: &QueueSpec) -> Result<()> {
        let mut create = self
            .sqs
            .create_queue()
            .queue_name(self.physical(name))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                (spec.visibility_timeout_ms / 1000).to_string(),
            );
        if let Some(redrive) = &spec.redrive {
            let dlq = self
                .queue_arn(&self.queue_urls[&redrive.dead_letter_queue])
                .await?;
            let policy =
                json!({ "deadLetterTargetArn": dlq, "maxReceiveCount": redrive.max_receive_count });
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let out = create
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        let url = out
            .queue_url()
            .ok_or_else(|| Error::Store(format!("no URL for {name}")))?;
        self.queue_urls.insert(name.into(), url.into());
        Ok(())
    }

    async fn create_bus(&self, bus: &str) -> Result<()> {
        if let Err(e) = self
            .events
            .create_event_bus()
            .name(self.physical(bus))
            .send()
            .await
        {
            let e = e.into_service_error();
            if !e.is_resource_already_exists_exception() {
                return Err(aws_err(e));
            }
        }
        Ok(())
    }

    async fn create_rule(
        &self,
        bus: &str,
        rule: &str,
        pattern: &Value,
        targets: &[String],
    ) -> Result<()> {
        let (rule, bus) = (self.physical(rule), self.physical(bus));
        self.events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        let mut put = self.events.put_targets().rule(&rule).event_bus_name(&bus);
        for (n, target) in targets.iter().enumerate() {
            let arn = self.queue_arn(&self.queue_urls[target]).await?;
            put = put.targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id(format!("t{n}"))
                    .arn(arn)
                    .build()
                    .map_err(aws_err)?,
            );
        }
        put.send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        Ok(())
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
            let messages = receive(&self.sqs, url, 10, 30).await?;
            if messages.is_empty() {
                return Ok(());
            }
            let archived: Vec<(String, String)> = messages
                .iter()
                .map(|m| (crate::infra::ARCHIVE.to_string(), m.body.clone()))
                .collect();
            self.db.send(&[], &archived)?;
            delete(&self.sqs, url, &messages).await?;
        }
    }
}

async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max: usize,
    visibility_secs: i32,
) -> Result<Vec<Received>> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, 10) as i32)
        .visibility_timeout(visibility_secs)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .wait_time_seconds(0)
        .send()
        .await
        .map_err(|e| aws_err(e.into_service_error()))?;
    Ok(out
        .messages()
        .iter()
        .map(|m| {
            let attribute = |name: MessageSystemAttributeName| -> i64 {
                m.attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_default()
            };
            Received {
                id: m.message_id().unwrap_or_default().into(),
                receipt: m.receipt_handle().unwrap_or_default().into(),
                body: m.body().unwrap_or_default().into(),
                receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount),
                sent_at: attribute(MessageSystemAttributeName::SentTimestamp),
                first_received_at: attribute(
                    MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                ),
            }
        })
        .collect())
}

async fn delete(sqs: &aws_sdk_sqs::Client, url: &str, done: &[Received]) -> Result<()> {
    for chunk in done.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(n, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(n.to_string())
                    .receipt_handle(&m.receipt)
                    .build()
                    .map_err(aws_err)
            })
            .collect::<Result<Vec<_>>>()?;
        sqs.delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
    }
    Ok(())
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
            self.events.clone(),
            self.physical(logical),
        )))
    }

    fn change_feed(&self, consumer: &str, table: &str) -> Result<Box<dyn ChangeFeed>> {
        let arn = self
            .stream_arns
            .get(table)
            .ok_or_else(|| Error::Config(format!("{table} has no stream")))?;
        Ok(Box::new(StreamsFeed {
            client: self.streams.clone(),
            arn: arn.clone(),
            consumer: consumer.into(),
            db: self.db.clone(),
            shard: None,
        }))
    }

    fn queue(&self, spec: &QueueSpec) -> Result<Arc<dyn QueueSource>> {
        Ok(Arc::new(SqsQueue {
            client: self.sqs.clone(),
            url: self.url(&spec.name)?.into(),
        }))
    }

    async fn stream_lag(&self, _consumer: &str, _table: &str) -> Result<Option<i64>> {
        Ok(None)
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.url(queue)?)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        let number = |name| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or_default()
        };
        Ok(QueueDepth {
            visible: number(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
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
        Ok(receive(&self.sqs, self.url(queue)?, 10, 0)
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
}

/// A DynamoDB stream, read shard by shard from a position kept in the devstack's database.
struct StreamsFeed {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    consumer: String,
    db: Arc<Database>,
    /// The shard the last batch came from.
    shard: Option<String>,
}

impl StreamsFeed {
    fn position_key(&self, shard: &str) -> String {
        format!("{}/{shard}", self.consumer)
    }
}

#[async_trait]
impl ChangeFeed for StreamsFeed {
    async fn read(&mut self, max: usize) -> Result<Vec<FeedRecord>> {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .map_err(|e| aws_err(e.into_service_error()))?;
        let shards: Vec<String> = described
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for shard in shards {
            let position = self.db.position(&self.position_key(&shard))?;
            let iterator = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.arn)
                .shard_id(&shard);
            let iterator = match &position {
                Some(seq) => iterator
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(seq),
                None => iterator.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let iterator = iterator
                .send()
                .await
                .map_err(|e| aws_err(e.into_service_error()))?;
            let Some(iterator) = iterator.shard_iterator() else {
                continue;
            };
            let out = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .limit(max.clamp(1, 1000) as i32)
                .send()
                .await
                .map_err(|e| aws_err(e.into_service_error()))?;
            if out.records().is_empty() {
                continue;
            }
            self.shard = Some(shard);
            return Ok(out
                .records()
                .iter()
                .map(|r| lambda_record(r, &self.arn))
                .collect());
        }
        Ok(vec![])
    }

    async fn commit(&mut self, seq: &str) -> Result<()> {
        let shard = self
            .shard
            .clone()
            .ok_or_else(|| Error::Store("commit before read".into()))?;
        self.db.set_position(&self.position_key(&shard), seq)
    }
}

/// A DynamoDB Streams record in the shape Lambda passes it.
fn lambda_record(record: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> FeedRecord {
    let change = record.dynamodb();
    let image = |m: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        m.map(|m| serde_json::to_value(Item::from(m.clone())).unwrap_or_default())
    };
    let seq = change
        .and_then(|c| c.sequence_number())
        .unwrap_or_default()
        .to_string();
    let at_millis = change
        .and_then(|c| c.approximate_creation_date_time())
        .map_or(0, |t| t.secs() * 1000);
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": at_millis / 1000,
        "Keys": image(change.and_then(|c| c.keys())).unwrap_or(json!({})),
        "SequenceNumber": seq,
        "SizeBytes": change.and_then(|c| c.size_bytes()).unwrap_or(1),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    if let Some(new) = image(change.and_then(|c| c.new_image())) {
        dynamodb["NewImage"] = new;
    }
    if let Some(old) = image(change.and_then(|c| c.old_image())) {
        dynamodb["OldImage"] = old;
    }
    let record = json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region().unwrap_or(crate::infra::REGION),
        "dynamodb": dynamodb,
        "eventSourceARN": arn,
    });
    FeedRecord {
        seq,
        at_millis,
        record,
    }
}

struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

#[async_trait]
impl QueueSource for SqsQueue {
    async fn receive(&self, max: usize, visibility_ms: i64) -> Result<Vec<Received>> {
        // SQS counts visibility in whole seconds.
        receive(&self.client, &self.url, max, (visibility_ms / 1000) as i32).await
    }

    async fn delete(&self, done: &[Received]) -> Result<()> {
        delete(&self.client, &self.url, done).await
    }
}
