//! Requests of concurrent callers, sent together: a listener's messages, applied together,
//! each with its own reads and its one conditional upsert.
//!
//! - **Reads** (`get`, `get_many`) of the callers waiting at once go as one `get_many` (one
//!   `BatchGetItem` of up to 100 keys in DynamoDB): the same read units, fewer requests.
//! - **Single writes**, where the listener opts in ([`coalesce`]), go as `TransactWriteItems`
//!   of up to [`MAX_WRITES`] when at least [`MIN_GROUP`] are waiting. A transactional write
//!   costs twice the write units of a single one (README: Performance), so fewer go alone.
//!
//! Each caller still gets its own answer. A write whose condition failed gets
//! [`Error::ConditionFailed`], found by sending it alone again, because DynamoDB cancels the
//! whole transaction and a conflict with another transaction looks the same; the others are
//! sent again together.

use super::{Item, Key, Page, Query, Table, Write};
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// DynamoDB's limit of writes in one transaction.
pub const MAX_WRITES: usize = 100;
/// Fewer writes than this are sent alone, all at once: they take one round trip either way,
/// and a transaction would only cost more. At the template's batch of 10 messages nothing
/// is grouped; a backlog read in batches of hundreds is.
pub const MIN_GROUP: usize = 20;
/// How many callers' reads go in one `get_many`, at most.
const MAX_READERS: usize = 100;
/// How many times, at most, the caller that sends a group lets the others add theirs first.
const GATHER_PASSES: usize = 32;
/// How many passes in a row that add nothing end the gathering early.
const QUIET_PASSES: usize = 3;

/// A [`Table`] whose concurrent reads, and optionally single writes, are grouped.
pub struct Coalesced {
    inner: Arc<dyn Table>,
    group_writes: bool,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    writes: Queue<Writing>,
    reads: Queue<Reading>,
}

struct Queue<T> {
    waiting: Vec<T>,
    /// Whether a caller is gathering these to send them.
    gathering: bool,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            waiting: vec![],
            gathering: false,
        }
    }
}

type Of<T> = fn(&mut Pending) -> &mut Queue<T>;

struct Writing {
    write: Write,
    key: Key,
    answer: oneshot::Sender<Result<()>>,
}

struct Reading {
    keys: Vec<Key>,
    answer: oneshot::Sender<Result<Vec<Option<Item>>>>,
}

/// `inner`, its concurrent reads and single writes grouped.
pub fn coalesce(inner: Arc<dyn Table>) -> Arc<dyn Table> {
    Arc::new(Coalesced {
        inner,
        group_writes: true,
        pending: Mutex::default(),
    })
}

/// `inner`, its concurrent reads grouped; every write goes as it comes.
pub fn coalesce_reads(inner: Arc<dyn Table>) -> Arc<dyn Table> {
    Arc::new(Coalesced {
        inner,
        group_writes: false,
        pending: Mutex::default(),
    })
}

impl Coalesced {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item`, then, if no caller is gathering that queue, gathers it and runs `send`
    /// on all that wait; then waits for this caller's answer.
    async fn join<T, R, F>(
        &self,
        queue: Of<T>,
        item: T,
        answered: oneshot::Receiver<Result<R>>,
        limit: usize,
        send: impl FnOnce(Vec<T>) -> F,
    ) -> Result<R>
    where
        F: Future<Output = ()>,
    {
        let gathers = {
            let mut pending = self.pending();
            let queue = queue(&mut pending);
            queue.waiting.push(item);
            !std::mem::replace(&mut queue.gathering, true)
        };
        if gathers {
            let mut guard = Gathering {
                table: self,
                queue,
                armed: true,
            };
            let waiting = self.gather(queue, limit).await;
            guard.armed = false;
            send(waiting).await;
        }
        answered
            .await
            .map_err(|_| Error::Store("a grouped request was abandoned".into()))?
    }

    /// Lets the other callers add theirs, then takes all that are waiting.
    async fn gather<T>(&self, queue: Of<T>, limit: usize) -> Vec<T> {
        let waiting = || queue(&mut self.pending()).waiting.len();
        let (mut seen, mut still) = (waiting(), 0);
        for _ in 0..GATHER_PASSES {
            tokio::task::yield_now().await;
            let now = waiting();
            if now >= limit {
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
        let queue = queue(&mut pending);
        queue.gathering = false;
        std::mem::take(&mut queue.waiting)
    }

    /// Reads every waiting caller's keys in one `get_many`, and answers each its own.
    async fn read(&self, readers: Vec<Reading>) {
        let keys: Vec<Key> = readers.iter().flat_map(|r| r.keys.clone()).collect();
        let found = match keys.as_slice() {
            [key] => self.inner.get(key).await.map(|item| vec![item]),
            _ => self.inner.get_many(&keys).await,
        };
        match found {
            Ok(items) => {
                let mut items = items.into_iter();
                for reader in readers {
                    let own = items.by_ref().take(reader.keys.len()).collect();
                    let _ = reader.answer.send(Ok(own));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for reader in readers {
                    let _ = reader.answer.send(Err(Error::Store(message.clone())));
                }
            }
        }
    }

    /// Sends the waiting writes, in groups of distinct keys.
    async fn write_all(&self, writes: Vec<Writing>) {
        let sends = groups(writes).into_iter().map(|group| self.send(group));
        futures::future::join_all(sends).await;
    }

    /// Sends one group (distinct keys), answering each caller.
    async fn send(&self, mut group: Vec<Writing>) {
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
fn groups(writes: Vec<Writing>) -> Vec<Vec<Writing>> {
    let mut groups: Vec<(HashSet<Key>, Vec<Writing>)> = vec![];
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

/// Clears a queue if its gathering caller is dropped before it took what waits there: those
/// requests are dropped with it, and their callers get an error rather than wait for ever.
struct Gathering<'a, T> {
    table: &'a Coalesced,
    queue: Of<T>,
    armed: bool,
}

impl<T> Drop for Gathering<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            let mut pending = self.table.pending();
            let queue = (self.queue)(&mut pending);
            queue.gathering = false;
            queue.waiting.clear();
        }
    }
}

#[async_trait]
impl Table for Coalesced {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        let mut items = self.get_many(std::slice::from_ref(key)).await?;
        Ok(items.pop().flatten())
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        let (answer, answered) = oneshot::channel();
        let reading = Reading {
            keys: keys.to_vec(),
            answer,
        };
        let reads: Of<Reading> = |pending| &mut pending.reads;
        self.join(reads, reading, answered, MAX_READERS, |readers| {
            self.read(readers)
        })
        .await
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        self.inner.query(query).await
    }

    async fn write(&self, mut writes: Vec<Write>) -> Result<()> {
        if writes.len() != 1 || !self.group_writes {
            return self.inner.write(writes).await;
        }
        let write = writes.pop().expect("one write");
        let key = write.key()?;
        let (answer, answered) = oneshot::channel();
        let writing = Writing { write, key, answer };
        let queue: Of<Writing> = |pending| &mut pending.writes;
        self.join(queue, writing, answered, MAX_WRITES, |writes| {
            self.write_all(writes)
        })
        .await
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::store::embedded::{Database, EmbeddedTable, TableSpec};
    use crate::store::{AttributeValue, Condition, version_of};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The embedded table, counting the calls that reach it.
    struct Counted {
        table: EmbeddedTable,
        reads: AtomicUsize,
        writes: AtomicUsize,
    }

    impl Counted {
        fn new() -> Arc<Counted> {
            let spec = TableSpec {
                name: "view".into(),
                indexes: vec![],
                stream: false,
            };
            Arc::new(Counted {
                table: EmbeddedTable::new(Database::open_in_memory().unwrap(), spec),
                reads: AtomicUsize::new(0),
                writes: AtomicUsize::new(0),
            })
        }

        /// The calls counted since the last time, reads then writes.
        fn calls(&self) -> (usize, usize) {
            (
                self.reads.swap(0, Ordering::Relaxed),
                self.writes.swap(0, Ordering::Relaxed),
            )
        }
    }

    #[async_trait]
    impl Table for Counted {
        async fn get(&self, key: &Key) -> Result<Option<Item>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.table.get(key).await
        }
        async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.table.get_many(keys).await
        }
        async fn query(&self, query: &Query) -> Result<Page> {
            self.table.query(query).await
        }
        async fn write(&self, writes: Vec<Write>) -> Result<()> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.table.write(writes).await
        }
    }

    fn key(id: usize) -> Key {
        Key::new(format!("ORDER#{id}"), "#")
    }

    fn upsert(id: usize, version: u64) -> Write {
        let mut item = key(id).to_item();
        item.insert("version".into(), AttributeValue::N(version.to_string()));
        Write::put(item, Condition::OlderThan(version))
    }

    async fn write_all(table: &Arc<dyn Table>, writes: Vec<Write>) -> Vec<Result<()>> {
        futures::future::join_all(writes.into_iter().map(|w| table.write(vec![w]))).await
    }

    async fn stored_version(table: &Arc<dyn Table>, id: usize) -> Option<u64> {
        version_of(&table.get(&key(id)).await.unwrap()?)
    }

    #[tokio::test]
    async fn concurrent_upserts_go_as_few_transactions_and_each_gets_its_own_answer() {
        let inner = Counted::new();
        inner.write(vec![upsert(7, 5)]).await.unwrap();
        let table = coalesce(inner.clone());
        inner.calls();
        // A template-sized batch: each write alone, as a transaction would cost twice.
        let few = write_all(&table, (1000..1010).map(|id| upsert(id, 1)).collect()).await;
        assert!(few.iter().all(Result::is_ok));
        assert_eq!(inner.calls(), (0, 10));
        // 250 orders at version 2, order 7 again (stale: it holds 5), and order 3 twice.
        let mut writes: Vec<Write> = (0..250).map(|id| upsert(id, 2)).collect();
        writes.push(upsert(3, 3));
        let answers = write_all(&table, writes).await;
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
        let (_, writes) = inner.calls();
        assert!(writes <= 6, "{writes} writes reached the table");
        assert_eq!(stored_version(&table, 3).await, Some(3));
        assert_eq!(stored_version(&table, 7).await, Some(5));
        assert_eq!(stored_version(&table, 249).await, Some(2));
    }

    #[tokio::test]
    async fn concurrent_reads_go_as_one_and_each_gets_its_own_items() {
        let inner = Counted::new();
        for id in [1, 2, 3] {
            inner.write(vec![upsert(id, id as u64)]).await.unwrap();
        }
        let table = coalesce_reads(inner.clone());
        inner.calls();
        let versions = |items: Vec<Option<Item>>| -> Vec<Option<u64>> {
            items
                .iter()
                .map(|i| i.as_ref().and_then(version_of))
                .collect()
        };
        let asks: Vec<Vec<Key>> = vec![vec![key(1), key(9)], vec![key(3)], vec![key(2), key(2)]];
        let three = key(3);
        let (many, one) = futures::join!(
            futures::future::join_all(asks.iter().map(|keys| table.get_many(keys))),
            table.get(&three),
        );
        let many: Vec<_> = many.into_iter().map(|r| versions(r.unwrap())).collect();
        assert_eq!(
            many,
            [vec![Some(1), None], vec![Some(3)], vec![Some(2), Some(2)]]
        );
        assert_eq!(one.unwrap().as_ref().and_then(version_of), Some(3));
        assert_eq!(inner.calls(), (1, 0), "one read for four callers");
        // Writes pass through one by one when only reads are grouped.
        let answers = write_all(&table, (10..40).map(|id| upsert(id, 1)).collect()).await;
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(inner.calls(), (0, 30));
    }

    #[tokio::test]
    async fn a_write_of_several_items_passes_through() {
        let table = coalesce(Counted::new());
        table.write(vec![upsert(1, 1), upsert(2, 1)]).await.unwrap();
        let again = table.write(vec![upsert(1, 1), upsert(2, 2)]).await;
        assert!(matches!(again, Err(Error::ConditionFailed { index: 0 })));
    }
}
