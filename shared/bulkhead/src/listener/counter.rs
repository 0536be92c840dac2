//! Exact counters: totals over many aggregates, such as revenue per day, that count each
//! aggregate version once under duplicates and any delivery order.
//!
//! Every event carries its aggregate's whole state, so an aggregate's share of the totals
//! depends only on its newest state. The view keeps, per aggregate, the version it applied
//! and that version's [`Share`]. A newer event adds the difference between the two shares
//! to the counters and replaces the bookkeeping, in one transaction conditioned on the
//! version read; an older or repeated one changes nothing.
//!
//! An aggregate's first version is written without that read, on the guess that nothing of
//! it is counted yet: one round trip instead of two for most aggregates' first event. A
//! wrong guess fails its condition, and the bookkeeping is then read as for any version.

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
    let mut guess_nothing_counted = version == 1;
    for _ in 0..ATTEMPTS {
        let stored: Option<Applied<S>> = if std::mem::take(&mut guess_nothing_counted) {
            None
        } else {
            get_as(table, &bookkeeping).await?
        };
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

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::store::embedded::{Database, EmbeddedTable, TableSpec};
    use crate::store::{Page, Query};
    use async_trait::async_trait;
    use std::sync::Mutex;

    /// The embedded table, recording the kind of each request that reaches it.
    struct Recorded {
        table: EmbeddedTable,
        requests: Mutex<Vec<&'static str>>,
    }

    impl Recorded {
        fn new() -> Recorded {
            let spec = TableSpec {
                name: "sales".into(),
                indexes: vec![],
                stream: false,
            };
            Recorded {
                table: EmbeddedTable::new(Database::open_in_memory().unwrap(), spec),
                requests: Mutex::default(),
            }
        }

        fn requests(&self) -> Vec<&'static str> {
            std::mem::take(&mut *self.requests.lock().unwrap())
        }

        async fn total(&self) -> Option<String> {
            let item = self.table.get(&Key::new("DAY#1", "#")).await.unwrap()?;
            match item.get("units")? {
                crate::store::AttributeValue::N(n) => Some(n.clone()),
                _ => None,
            }
        }
    }

    #[async_trait]
    impl Table for Recorded {
        async fn get(&self, key: &Key) -> Result<Option<Item>> {
            self.requests.lock().unwrap().push("read");
            self.table.get(key).await
        }
        async fn query(&self, query: &Query) -> Result<Page> {
            self.table.query(query).await
        }
        async fn write(&self, writes: Vec<Write>) -> Result<()> {
            self.requests.lock().unwrap().push("write");
            self.table.write(writes).await
        }
    }

    #[derive(Serialize, Deserialize)]
    struct Units(i64);

    impl Share for Units {
        fn counters(&self) -> Vec<Counter> {
            vec![Counter {
                key: Key::new("DAY#1", "#"),
                labels: Item::default(),
                amounts: vec![("units", self.0)],
            }]
        }
    }

    #[tokio::test]
    async fn a_first_version_is_written_without_a_read_and_a_wrong_guess_is_then_read() {
        let table = Recorded::new();
        let order = || Key::new("ORDER#1", "#");
        // Given nothing counted, version 1 is counted in one request.
        let first = count_once(&table, order(), 1, Units(2)).await.unwrap();
        assert!(matches!(first, Upsert::Applied));
        assert_eq!(table.requests(), ["write"]);
        // Version 1 again: the guess fails its condition, the read finds it counted.
        let again = count_once(&table, order(), 1, Units(2)).await.unwrap();
        assert!(matches!(again, Upsert::Stale));
        assert_eq!(table.requests(), ["write", "read"]);
        // Version 2 reads first, and adds the difference.
        let second = count_once(&table, order(), 2, Units(5)).await.unwrap();
        assert!(matches!(second, Upsert::Applied));
        assert_eq!(table.requests(), ["read", "write"]);
        assert_eq!(table.total().await.as_deref(), Some("5"));
        // Version 1 late, after version 2: nothing changes.
        let late = count_once(&table, order(), 1, Units(2)).await.unwrap();
        assert!(matches!(late, Upsert::Stale));
        assert_eq!(table.total().await.as_deref(), Some("5"));
    }
}
