//! Every event a trigger publishes in the devstack is checked against its committed schema
//! before it reaches the bus. One that does not match, or that no contract covers, is
//! refused as EventBridge refuses a malformed detail (`MalformedDetail`), so the trigger
//! fails at that record and reports it: it is never published.

use bulkhead::bus::{Bus, BusEntry, EntryFailure};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// A compiled validator for every committed contract, by source, event type and version.
pub struct Contracts {
    validators: HashMap<(String, String, u64), jsonschema::Validator>,
}

fn problem(what: impl std::fmt::Display) -> crate::Error {
    crate::Error::Contract(what.to_string())
}

impl Contracts {
    /// Loads `<dir>/<service>/<EventType>.v<N>.json`, each a draft 4 schema. A file that is
    /// not JSON, not a draft 4 schema, or not named that way is an error naming the file.
    pub fn load(dir: &Path) -> crate::Result<Contracts> {
        let files = super::committed(dir)
            .map_err(|e| problem(format!("no contracts in {}: {e}", dir.display())))?;
        let mut validators = HashMap::new();
        for (path, text) in files.iter().filter(|(p, _)| *p != super::ENVELOPE) {
            let at = dir.join(path);
            let (service, event_type, version) = parse_name(path).ok_or_else(|| {
                problem(format!(
                    "{}: not named <service>/<EventType>.v<N>.json",
                    at.display()
                ))
            })?;
            let schema: Value = serde_json::from_str(text)
                .map_err(|e| problem(format!("{}: not JSON: {e}", at.display())))?;
            jsonschema::draft4::meta::validate(&schema)
                .map_err(|e| problem(format!("{}: not a draft 4 schema: {e}", at.display())))?;
            let validator = jsonschema::draft4::new(&schema)
                .map_err(|e| problem(format!("{}: not a usable schema: {e}", at.display())))?;
            validators.insert(
                (
                    bulkhead::event::source_of(service),
                    event_type.into(),
                    version,
                ),
                validator,
            );
        }
        if validators.is_empty() {
            return Err(problem(format!("no contracts in {}", dir.display())));
        }
        Ok(Contracts { validators })
    }

    /// Whether the entry is an event its contract covers and describes.
    pub fn check(&self, entry: &BusEntry) -> Result<(), String> {
        let detail: Value =
            serde_json::from_str(&entry.detail).map_err(|e| format!("detail is not JSON: {e}"))?;
        let version = detail["schemaVersion"]
            .as_u64()
            .ok_or("detail without a numeric schemaVersion")?;
        let key = (entry.source.clone(), entry.detail_type.clone(), version);
        let validator = self.validators.get(&key).ok_or_else(|| {
            format!(
                "no contract covers {} {} v{version}",
                entry.source, entry.detail_type
            )
        })?;
        let errors: Vec<String> = validator
            .iter_errors(&detail)
            .take(3)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} v{version} does not match its contract: {}",
                entry.detail_type,
                errors.join("; ")
            ))
        }
    }
}

/// `orders/OrderPlaced.v2.json` as its service, event type and version.
fn parse_name(path: &str) -> Option<(&str, &str, u64)> {
    let (service, file) = path.split_once('/')?;
    let (event_type, version) = file.strip_suffix(".json")?.rsplit_once(".v")?;
    Some((service, event_type, version.parse().ok()?))
}

/// A bus that puts only events that match their contracts.
pub struct ContractBus {
    inner: Arc<dyn Bus>,
    contracts: Arc<Contracts>,
}

impl ContractBus {
    pub fn new(inner: Arc<dyn Bus>, contracts: Arc<Contracts>) -> Self {
        ContractBus { inner, contracts }
    }
}

#[async_trait::async_trait]
impl Bus for ContractBus {
    /// Puts the entries before the first one that breaks its contract; that one is refused
    /// as `MalformedDetail`, which a trigger does not retry, and the ones after it are not
    /// attempted, so that the trigger fails exactly at that record.
    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> bulkhead::Result<Vec<Result<(), EntryFailure>>> {
        let refused = entries
            .iter()
            .enumerate()
            .find_map(|(i, entry)| self.contracts.check(entry).err().map(|e| (i, e)));
        let Some((index, reason)) = refused else {
            return self.inner.put_events(entries).await;
        };
        tracing::error!(%reason, source = %entries[index].source, "event refused by its contract");
        let mut outcomes = if index > 0 {
            self.inner.put_events(&entries[..index]).await?
        } else {
            vec![]
        };
        outcomes.push(Err(EntryFailure {
            code: "MalformedDetail".into(),
            message: reason,
        }));
        outcomes.extend(entries[index + 1..].iter().map(|_| {
            Err(EntryFailure {
                code: "NotAttempted".into(),
                message: "after an entry its contract refused".into(),
            })
        }));
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_files_are_named_by_service_type_and_version() {
        assert_eq!(
            parse_name("orders/OrderPlaced.v2.json"),
            Some(("orders", "OrderPlaced", 2))
        );
        assert_eq!(parse_name("orders/OrderPlaced.json"), None);
        assert_eq!(parse_name("OrderPlaced.v1.json"), None);
    }
}
