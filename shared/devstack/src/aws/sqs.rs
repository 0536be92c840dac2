//! SQS, polled as a queue event source mapping polls it: receive with a visibility timeout,
//! delete what succeeded. SQS itself redrives to the dead-letter queue.

use super::aws_err;
use crate::infra::{QueueSource, Received};
use async_trait::async_trait;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use bulkhead::Result;
use bulkhead::embedded::QueueDepth;

pub(super) async fn receive(
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

pub(super) async fn delete(sqs: &aws_sdk_sqs::Client, url: &str, done: &[Received]) -> Result<()> {
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

/// Visible and in-flight messages, as SQS approximates them.
pub(super) async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<QueueDepth> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
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
        oldest_age_ms: None,
    })
}

/// A queue of the endpoint, as the queue pollers see it.
pub(super) struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub(super) fn new(client: aws_sdk_sqs::Client, url: &str) -> Self {
        SqsQueue {
            client,
            url: url.into(),
        }
    }
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
