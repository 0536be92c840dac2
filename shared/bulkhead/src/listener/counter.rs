//! Exact counters: totals over many aggregates, such as revenue per day, that count each
//! aggregate version once under duplicates and any delivery order.
//!
//! Every event carries its aggregate's whole state, so an aggregate's share of the totals
//! depends only on its newest state. The view keeps, per aggregate, the version it applied
//! and that version's [`Share`]. A newer event adds the difference between the two shares
//! to the counters and replaces the bookkeeping, in one transaction conditioned on the
//! version read; an older or repeated one changes nothing.

use crate::store::{Condition, Item, Key, Table, Upsert, Write, get_as, to_item};
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How often a lost race with a concurrent event of the same aggregate is retried here,
/// before the message is left to the queue's redelivery.
const ATTEMPTS: u32 = 8;

/// One counter item and what a share adds to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    pub key: Key,
    /// Attributes written when the counter is created, such as the day it counts.
    pub labels: Item,
    /// Amounts added to the counter's numeric attributes, by attribute name.
    pub amounts: Vec<(&'static str, i64)>,
}

/// What one aggregate, in one state, adds to the counters.
pub trait Share: Serialize + DeserializeOwned + Send + Sync {
    fn counters(&self) -> Vec<Counter>;
}

/// The per-aggregate bookkeeping: the version applied and its share.
#[derive(Serialize, Deserialize)]
struct Applied<S> {
    pk: String,
    sk: String,
    version: u64,
    contribution: S,
}

/// The additions that turn the counters with `old` counted into the counters with `new`
/// counted. Counters whose amounts do not change are left out.
pub fn difference(old: &[Counter], new: &[Counter]) -> Result<Vec<Counter>> {
    let mut merged: BTreeMap<Key, (Item, BTreeMap<&'static str, i64>)> = BTreeMap::new();
    for (sign, counters) in [(-1i64, old), (1, new)] {
        for counter in counters {
            let (labels, amounts) = merged.entry(counter.key.clone()).or_default();
            labels.extend(counter.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            for &(name, amount) in &counter.amounts {
                let total = amounts.entry(name).or_default();
                *total = amount
                    .checked_mul(sign)
                    .and_then(|a| total.checked_add(a))
                    .ok_or_else(|| Error::Malformed(format!("{name} overflows")))?;
            }
        }
    }
    Ok(merged
        .into_iter()
        .filter(|(_, (_, amounts))| amounts.values().any(|&a| a != 0))
        .map(|(key, (labels, amounts))| Counter {
            key,
            labels,
            amounts: amounts.into_iter().filter(|&(_, a)| a != 0).collect(),
        })
        .collect())
}

/// Counts `share`, the share of the aggregate version `version`, unless that version or a
/// newer one is already counted. `bookkeeping` is where the aggregate's applied version is
/// kept.
pub async fn count_once<S: Share>(
    table: &dyn Table,
    bookkeeping: Key,
    version: u64,
    share: S,
) -> Result<Upsert> {
    let new = share.counters();
    let applied = to_item(&Applied {
        pk: bookkeeping.pk.clone(),
        sk: bookkeeping.sk.clone(),
        version,
        contribution: share,
    })?;
    for _ in 0..ATTEMPTS {
        let stored: Option<Applied<S>> = get_as(table, &bookkeeping).await?;
        if stored.as_ref().is_some_and(|s| s.version >= version) {
            crate::telemetry::outcome::stale();
            return Ok(Upsert::Stale);
        }
        let (condition, old) = match stored {
            Some(s) => (Condition::VersionIs(s.version), s.contribution.counters()),
            None => (Condition::NotExists, vec![]),
        };
        let mut writes = vec![Write::put(applied.clone(), condition)];
        for counter in difference(&old, &new)? {
            writes.push(Write::Add {
                key: counter.key,
                set_if_absent: counter.labels,
                add: counter
                    .amounts
                    .into_iter()
                    .map(|(name, amount)| (name.to_string(), amount))
                    .collect(),
            });
        }
        match table.write(writes).await {
            Ok(()) => {
                crate::telemetry::outcome::applied();
                return Ok(Upsert::Applied);
            }
            Err(Error::ConditionFailed { index: 0 }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Store(format!(
        "{} {} kept changing; left for redelivery",
        bookkeeping.pk, bookkeeping.sk
    )))
}
