//! The bus port on the embedded database: rules match with `quamina`, which implements
//! EventBridge patterns, and matched events go to their target queues in one transaction.
//!
//! What the bus delivers to lives beside it: `queues` (SQS's messages, visibility and
//! redrive) and [`archive`] (every accepted event).

pub mod archive;
pub(crate) mod queues;

pub use archive::{ArchivePage, ArchiveQuery, Archived};
pub use queues::{Message, QueueDepth, Redrive};

use super::{Bus, BusEntry, EntryFailure, MAX_ENTRIES, MAX_REQUEST_BYTES};
use crate::store::embedded::Database;
use crate::{Error, Result};
use async_trait::async_trait;
use quamina::Quamina;
use std::collections::HashMap;
use std::sync::Arc;

/// A bus rule: an EventBridge pattern and the queues it sends to.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub pattern: serde_json::Value,
    pub target_queues: Vec<String>,
}

/// An event bus in the embedded database.
pub struct EmbeddedBus {
    db: Arc<Database>,
    matcher: Quamina<String>,
    targets: HashMap<String, Vec<String>>,
    archives: Vec<String>,
    account: String,
    region: String,
}

impl EmbeddedBus {
    pub fn new(db: Arc<Database>, rules: &[Rule], archives: Vec<String>) -> Result<Self> {
        let mut matcher = Quamina::new();
        let mut targets = HashMap::new();
        for rule in rules {
            matcher
                .add_pattern(rule.name.clone(), &rule.pattern.to_string())
                .map_err(|e| Error::Config(format!("rule {}: {e}", rule.name)))?;
            targets.insert(rule.name.clone(), rule.target_queues.clone());
        }
        Ok(EmbeddedBus {
            db,
            matcher,
            targets,
            archives,
            account: "000000000000".into(),
            region: "us-east-1".into(),
        })
    }

    /// The event as EventBridge delivers it to a target.
    fn routed(&self, entry: &BusEntry, detail: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": entry.detail_type,
            "source": entry.source,
            "account": self.account,
            "time": entry.time,
            "region": self.region,
            "resources": [],
            "detail": detail,
        })
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<Result<(), EntryFailure>>> {
        if entries.len() > MAX_ENTRIES {
            return Err(Error::Bus(format!(
                "{} entries exceed the limit of {MAX_ENTRIES}",
                entries.len()
            )));
        }
        let bytes: usize = entries.iter().map(BusEntry::size).sum();
        if bytes > MAX_REQUEST_BYTES {
            return Err(Error::Bus(format!(
                "request of {bytes} bytes exceeds {MAX_REQUEST_BYTES}"
            )));
        }
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut messages = vec![];
        let mut archived = vec![];
        for entry in entries {
            let detail = match serde_json::from_str::<serde_json::Value>(&entry.detail) {
                Ok(detail) if detail.is_object() => detail,
                _ => {
                    outcomes.push(Err(EntryFailure {
                        code: "MalformedDetail".into(),
                        message: "Detail is malformed.".into(),
                    }));
                    continue;
                }
            };
            let event = self.routed(entry, detail).to_string();
            let matched = self
                .matcher
                .matches_for_event(event.as_bytes())
                .map_err(|e| Error::Bus(e.to_string()))?;
            for rule in matched {
                for queue in self.targets.get(&rule).into_iter().flatten() {
                    messages.push((queue.clone(), event.clone()));
                }
            }
            for archive in &self.archives {
                archived.push((archive.clone(), event.clone()));
            }
            outcomes.push(Ok(()));
        }
        self.db.send(&messages, &archived)?;
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn rules_route_matching_events_to_their_queues_only() {
        let db = Database::open_in_memory().unwrap();
        let rules = [
            Rule {
                name: "orders".into(),
                pattern: json!({"source": ["bulkhead.orders"]}),
                target_queues: vec!["q1".into()],
            },
            Rule {
                name: "placed".into(),
                pattern: json!({"detail-type": [{"prefix": "OrderPl"}]}),
                target_queues: vec!["q2".into()],
            },
        ];
        let bus = EmbeddedBus::new(db.clone(), &rules, vec!["archive".into()]).unwrap();
        let entry = |t: &str| BusEntry {
            source: "bulkhead.orders".into(),
            detail_type: t.into(),
            detail: r#"{"id":"x"}"#.into(),
            time: "2026-11-22T10:00:00Z".into(),
        };
        let mut bad = entry("OrderPlaced");
        bad.detail = "not json".into();
        let outcomes = bus
            .put_events(&[entry("OrderPlaced"), entry("OrderShipped"), bad])
            .await
            .unwrap();
        assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
        assert_eq!(outcomes[2].as_ref().unwrap_err().code, "MalformedDetail");
        assert_eq!(db.peek("q1", 10).unwrap().len(), 2);
        let q2 = db.peek("q2", 10).unwrap();
        assert_eq!(q2.len(), 1);
        let routed: serde_json::Value = serde_json::from_str(&q2[0]).unwrap();
        assert_eq!(routed["detail-type"], "OrderPlaced");
        assert_eq!(routed["detail"]["id"], "x");
    }
}
