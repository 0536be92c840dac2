//! Queue listener: events routed by the bus to a service's queue, applied to its views.
//!
//! Each message succeeds or fails alone. A message that cannot be parsed or applied is
//! reported in `batchItemFailures`, so the queue redelivers it and finally moves it to the
//! dead-letter queue, while the rest of the batch is deleted.

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

/// Applies `apply` to every message of the batch and reports the ones that failed.
pub async fn consume<F, Fut>(event: SqsEvent, apply: F) -> SqsBatchResponse
where
    F: Fn(Delivered) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let outcomes = futures::future::join_all(event.records.iter().map(|message| {
        let apply = &apply;
        async move {
            let outcome = match Delivered::parse(message) {
                Ok(delivered) => apply(delivered).await,
                Err(e) => Err(e),
            };
            (message, outcome)
        }
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message, outcome) in outcomes {
        if let Err(e) = outcome {
            tracing::error!(error = %e, message_id = ?message.message_id, "message failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    tracing::info!(
        messages = event.records.len(),
        failed = response.batch_item_failures.len(),
        "queue batch handled"
    );
    response
}

/// A queue listener, ready for either host.
#[derive(Clone)]
pub struct Listener(
    std::sync::Arc<
        dyn Fn(SqsEvent) -> futures::future::BoxFuture<'static, SqsBatchResponse> + Send + Sync,
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
        (self.0)(event).await
    }
}
