//! Queue listener: events routed by the bus to a service's queue, applied to its views.
//!
//! Each message succeeds or fails alone. A message that cannot be parsed or applied is
//! reported in `batchItemFailures`, so the queue redelivers it and finally moves it to the
//! dead-letter queue, while the rest of the batch is deleted.

use crate::batch::{Batch, Record};
use crate::event::PublicEvent;
use crate::{Error, Result};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use std::future::Future;

/// An event as the bus delivered it.
#[derive(Clone, Debug, Deserialize)]
pub struct Delivered {
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: PublicEvent,
}

impl Delivered {
    pub fn parse(message: &SqsMessage) -> Result<Delivered> {
        let body = message
            .body
            .as_deref()
            .ok_or_else(|| Error::Malformed("message without a body".into()))?;
        Ok(serde_json::from_str(body)?)
    }
}

/// How many messages of a batch are applied at once. A batch can hold up to 10,000
/// messages; all at once would open as many connections to the table.
pub const CONCURRENCY: usize = 16;

/// Applies `apply` to every message of the batch, [`CONCURRENCY`] at a time, and reports
/// the ones that failed.
pub async fn consume<F, Fut>(batch: Batch<SqsMessage>, apply: F) -> SqsBatchResponse
where
    F: Fn(Delivered) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    use futures::StreamExt;
    let messages = batch.records.len();
    let outcomes: Vec<(Option<String>, Result<()>)> =
        futures::stream::iter(batch.records.into_iter().map(|record| {
            let apply = &apply;
            async move {
                match record {
                    Record::Decoded(message) => {
                        let outcome = match Delivered::parse(&message) {
                            Ok(delivered) => apply(delivered).await,
                            Err(e) => Err(e),
                        };
                        (message.message_id, outcome)
                    }
                    Record::Undecodable { ref error, .. } => (
                        record.raw_string(&["messageId"]),
                        Err(Error::Malformed(format!("SQS record: {error}"))),
                    ),
                }
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for (message_id, outcome) in outcomes {
        if let Err(e) = outcome {
            tracing::error!(error = %e, message_id = ?message_id, "message failed");
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

/// A queue listener, ready for either host.
#[derive(Clone)]
pub struct Listener(
    std::sync::Arc<
        dyn Fn(Batch<SqsMessage>) -> futures::future::BoxFuture<'static, SqsBatchResponse>
            + Send
            + Sync,
    >,
);

impl Listener {
    /// A listener that applies `apply` to each delivered event.
    pub fn new<F, Fut>(apply: F) -> Self
    where
        F: Fn(Delivered) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        Listener(std::sync::Arc::new(move |event| {
            let apply = apply.clone();
            Box::pin(async move { consume(event, apply).await })
        }))
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        (self.0)(Batch::decoded(event.records)).await
    }

    /// [`Listener::handle`] for a batch whose messages were decoded one by one: a message
    /// that did not decode fails alone.
    pub async fn handle_batch(&self, batch: Batch<SqsMessage>) -> SqsBatchResponse {
        (self.0)(batch).await
    }
}
