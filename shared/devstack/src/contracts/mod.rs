//! Event contracts on the devstack's side: the committed schemas (`shared/contracts/`), made
//! from every producer's declaration in the registry; the gate that keeps a committed
//! version from changing in a way that breaks consumers or the archive; validation of every
//! event a trigger publishes; impact analysis; the template's schema registry.

pub mod impact;
pub mod registry;
pub mod validate;

use bulkhead::contract::{self, Contract, compat};
use std::collections::BTreeMap;
use std::path::Path;

/// Where the envelope's schema is committed, relative to the contracts folder.
pub const ENVELOPE: &str = "envelope.json";

fn problem(what: impl std::fmt::Display) -> crate::Error {
    crate::Error::Contract(what.to_string())
}

/// Every contract some producer of the registry declares, by committed path.
pub fn declared() -> crate::Result<BTreeMap<String, Contract>> {
    let mut contracts = BTreeMap::new();
    for contract in crate::registry::contracts() {
        let violations = contract::draft4_violations(&contract.schema);
        if !violations.is_empty() {
            return Err(problem(format!(
                "{} is not draft 4: {}",
                contract.path(),
                violations.join("; ")
            )));
        }
        if let Some(twice) = contracts.insert(contract.path(), contract) {
            return Err(problem(format!("{} is declared twice", twice.path())));
        }
    }
    Ok(contracts)
}

/// The files the contracts folder must hold: each contract and the envelope, by path.
pub fn files() -> crate::Result<BTreeMap<String, String>> {
    let mut files: BTreeMap<String, String> = declared()?
        .into_iter()
        .map(|(path, c)| (path, contract::text(&c.schema)))
        .collect();
    files.insert(ENVELOPE.into(), contract::text(&contract::envelope()));
    Ok(files)
}

/// Every JSON file under `dir`, by path relative to it.
pub fn committed(dir: &Path) -> crate::Result<BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| problem(format!("{}: {e}", folder.display())))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                let name = relative.to_string_lossy().replace('\\', "/");
                found.insert(name, std::fs::read_to_string(&path)?);
            }
        }
    }
    Ok(found)
}

/// What keeps `dir` from matching the declarations, one line each: empty when it matches.
/// A committed version whose generated schema differs says whether the difference breaks
/// consumers or the archive (then it needs a new `schemaVersion`) or only needs writing.
pub fn differences(dir: &Path) -> crate::Result<Vec<String>> {
    let (generated, committed) = (files()?, committed(dir)?);
    let mut found = vec![];
    for (path, text) in &generated {
        match committed.get(path) {
            None => found.push(format!("{path}: not committed")),
            Some(old) if old != text => match breaks(path, old, text)? {
                breaks if breaks.is_empty() => found.push(format!(
                    "{path}: differs compatibly; write it with `devstack contracts --out DIR`"
                )),
                breaks => found.push(format!(
                    "{path}: breaks its consumers or archived events, so it needs a new \
                     schemaVersion: {}",
                    breaks.join("; ")
                )),
            },
            Some(_) => {}
        }
    }
    for path in committed.keys().filter(|p| !generated.contains_key(*p)) {
        found.push(format!(
            "{path}: committed but no longer declared; archived events hold every published \
             version, so its producer must keep declaring it"
        ));
    }
    Ok(found)
}

/// The gate: what breaks from the committed text of a schema to the generated one.
pub fn breaks(path: &str, old: &str, new: &str) -> crate::Result<Vec<String>> {
    let parse = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| problem(format!("{path}: not JSON: {e}")))
    };
    Ok(compat::breaking_changes(&parse(old)?, &parse(new)?)
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// Writes the contracts into `dir`. A committed version whose new schema would break
/// consumers or archived events is refused, and nothing is written.
pub fn write(dir: &Path) -> crate::Result<usize> {
    let (generated, committed) = (files()?, committed(dir).unwrap_or_default());
    for (path, text) in &generated {
        if let Some(old) = committed.get(path) {
            let breaks = breaks(path, old, text)?;
            if !breaks.is_empty() {
                return Err(problem(format!(
                    "{path}: the change breaks consumers or archived events; publish it under \
                     a new schemaVersion instead: {}",
                    breaks.join("; ")
                )));
            }
        }
    }
    for (path, text) in &generated {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, text)?;
    }
    Ok(generated.len())
}
