//! Single writes of concurrent callers, sent as one transaction: a listener's messages,
//! applied together, each with its one conditional upsert, cost one `TransactWriteItems` of
//! up to [`MAX_WRITES`] instead of a request each, when at least [`MIN_GROUP`] are waiting.
//!
//! Each caller still gets its own answer. A write whose condition failed gets
//! [`Error::ConditionFailed`], found by sending it alone again, because DynamoDB cancels the
//! whole transaction and a conflict with another transaction looks the same; the others are
//! sent again together. A transactional write costs twice the write units of a single one
//! (README: Performance), so a listener opts in where round trips matter more, and small groups
//! go as single writes.

use super::{Item, Key, Page, Query, Table, Write};
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// DynamoDB's limit of writes in one transaction.
pub const MAX_WRITES: usize = 100;
/// Fewer writes than this are sent alone, all at once: they take one round trip either way,
/// and a transaction would only cost more. At the template's batch of 10 messages nothing
/// is grouped; a backlog read in batches of hundreds is.
pub const MIN_GROUP: usize = 20;
/// How many times, at most, the caller that sends a group lets the others add theirs first.
const GATHER_PASSES: usize = 32;
/// How many passes in a row that add no write end the gathering early.
const QUIET_PASSES: usize = 3;

/// A [`Table`] whose single writes are grouped into transactions.
pub struct Coalesced {
    inner: Arc<dyn Table>,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    writes: Vec<Waiting>,
    /// Whether a caller is gathering a group to send.
    gathering: bool,
}

struct Waiting {
    write: Write,
    key: Key,
    answer: oneshot::Sender<Result<()>>,
}

/// `inner`, its single writes grouped.
pub fn coalesce(inner: Arc<dyn Table>) -> Arc<dyn Table> {
    Arc::new(Coalesced {
        inner,
        pending: Mutex::default(),
    })
}

impl Coalesced {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets the other callers add their writes, then takes all that are waiting.
    async fn gather(&self) -> Vec<Waiting> {
        let (mut seen, mut still) = (self.pending().writes.len(), 0);
        for _ in 0..GATHER_PASSES {
            tokio::task::yield_now().await;
            let now = self.pending().writes.len();
            if now >= MAX_WRITES {
                break;
            }
            // A pass can add nothing while the others are held back (tokio's budget of a
            // task's work between yields): only a few quiet passes in a row end the gathering.
            still = if now == seen { still + 1 } else { 0 };
            if still == QUIET_PASSES {
                break;
            }
            seen = now;
        }
        let mut pending = self.pending();
        pending.gathering = false;
        std::mem::take(&mut pending.writes)
    }

    /// Sends one group (distinct keys), answering each caller.
    async fn send(&self, mut group: Vec<Waiting>) {
        if group.len() < MIN_GROUP {
            let alone = group.into_iter().map(|waiting| async move {
                let answer = self.inner.write(vec![waiting.write]).await;
                let _ = waiting.answer.send(answer);
            });
            futures::future::join_all(alone).await;
            return;
        }
        while !group.is_empty() {
            let writes = group.iter().map(|w| w.write.clone()).collect();
            match self.inner.write(writes).await {
                Ok(()) => {
                    for waiting in group.drain(..) {
                        let _ = waiting.answer.send(Ok(()));
                    }
                }
                Err(Error::ConditionFailed { index }) if index < group.len() => {
                    let alone = group.remove(index);
                    let answer = self.inner.write(vec![alone.write]).await;
                    let _ = alone.answer.send(answer);
                }
                Err(e) => {
                    let message = e.to_string();
                    for waiting in group.drain(..) {
                        let _ = waiting.answer.send(Err(Error::Store(message.clone())));
                    }
                }
            }
        }
    }
}

/// Splits writes into transactions of at most [`MAX_WRITES`], no key twice in one.
fn groups(writes: Vec<Waiting>) -> Vec<Vec<Waiting>> {
    let mut groups: Vec<(HashSet<Key>, Vec<Waiting>)> = vec![];
    for waiting in writes {
        let open = groups
            .iter_mut()
            .find(|(keys, group)| group.len() < MAX_WRITES && !keys.contains(&waiting.key));
        match open {
            Some((keys, group)) => {
                keys.insert(waiting.key.clone());
                group.push(waiting);
            }
            None => groups.push((HashSet::from([waiting.key.clone()]), vec![waiting])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// Clears the gathering flag if the gathering caller is dropped before it took the writes:
/// theirs are dropped with it, and their callers get an error rather than wait for ever.
struct Gathering<'a>(&'a Coalesced, bool);

impl Drop for Gathering<'_> {
    fn drop(&mut self) {
        if self.1 {
            let mut pending = self.0.pending();
            pending.gathering = false;
            pending.writes.clear();
        }
    }
}

#[async_trait]
impl Table for Coalesced {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        self.inner.query(query).await
    }

    async fn write(&self, mut writes: Vec<Write>) -> Result<()> {
        if writes.len() != 1 {
            return self.inner.write(writes).await;
        }
        let write = writes.pop().expect("one write");
        let key = write.key()?;
        let (answer, answered) = oneshot::channel();
        let gathers = {
            let mut pending = self.pending();
            pending.writes.push(Waiting { write, key, answer });
            !std::mem::replace(&mut pending.gathering, true)
        };
        if gathers {
            let mut guard = Gathering(self, true);
            let writes = self.gather().await;
            guard.1 = false;
            let sends = groups(writes).into_iter().map(|group| self.send(group));
            futures::future::join_all(sends).await;
        }
        answered
            .await
            .map_err(|_| Error::Store("a grouped write was abandoned".into()))?
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::store::embedded::{Database, EmbeddedTable, TableSpec};
    use crate::store::{AttributeValue, Condition, version_of};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The embedded table, counting the `write` calls that reach it.
    struct Counted(EmbeddedTable, AtomicUsize);

    #[async_trait]
    impl Table for Counted {
        async fn get(&self, key: &Key) -> Result<Option<Item>> {
            self.0.get(key).await
        }
        async fn query(&self, query: &Query) -> Result<Page> {
            self.0.query(query).await
        }
        async fn write(&self, writes: Vec<Write>) -> Result<()> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.write(writes).await
        }
    }

    fn upsert(id: usize, version: u64) -> Write {
        let mut item = Key::new(format!("ORDER#{id}"), "#").to_item();
        item.insert("version".into(), AttributeValue::N(version.to_string()));
        Write::put(item, Condition::OlderThan(version))
    }

    #[tokio::test]
    async fn concurrent_upserts_go_as_few_transactions_and_each_gets_its_own_answer() {
        let spec = TableSpec {
            name: "view".into(),
            indexes: vec![],
            stream: false,
        };
        let inner = Arc::new(Counted(
            EmbeddedTable::new(Database::open_in_memory().unwrap(), spec),
            AtomicUsize::new(0),
        ));
        inner.write(vec![upsert(7, 5)]).await.unwrap();
        let table = coalesce(inner.clone());
        let write_all = |writes: Vec<Write>| {
            futures::future::join_all(writes.into_iter().map(|w| {
                let table = table.clone();
                async move { table.write(vec![w]).await }
            }))
        };
        // A template-sized batch: each write alone, as a transaction would cost twice.
        inner.1.store(0, Ordering::Relaxed);
        let few = write_all((1000..1010).map(|id| upsert(id, 1)).collect()).await;
        assert!(few.iter().all(Result::is_ok));
        assert_eq!(inner.1.load(Ordering::Relaxed), 10);
        inner.1.store(0, Ordering::Relaxed);
        // 250 orders at version 2, order 7 again (stale: it holds 5), and order 3 twice.
        let mut writes: Vec<Write> = (0..250).map(|id| upsert(id, 2)).collect();
        writes.push(upsert(3, 3));
        let answers = futures::future::join_all(writes.into_iter().map(|w| {
            let table = table.clone();
            async move { table.write(vec![w]).await }
        }))
        .await;
        let failed: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_err())
            .map(|(i, _)| i)
            .collect();
        // Order 3's two writes went in different transactions, in either order: if version 3
        // was first, version 2 was stale too.
        assert!(failed == [7] || failed == [3, 7], "failed: {failed:?}");
        assert!(matches!(answers[7], Err(Error::ConditionFailed { .. })));
        // Groups of at most 100 (251 writes, order 3 twice): 3 groups, one sent again after
        // order 7, sent alone, failed its condition; at most one more for order 3.
        let calls = inner.1.load(Ordering::Relaxed);
        assert!(calls <= 6, "{calls} writes reached the table");
        assert_eq!(stored_version(&table, 3).await, Some(3));
        assert_eq!(stored_version(&table, 7).await, Some(5));
        assert_eq!(stored_version(&table, 249).await, Some(2));
    }

    async fn stored_version(table: &Arc<dyn Table>, id: usize) -> Option<u64> {
        let key = Key::new(format!("ORDER#{id}"), "#");
        version_of(&table.get(&key).await.unwrap()?)
    }

    #[tokio::test]
    async fn a_write_of_several_items_passes_through() {
        let spec = TableSpec {
            name: "view".into(),
            indexes: vec![],
            stream: false,
        };
        let table = coalesce(Arc::new(EmbeddedTable::new(
            Database::open_in_memory().unwrap(),
            spec,
        )));
        table.write(vec![upsert(1, 1), upsert(2, 1)]).await.unwrap();
        let again = table.write(vec![upsert(1, 1), upsert(2, 2)]).await;
        assert!(matches!(again, Err(Error::ConditionFailed { index: 0 })));
    }
}
