//! The bus port on EventBridge.

use super::{Bus, BusEntry, EntryFailure};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::{DateTime, DateTimeFormat};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

/// An EventBridge event bus.
#[derive(Clone)]
pub struct EventBridgeBus {
    client: Client,
    name: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        EventBridgeBus {
            client,
            name: name.into(),
        }
    }
}

#[async_trait]
impl Bus for EventBridgeBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<Result<(), EntryFailure>>> {
        let request: Vec<PutEventsRequestEntry> = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.name)
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .set_time(DateTime::from_str(&e.time, DateTimeFormat::DateTime).ok())
                    .build()
            })
            .collect();
        let out = self
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await
            .map_err(|e| Error::Bus(e.into_service_error().to_string()))?;
        let results = out.entries.unwrap_or_default();
        if results.len() != entries.len() {
            return Err(Error::Bus(format!(
                "{} results for {} entries",
                results.len(),
                entries.len()
            )));
        }
        Ok(results
            .into_iter()
            .map(|r| match r.error_code {
                None => Ok(()),
                Some(code) => Err(EntryFailure {
                    code,
                    message: r.error_message.unwrap_or_default(),
                }),
            })
            .collect())
    }
}
