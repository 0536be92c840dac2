//! The bus port on EventBridge.

use super::{Bus, BusEntry, EntryFailure};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::{DateTime, DateTimeFormat};
use aws_smithy_types::body::SdkBody;

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

/// A `PutEvents` request as its JSON body (`awsJson1_1`). serde_json writes it, escaping
/// each detail in runs; the SDK's serialiser escapes byte by byte, which took 8% of a
/// trigger's CPU. The SDK still signs, sends, retries and reads the answer.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsBody<'a> {
    entries: Vec<EntryBody<'a>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct EntryBody<'a> {
    event_bus_name: &'a str,
    source: &'a str,
    detail_type: &'a str,
    detail: &'a str,
    /// Seconds since the epoch, as the protocol writes a timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<f64>,
}

impl<'a> EntryBody<'a> {
    fn of(entry: &'a BusEntry, bus: &'a str) -> Self {
        EntryBody {
            event_bus_name: bus,
            source: &entry.source,
            detail_type: &entry.detail_type,
            detail: &entry.detail,
            time: DateTime::from_str(&entry.time, DateTimeFormat::DateTime)
                .ok()
                .map(|t| t.as_secs_f64()),
        }
    }
}

#[async_trait]
impl Bus for EventBridgeBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<Result<(), EntryFailure>>> {
        let body = PutEventsBody {
            entries: entries
                .iter()
                .map(|e| EntryBody::of(e, &self.name))
                .collect(),
        };
        let body = bytes::Bytes::from(serde_json::to_vec(&body)?);
        let out = self
            .client
            .put_events()
            .customize()
            .mutate_request(move |request| {
                request
                    .headers_mut()
                    .insert("content-length", body.len().to_string());
                *request.body_mut() = SdkBody::from(body.clone());
            })
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
