//! DynamoDB Streams, polled as a stream event source mapping polls them: shard by shard,
//! in order, from a position kept in the devstack's database.

use super::aws_err;
use crate::infra::{ChangeFeed, FeedRecord};
use async_trait::async_trait;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use bulkhead::embedded::Database;
use bulkhead::store::Item;
use bulkhead::{Error, Result};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// A DynamoDB stream, read shard by shard from a position kept in the devstack's database.
pub(super) struct StreamsFeed {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    consumer: String,
    db: Arc<Database>,
    /// The shard the last batch came from.
    shard: Option<String>,
}

impl StreamsFeed {
    pub(super) fn new(
        client: aws_sdk_dynamodbstreams::Client,
        arn: String,
        consumer: &str,
        db: Arc<Database>,
    ) -> Self {
        StreamsFeed {
            client,
            arn,
            consumer: consumer.into(),
            db,
            shard: None,
        }
    }

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
