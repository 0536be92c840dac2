//! Impact analysis: for each field of each published event, the consumers that read it, from
//! the producers' contracts and the listeners' declarations. "What breaks if I change this?"

use super::problem;
use crate::registry::Functions;
use bulkhead::contract::upcast::upcaster;
use bulkhead::contract::{Contract, reader};
use bulkhead::event::EventSet;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The impact table of the template's listeners, built on a scratch database in `dir`.
pub fn run(template: &crate::template::Template, dir: &std::path::Path) -> crate::Result<String> {
    let infra = crate::infra::EmbeddedInfra::open(template, &dir.join("contracts.db"))?;
    table(&Functions::on(template, &infra)?)
}

/// The newest contract of each event type, by source and type.
pub fn newest(contracts: &BTreeMap<String, Contract>) -> BTreeMap<(&str, &str), &Contract> {
    let mut newest: BTreeMap<(&str, &str), &Contract> = BTreeMap::new();
    for contract in contracts.values() {
        let key = (contract.source, contract.event_type);
        if newest
            .get(&key)
            .is_none_or(|c| c.version < contract.version)
        {
            newest.insert(key, contract);
        }
    }
    newest
}

/// Every gap between a listener's reader and the newest contract of an event it declares
/// (listeners read events raised to the newest version), every older version of it that no
/// upcaster raises, and every declared event that no producer publishes, one line each:
/// empty when every consumer's reads are guaranteed.
pub fn gaps(functions: &Functions) -> crate::Result<Vec<String>> {
    let raises = |source: &str, event_type: &str, version: u32| {
        upcaster(source, event_type, version).is_some()
    };
    Ok(gaps_with(functions, &super::declared()?, raises))
}

/// [`gaps`] against these contracts, with `raises` telling whether an upcaster raises an
/// event type from a version.
pub fn gaps_with(
    functions: &Functions,
    contracts: &BTreeMap<String, Contract>,
    raises: impl Fn(&str, &str, u32) -> bool,
) -> Vec<String> {
    let newest = newest(contracts);
    let mut found = vec![];
    for (function, listener) in &functions.listeners {
        for (set, reads) in listener.reads() {
            for event_type in set.types {
                let Some(contract) = newest.get(&(set.source, *event_type)) else {
                    found.push(format!(
                        "{}: declares {event_type} from {}, which no producer publishes",
                        function.name, set.source
                    ));
                    continue;
                };
                for old in contracts.values().filter(|c| {
                    (c.source, c.event_type) == (set.source, *event_type)
                        && c.version < contract.version
                }) {
                    if !raises(set.source, event_type, old.version) {
                        found.push(format!(
                            "{}: reads {event_type} v{}, and the archive's v{} has no upcaster to raise it",
                            function.name, contract.version, old.version
                        ));
                    }
                }
                for gap in reader::gaps(reads, contract.part("state")) {
                    found.push(format!(
                        "{} reads {event_type} v{}: state.{gap}",
                        function.name, contract.version
                    ));
                }
            }
        }
    }
    found
}

/// The impact table in Markdown: one row per field of each source's events, with the events
/// that carry it and the listeners that read it there. Rows whose field is read by the same
/// listeners in several events are one row.
pub fn table(functions: &Functions) -> crate::Result<String> {
    let contracts = super::declared()?;
    let newest = newest(&contracts);
    // (source, field) -> readers -> events
    type Rows<'a> = BTreeMap<(&'a str, String), BTreeMap<BTreeSet<String>, Vec<String>>>;
    let mut rows: Rows = BTreeMap::new();
    for ((source, event_type), contract) in &newest {
        for part in ["change", "state"] {
            // Listeners read only the state (their `on` reader); nobody reads `change`.
            let readers_of = |field: &str| -> BTreeSet<String> {
                let reads_it = |(set, reads): &(EventSet, &Value)| {
                    set.contains(source, event_type)
                        && reader::fields(reads).iter().any(|f| f == field)
                };
                functions
                    .listeners
                    .iter()
                    .filter(|(_, l)| part == "state" && l.reads().iter().any(reads_it))
                    .map(|(function, _)| function.name.clone())
                    .collect()
            };
            for field in reader::fields(contract.part(part)) {
                let readers = readers_of(&field);
                rows.entry((source, format!("{part}.{field}")))
                    .or_default()
                    .entry(readers)
                    .or_default()
                    .push(format!("{event_type} v{}", contract.version));
            }
        }
    }
    if rows.is_empty() {
        return Err(problem("no contracts to analyse"));
    }
    let mut text = String::from("| source | field | events | read by |\n|---|---|---|---|\n");
    for ((source, field), by_readers) in &rows {
        for (readers, events) in by_readers {
            let readers = if readers.is_empty() {
                "—".to_string()
            } else {
                readers.iter().cloned().collect::<Vec<_>>().join(", ")
            };
            text.push_str(&format!(
                "| `{source}` | `{field}` | {} | {readers} |\n",
                events.join(", ")
            ));
        }
    }
    Ok(text)
}
