//! The bus port on EventBridge.

use super::{Bus, BusEntry, EntryFailure};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_eventbridge::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_eventbridge::error::BoxError;
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
        let config = client
            .config()
            .to_builder()
            .interceptor(WrittenBody)
            .build();
        EventBridgeBus {
            client: Client::from_conf(config),
            name: name.into(),
        }
    }
}

tokio::task_local! {
    /// The body of the `PutEvents` request being sent, for [`WrittenBody`].
    static BODY: bytes::Bytes;
}

/// Puts the body that [`PutEventsBody`] wrote in place of the SDK's serialisation, before
/// each attempt is signed. The body goes with the call as a task-local: passing it per
/// call through `customize()` made the SDK build a second copy of its whole orchestrator
/// into every bootstrap (+250 kB).
#[derive(Debug)]
struct WrittenBody;

impl Intercept for WrittenBody {
    fn name(&self) -> &'static str {
        "WrittenBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if let Ok(body) = BODY.try_with(bytes::Bytes::clone) {
            let request = context.request_mut();
            request
                .headers_mut()
                .insert("content-length", body.len().to_string());
            *request.body_mut() = SdkBody::from(body);
        }
        Ok(())
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
        let out = BODY
            .scope(body, self.client.put_events().send())
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
