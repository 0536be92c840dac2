//! The embedded backend: one SQLite database that holds every table, each table's change
//! feed, stream checkpoints, queues and the bus archive.
//!
//! A write and its change record commit in one SQLite transaction, so the change feed is
//! exactly the sequence of committed writes. Queues are durable rows with receive counts
//! and visibility deadlines, so redelivery after a crash falls out of those deadlines.

use crate::store::{Item, Key, Page, Query, Write, encode_cursor, string_attr, version_of};
use crate::{Error, Result, now_millis};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// `items` is a rowid table: its key index holds only the keys, while the item text (often
/// over a kilobyte) sits in the row. As a `WITHOUT ROWID` table, every key comparison of a
/// lookup had to assemble cells that spilled onto overflow pages.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    tbl TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL,
    PRIMARY KEY (tbl, pk, sk));
CREATE TABLE IF NOT EXISTS index_entries (
    tbl TEXT NOT NULL, idx TEXT NOT NULL, ipk TEXT NOT NULL, isk TEXT NOT NULL,
    pk TEXT NOT NULL, sk TEXT NOT NULL,
    PRIMARY KEY (tbl, idx, ipk, isk, pk, sk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS index_entries_by_item ON index_entries (tbl, pk, sk);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, kind TEXT NOT NULL,
    keys TEXT NOT NULL, old TEXT, new TEXT, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_table ON changes (tbl, seq);
CREATE TABLE IF NOT EXISTS checkpoints (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS positions (consumer TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, queue TEXT NOT NULL,
    body TEXT NOT NULL, sent_at INTEGER NOT NULL, visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0, first_received_at INTEGER);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, visible_at, seq);
CREATE TABLE IF NOT EXISTS archive (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, archive TEXT NOT NULL, event TEXT NOT NULL,
    at INTEGER NOT NULL);
";

/// Reads one item by key.
const SELECT_ITEM: &str = "SELECT item FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3";
/// Room in the prepared statement cache for every statement this module runs.
const STATEMENTS: usize = 64;

/// How a table is laid out: its secondary indexes and whether it has a change feed.
#[derive(Clone, Debug, Default)]
pub struct TableSpec {
    pub name: String,
    pub indexes: Vec<String>,
    pub stream: bool,
}

/// One committed change, as a stream shard would hold it.
#[derive(Clone, Debug)]
pub struct ChangeRow {
    pub seq: i64,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub kind: String,
    pub keys: Item,
    pub old: Option<Item>,
    pub new: Option<Item>,
    pub at_millis: i64,
}

/// A received queue message.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub receive_count: i64,
    pub sent_at: i64,
    pub first_received_at: i64,
}

/// Where a queue sends messages received too often.
#[derive(Clone, Debug)]
pub struct Redrive {
    pub dead_letter_queue: String,
    pub max_receive_count: i64,
}

/// Visible and in-flight message counts of a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDepth {
    pub visible: i64,
    pub in_flight: i64,
}

/// The embedded database.
pub struct Database {
    conn: Mutex<Connection>,
    signals: Mutex<HashMap<String, Arc<Notify>>>,
}

fn store_err(e: rusqlite::Error) -> Error {
    Error::Store(e.to_string())
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        store_err(e)
    }
}

fn to_json(item: &Item) -> Result<String> {
    Ok(serde_json::to_string(item)?)
}

fn from_json(text: &str) -> Result<Item> {
    Ok(serde_json::from_str(text)?)
}

impl Database {
    /// Opens (or creates) the database file. Writes survive a process crash once acknowledged.
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL with synchronous=NORMAL never loses a committed transaction to a process
        // crash; only an operating system crash can roll back the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::with(conn)
    }

    pub fn open_in_memory() -> Result<Arc<Self>> {
        Self::with(Connection::open_in_memory()?)
    }

    fn with(conn: Connection) -> Result<Arc<Self>> {
        conn.execute_batch(SCHEMA)?;
        // Every statement is prepared once and reused: compiling SQL dominated a small write.
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        Ok(Arc::new(Database {
            conn: Mutex::new(conn),
            signals: Mutex::default(),
        }))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The wake-up signal of a stream (`stream/<table>`) or a queue (`queue/<name>`).
    pub fn signal(&self, name: &str) -> Arc<Notify> {
        let mut signals = self.signals.lock().unwrap_or_else(|p| p.into_inner());
        signals.entry(name.to_string()).or_default().clone()
    }

    pub fn get(&self, table: &str, key: &Key) -> Result<Option<Item>> {
        let text: Option<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(SELECT_ITEM)?;
            stmt.query_row(params![table, key.pk, key.sk], |row| row.get(0))
                .optional()?
        };
        text.as_deref().map(from_json).transpose()
    }

    pub fn query(&self, table: &str, query: &Query) -> Result<Page> {
        let start = query.start_key()?;
        let order = if query.descending { "DESC" } else { "ASC" };
        let after = if query.descending { "<" } else { ">" };
        let limit = query.limit.clamp(1, 1000);
        let prefix = query.sort_prefix.clone().unwrap_or_default();
        let conn = self.conn();
        let rows: Vec<String> = match &query.index {
            None => {
                let start_sk = start.as_ref().map(|s| string_attr(s, "sk")).transpose()?;
                let sql = format!(
                    "SELECT item FROM items WHERE tbl = ?1 AND pk = ?2 AND substr(sk, 1, length(?3)) = ?3
                     AND (?4 IS NULL OR sk {after} ?4) ORDER BY sk {order} LIMIT ?5"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                stmt.query_map(
                    params![table, query.partition, prefix, start_sk, limit as i64 + 1],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<_>>()?
            }
            Some(index) => {
                let (_, sort_attr) = query.key_attributes();
                let start = start
                    .as_ref()
                    .map(|s| {
                        Ok::<_, Error>((
                            string_attr(s, &sort_attr)?,
                            string_attr(s, "pk")?,
                            string_attr(s, "sk")?,
                        ))
                    })
                    .transpose()?;
                let (isk, pk, sk) = start
                    .map(|(a, b, c)| (Some(a), Some(b), Some(c)))
                    .unwrap_or_default();
                let sql = format!(
                    "SELECT i.item FROM index_entries e JOIN items i ON i.tbl = e.tbl AND i.pk = e.pk AND i.sk = e.sk
                     WHERE e.tbl = ?1 AND e.idx = ?2 AND e.ipk = ?3 AND substr(e.isk, 1, length(?4)) = ?4
                     AND (?5 IS NULL OR (e.isk, e.pk, e.sk) {after} (?5, ?6, ?7))
                     ORDER BY e.isk {order}, e.pk {order}, e.sk {order} LIMIT ?8"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                stmt.query_map(
                    params![
                        table,
                        index,
                        query.partition,
                        prefix,
                        isk,
                        pk,
                        sk,
                        limit as i64 + 1
                    ],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<_>>()?
            }
        };
        drop(conn);
        let mut items = rows
            .iter()
            .map(|t| from_json(t))
            .collect::<Result<Vec<_>>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        let cursor = match (more, items.last()) {
            (true, Some(last)) => Some(encode_cursor(&last_key(last, query)?)),
            _ => None,
        };
        Ok(Page { items, cursor })
    }

    /// Applies the writes atomically, appending their change records when the table streams.
    pub fn write(&self, spec: &TableSpec, writes: Vec<Write>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut changed = false;
        for (index, write) in writes.into_iter().enumerate() {
            let key = write.key()?;
            let old: Option<Item> = tx
                .prepare_cached(SELECT_ITEM)?
                .query_row(params![spec.name, key.pk, key.sk], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
                .as_deref()
                .map(from_json)
                .transpose()?;
            if !write.condition().holds(old.as_ref().map(version_of)) {
                return Err(Error::ConditionFailed { index });
            }
            let new = write.apply(old.as_ref())?;
            if old == new {
                continue;
            }
            tx.prepare_cached("DELETE FROM index_entries WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")?
                .execute(params![spec.name, key.pk, key.sk])?;
            match &new {
                Some(item) => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO items (tbl, pk, sk, item) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        spec.name,
                        key.pk,
                        key.sk,
                        to_json(item)?
                    ])?;
                    for index in &spec.indexes {
                        let ipk = string_attr(item, &format!("{index}pk"));
                        let isk = string_attr(item, &format!("{index}sk"));
                        if let (Ok(ipk), Ok(isk)) = (ipk, isk) {
                            tx.prepare_cached(
                                "INSERT INTO index_entries (tbl, idx, ipk, isk, pk, sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            )?
                            .execute(params![spec.name, index, ipk, isk, key.pk, key.sk])?;
                        }
                    }
                }
                None => {
                    tx.prepare_cached("DELETE FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")?
                        .execute(params![spec.name, key.pk, key.sk])?;
                }
            }
            if spec.stream {
                let kind = match (&old, &new) {
                    (None, _) => "INSERT",
                    (Some(_), Some(_)) => "MODIFY",
                    (Some(_), None) => "REMOVE",
                };
                tx.prepare_cached(
                    "INSERT INTO changes (tbl, kind, keys, old, new, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                        spec.name,
                        kind,
                        to_json(&key.to_item())?,
                        old.as_ref().map(to_json).transpose()?,
                        new.as_ref().map(to_json).transpose()?,
                        now_millis()
                    ])?;
                changed = true;
            }
        }
        tx.commit()?;
        drop(conn);
        if changed {
            self.signal(&format!("stream/{}", spec.name)).notify_one();
        }
        Ok(())
    }

    /// Change records of a table after sequence number `after`, oldest first.
    pub fn changes_after(&self, table: &str, after: i64, limit: usize) -> Result<Vec<ChangeRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, kind, keys, old, new, at FROM changes WHERE tbl = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![table, after, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(seq, kind, keys, old, new, at_millis)| {
                Ok(ChangeRow {
                    seq,
                    kind,
                    keys: from_json(&keys)?,
                    old: old.as_deref().map(from_json).transpose()?,
                    new: new.as_deref().map(from_json).transpose()?,
                    at_millis,
                })
            })
            .collect()
    }

    /// The last sequence number a stream consumer has finished, or 0.
    pub fn checkpoint(&self, consumer: &str) -> Result<i64> {
        let seq = self
            .conn()
            .query_row(
                "SELECT seq FROM checkpoints WHERE consumer = ?1",
                params![consumer],
                |r| r.get(0),
            )
            .optional()?;
        Ok(seq.unwrap_or(0))
    }

    pub fn set_checkpoint(&self, consumer: &str, seq: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO checkpoints (consumer, seq) VALUES (?1, ?2)
             ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
            params![consumer, seq],
        )?;
        Ok(())
    }

    /// A consumer's position in an external stream (such as a DynamoDB Streams sequence
    /// number, which does not fit an integer), if it has one.
    pub fn position(&self, consumer: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT position FROM positions WHERE consumer = ?1",
                params![consumer],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_position(&self, consumer: &str, position: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO positions (consumer, position) VALUES (?1, ?2)
             ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
            params![consumer, position],
        )?;
        Ok(())
    }

    /// Sends messages to queues and appends events to archives, all in one transaction.
    pub fn send(&self, messages: &[(String, String)], archived: &[(String, String)]) -> Result<()> {
        let now = now_millis();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (queue, body) in messages {
            tx.prepare_cached(
                "INSERT INTO messages (id, queue, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            )?
            .execute(params![uuid::Uuid::new_v4().to_string(), queue, body, now])?;
        }
        for (archive, event) in archived {
            tx.prepare_cached("INSERT INTO archive (archive, event, at) VALUES (?1, ?2, ?3)")?
                .execute(params![archive, event, now])?;
        }
        tx.commit()?;
        drop(conn);
        for (queue, _) in messages {
            self.signal(&format!("queue/{queue}")).notify_one();
        }
        Ok(())
    }

    /// Receives up to `max` visible messages and hides them for `visibility_millis`.
    /// A message already received `max_receive_count` times moves to the dead-letter queue.
    pub fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility_millis: i64,
        redrive: Option<&Redrive>,
    ) -> Result<Vec<Message>> {
        let now = now_millis();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let candidates = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, id, body, receive_count, sent_at, first_received_at FROM messages
                 WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT ?3",
            )?;
            stmt.query_map(params![queue, now, max as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Message {
                        id: r.get(1)?,
                        body: r.get(2)?,
                        receive_count: r.get(3)?,
                        sent_at: r.get(4)?,
                        first_received_at: r.get::<_, Option<i64>>(5)?.unwrap_or(now),
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut received = Vec::with_capacity(candidates.len());
        let mut dead_lettered = false;
        for (seq, mut message) in candidates {
            if let Some(redrive) = redrive.filter(|r| message.receive_count >= r.max_receive_count)
            {
                tx.execute(
                    "UPDATE messages SET queue = ?1, visible_at = ?2, receive_count = 0, first_received_at = NULL WHERE seq = ?3",
                    params![redrive.dead_letter_queue, now, seq],
                )?;
                dead_lettered = true;
                continue;
            }
            message.receive_count += 1;
            tx.execute(
                "UPDATE messages SET receive_count = ?1, visible_at = ?2, first_received_at = ?3 WHERE seq = ?4",
                params![message.receive_count, now + visibility_millis, message.first_received_at, seq],
            )?;
            received.push(message);
        }
        tx.commit()?;
        drop(conn);
        if let (true, Some(redrive)) = (dead_lettered, redrive) {
            self.signal(&format!("queue/{}", redrive.dead_letter_queue))
                .notify_one();
        }
        Ok(received)
    }

    /// Deletes messages that were processed.
    pub fn delete(&self, ids: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute("DELETE FROM messages WHERE id = ?1", params![id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Makes in-flight messages visible again after `delay_millis`.
    pub fn release(&self, ids: &[String], delay_millis: i64) -> Result<()> {
        let visible_at = now_millis() + delay_millis;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute(
                "UPDATE messages SET visible_at = ?1 WHERE id = ?2",
                params![visible_at, id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn queue_depth(&self, queue: &str) -> Result<QueueDepth> {
        let now = now_millis();
        Ok(self.conn().query_row(
            "SELECT COALESCE(SUM(visible_at <= ?2), 0), COALESCE(SUM(visible_at > ?2), 0) FROM messages WHERE queue = ?1",
            params![queue, now],
            |r| Ok(QueueDepth { visible: r.get(0)?, in_flight: r.get(1)? }),
        )?)
    }

    /// The bodies of up to `limit` messages in a queue, oldest first, without receiving them.
    pub fn peek(&self, queue: &str, limit: usize) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT body FROM messages WHERE queue = ?1 ORDER BY seq LIMIT ?2")?;
        let bodies = stmt
            .query_map(params![queue, limit as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(bodies)
    }

    /// The events an archive holds, oldest first.
    pub fn archived(&self, archive: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT event FROM archive WHERE archive = ?1 ORDER BY seq")?;
        let events = stmt
            .query_map(params![archive], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(events)
    }

    /// The highest change sequence number of a table, or 0.
    pub fn last_change(&self, table: &str) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM changes WHERE tbl = ?1",
            params![table],
            |r| r.get(0),
        )?)
    }

    /// Deletes items whose time-to-live attribute (epoch seconds) has passed, as DynamoDB's
    /// TTL does, through [`Database::write`] so that the deletions reach the change feed.
    pub fn expire(&self, spec: &TableSpec, ttl_attribute: &str, now_seconds: i64) -> Result<usize> {
        let rows: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT item FROM items WHERE tbl = ?1 AND CAST(json_extract(item, '$.' || ?2 || '.N') AS INTEGER) < ?3",
            )?;
            stmt.query_map(params![spec.name, ttl_attribute, now_seconds], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let keys = rows
            .iter()
            .map(|t| Key::of(&from_json(t)?))
            .collect::<Result<Vec<_>>>()?;
        for key in &keys {
            self.write(
                spec,
                vec![Write::Delete {
                    key: key.clone(),
                    condition: crate::store::Condition::Always,
                }],
            )?;
        }
        Ok(keys.len())
    }
}

fn last_key(item: &Item, query: &Query) -> Result<Item> {
    let (partition, sort) = query.key_attributes();
    let mut key = Key::of(item)?.to_item();
    for attr in [partition, sort] {
        if let Some(value) = item.get(&attr) {
            key.insert(attr, value.clone());
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Condition, to_item};
    use serde_json::json;

    fn spec() -> TableSpec {
        TableSpec {
            name: "T".into(),
            indexes: vec!["gsi1".into()],
            stream: true,
        }
    }

    fn item(pk: &str, version: u64, gsi1sk: &str) -> Item {
        to_item(&json!({"pk": pk, "sk": "#", "version": version, "gsi1pk": "C", "gsi1sk": gsi1sk}))
            .unwrap()
    }

    #[test]
    fn a_write_and_its_change_record_commit_together() {
        let db = Database::open_in_memory().unwrap();
        db.write(
            &spec(),
            vec![Write::put(item("a", 1, "1"), Condition::NotExists)],
        )
        .unwrap();
        let failed = db.write(
            &spec(),
            vec![Write::put(item("a", 2, "1"), Condition::VersionIs(5))],
        );
        assert!(matches!(failed, Err(Error::ConditionFailed { index: 0 })));
        db.write(
            &spec(),
            vec![Write::put(item("a", 2, "1"), Condition::VersionIs(1))],
        )
        .unwrap();
        let changes = db.changes_after("T", 0, 10).unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["INSERT", "MODIFY"]);
        assert_eq!(changes[1].old.as_ref().and_then(version_of), Some(1));
        assert_eq!(changes[1].new.as_ref().and_then(version_of), Some(2));
    }

    #[test]
    fn an_unchanged_put_writes_no_change_record() {
        let db = Database::open_in_memory().unwrap();
        db.write(
            &spec(),
            vec![Write::put(item("a", 1, "1"), Condition::Always)],
        )
        .unwrap();
        db.write(
            &spec(),
            vec![Write::put(item("a", 1, "1"), Condition::Always)],
        )
        .unwrap();
        assert_eq!(db.changes_after("T", 0, 10).unwrap().len(), 1);
    }

    #[test]
    fn an_atomic_group_applies_all_or_nothing() {
        let db = Database::open_in_memory().unwrap();
        let writes = vec![
            Write::put(item("a", 1, "1"), Condition::NotExists),
            Write::put(item("b", 1, "1"), Condition::VersionIs(9)),
        ];
        assert!(matches!(
            db.write(&spec(), writes),
            Err(Error::ConditionFailed { index: 1 })
        ));
        assert!(db.get("T", &Key::new("a", "#")).unwrap().is_none());
        assert!(db.changes_after("T", 0, 10).unwrap().is_empty());
    }

    #[test]
    fn index_queries_page_in_order_in_both_directions() {
        let db = Database::open_in_memory().unwrap();
        for (pk, sk) in [("a", "3"), ("b", "1"), ("c", "2"), ("d", "5"), ("e", "4")] {
            db.write(
                &spec(),
                vec![Write::put(item(pk, 1, sk), Condition::Always)],
            )
            .unwrap();
        }
        for descending in [false, true] {
            let mut query = Query {
                index: Some("gsi1".into()),
                partition: "C".into(),
                descending,
                limit: 2,
                ..Query::default()
            };
            let mut seen = vec![];
            loop {
                let page = db.query("T", &query).unwrap();
                seen.extend(page.items.iter().map(|i| string_attr(i, "gsi1sk").unwrap()));
                match page.cursor {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
            let mut expected = vec!["1", "2", "3", "4", "5"];
            if descending {
                expected.reverse();
            }
            assert_eq!(seen, expected);
        }
    }

    #[test]
    fn queues_redeliver_after_the_visibility_timeout_and_redrive_to_the_dlq() {
        let db = Database::open_in_memory().unwrap();
        db.send(&[("q".into(), "m1".into())], &[]).unwrap();
        let redrive = Redrive {
            dead_letter_queue: "dlq".into(),
            max_receive_count: 2,
        };
        assert_eq!(db.receive("q", 10, 0, Some(&redrive)).unwrap().len(), 1);
        assert_eq!(
            db.receive("q", 10, 60_000, Some(&redrive)).unwrap()[0].receive_count,
            2
        );
        assert!(
            db.receive("q", 10, 0, Some(&redrive)).unwrap().is_empty(),
            "hidden while in flight"
        );
        db.release(&[db.peek_ids("q")[0].clone()], 0).unwrap();
        assert!(
            db.receive("q", 10, 0, Some(&redrive)).unwrap().is_empty(),
            "third receive redrives"
        );
        assert_eq!(db.peek("dlq", 10).unwrap(), ["m1"]);
    }

    impl Database {
        fn peek_ids(&self, queue: &str) -> Vec<String> {
            let conn = self.conn();
            let mut stmt = conn
                .prepare("SELECT id FROM messages WHERE queue = ?1")
                .unwrap();
            stmt.query_map(params![queue], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        }
    }
}
