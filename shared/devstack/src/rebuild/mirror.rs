//! A listener's queue that copies every message it hands out to a second queue, while a
//! rebuild feeds a view's new generation with the live events. The copy is made on
//! receive, before the live listener applies the message, so that whatever the live
//! generation has seen, the new one sees too (perhaps twice, which views tolerate).

use crate::infra::{Infra, QueueSource, Received};
use async_trait::async_trait;
use bulkhead::Result;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Mirrored {
    inner: Arc<dyn QueueSource>,
    infra: Arc<dyn Infra>,
    to: Arc<Mutex<Option<String>>>,
}

impl Mirrored {
    /// The queue and the switch that turns copying on (`Some(queue)`) and off.
    pub fn new(
        inner: Arc<dyn QueueSource>,
        infra: Arc<dyn Infra>,
    ) -> (Self, Arc<Mutex<Option<String>>>) {
        let to = Arc::new(Mutex::new(None));
        (
            Mirrored {
                inner,
                infra,
                to: to.clone(),
            },
            to,
        )
    }
}

#[async_trait]
impl QueueSource for Mirrored {
    async fn receive(&self, max: usize, visibility_ms: i64) -> Result<Vec<Received>> {
        let messages = self.inner.receive(max, visibility_ms).await?;
        let to = self.to.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(queue) = to {
            // Unsent copies fail the receive: the messages come back after their
            // visibility timeout and are copied then.
            for message in &messages {
                self.infra.send(&queue, message.body.clone()).await?;
            }
        }
        Ok(messages)
    }

    async fn delete(&self, done: &[Received]) -> Result<()> {
        self.inner.delete(done).await
    }

    async fn idle(&self, at_most: Duration) {
        self.inner.idle(at_most).await
    }
}
