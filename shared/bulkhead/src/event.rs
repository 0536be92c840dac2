//! The public event envelope: what a service publishes, and all that a listener may rely on.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use serde_json::value::RawValue;

/// The `schemaVersion` a new event starts at. Versions are per event type: a producer that
/// publishes a newer one sets it on the event (the order events are at 2), and its
/// contracts say what each version holds (`crate::contract`).
pub const SCHEMA_VERSION: u32 = 1;

/// The aggregate an event is about, at the version the event produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AggregateRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub version: u64,
}

/// A past-tense fact with the aggregate's public state after it (event-carried state transfer)
/// and what changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "D: Deserialize<'de> + Default"))]
#[schemars(bound = "D: schemars::JsonSchema + Default + Serialize")]
pub struct PublicEvent<D = Value> {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub aggregate: AggregateRef,
    pub occurred_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default)]
    pub change: D,
    #[serde(default)]
    pub state: D,
}

/// An event as an ACL makes it. Listeners read `change` and `state` as JSON values (the
/// default `D = Value`); an ACL makes them as JSON text, each serialised once from the
/// producer's own types, which the trigger puts in the entry's detail as it is, with no
/// `Value` tree built and dropped.
pub type EventToPublish = PublicEvent<Box<RawValue>>;

impl<D> PublicEvent<D> {
    /// The span of every log line about this event (README: Observability).
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "event",
            eventId = %self.id,
            eventType = %self.event_type,
            aggregate = %format_args!("{}#{}", self.aggregate.kind, self.aggregate.id),
            version = self.aggregate.version,
            correlationId = self.correlation_id.as_deref().unwrap_or_default(),
            causationId = self.causation_id.as_deref().unwrap_or_default(),
        )
    }

    fn with_data<E>(self, change: E, state: E) -> PublicEvent<E> {
        PublicEvent {
            id: self.id,
            event_type: self.event_type,
            schema_version: self.schema_version,
            aggregate: self.aggregate,
            occurred_at: self.occurred_at,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            change,
            state,
        }
    }
}

impl EventToPublish {
    /// The event as listeners read it.
    pub fn parsed(&self) -> crate::Result<PublicEvent> {
        let change = serde_json::from_str(self.change.get())?;
        let state = serde_json::from_str(self.state.get())?;
        Ok(self.clone().with_data(change, state))
    }
}

impl PublicEvent {
    /// A new event whose id is derived from the aggregate and version, so that a retried
    /// trigger republishes the same id.
    pub fn new(event_type: &str, aggregate: AggregateRef, occurred_at: String) -> Self {
        PublicEvent {
            id: event_id(&aggregate),
            event_type: event_type.to_string(),
            schema_version: SCHEMA_VERSION,
            aggregate,
            occurred_at,
            correlation_id: None,
            causation_id: None,
            change: Value::Null,
            state: Value::Null,
        }
    }

    /// The event as an ACL hands it to the trigger.
    pub fn to_publish(&self) -> crate::Result<EventToPublish> {
        let change = serde_json::value::to_raw_value(&self.change)?;
        let state = serde_json::value::to_raw_value(&self.state)?;
        Ok(self.clone().with_data(change, state))
    }

    /// The public state, read into the listener's own type (a tolerant reader).
    pub fn state_as<T: DeserializeOwned>(&self) -> crate::Result<T> {
        Ok(T::deserialize(&self.state)?)
    }

    pub fn change_as<T: DeserializeOwned>(&self) -> crate::Result<T> {
        Ok(T::deserialize(&self.change)?)
    }
}

impl<S> crate::command::Versioned<S> {
    /// A public event about this stored version, carrying its correlation and causation,
    /// with `change` and `state` serialised from the producer's own types.
    pub fn event(
        &self,
        event_type: &str,
        kind: &str,
        id: &str,
        change: &impl Serialize,
        state: &impl Serialize,
    ) -> crate::Result<EventToPublish> {
        let aggregate = AggregateRef {
            kind: kind.into(),
            id: id.into(),
            version: self.version,
        };
        let mut event = PublicEvent::new(event_type, aggregate, self.updated_at.clone());
        event.correlation_id = self.correlation_id.clone();
        event.causation_id = self.causation_id.clone();
        let change = serde_json::value::to_raw_value(change)?;
        let state = serde_json::value::to_raw_value(state)?;
        Ok(event.with_data(change, state))
    }
}

/// The deterministic event id of an aggregate version.
pub fn event_id(aggregate: &AggregateRef) -> String {
    format!("{}:{}:{}", aggregate.kind, aggregate.id, aggregate.version)
}

/// The `source` of a service's events on the bus.
pub fn source_of(service: &str) -> String {
    format!("bulkhead.{service}")
}

/// Events on the bus from one source: what a producer declares it publishes, and what a
/// listener declares it takes from that producer. Declared once, as a constant, and read by
/// the routing, the template checks, the fuzz tests and the fixtures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSet {
    /// The `source` of the entries, `bulkhead.<service>`.
    pub source: &'static str,
    /// Their `detail-type`s, which are the event types.
    pub types: &'static [&'static str],
}

impl EventSet {
    /// Whether an entry with this source and detail type belongs to the set.
    pub fn contains(&self, source: &str, detail_type: &str) -> bool {
        self.source == source && self.types.contains(&detail_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_depend_only_on_aggregate_and_version() {
        let at = |v| AggregateRef {
            kind: "order".into(),
            id: "o-1".into(),
            version: v,
        };
        let a = PublicEvent::new("OrderPlaced", at(1), "t1".into());
        let b = PublicEvent::new("OrderPlaced", at(1), "t2".into());
        assert_eq!(a.id, b.id);
        assert_ne!(
            a.id,
            PublicEvent::new("OrderShipped", at(2), "t1".into()).id
        );
    }

    #[test]
    fn the_envelope_serializes_in_the_documented_shape() {
        let mut event = PublicEvent::new(
            "OrderPlaced",
            AggregateRef {
                kind: "order".into(),
                id: "o-1".into(),
                version: 1,
            },
            "2026-11-22T10:00:00.123Z".into(),
        );
        event.correlation_id = Some("c".into());
        let json = serde_json::to_value(&event).unwrap();
        for field in [
            "id",
            "type",
            "schemaVersion",
            "aggregate",
            "occurredAt",
            "correlationId",
            "change",
            "state",
        ] {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
        assert_eq!(json["aggregate"]["type"], "order");
    }
}
