//! The trigger's input on the embedded backend: each streaming table's change feed, as a
//! DynamoDB stream holds it, and where each stream consumer has got to.
//!
//! A table write appends its change record here in the write's own transaction
//! (`append`, called by the table side in `store/embedded/items.rs`), so the feed is
//! exactly the sequence of committed writes. The devstack's stream pollers read it from
//! their checkpoints and hand the records to triggers.

use crate::store::embedded::{Database, from_json, to_json};
use crate::store::{Item, Key};
use crate::{Result, now_millis};
use rusqlite::{Connection, OptionalExtension, params};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, kind TEXT NOT NULL,
    keys TEXT NOT NULL, old TEXT, new TEXT, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_table ON changes (tbl, seq);
CREATE TABLE IF NOT EXISTS checkpoints (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS positions (consumer TEXT PRIMARY KEY, position TEXT NOT NULL);
";

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

/// Appends the change record of one write, inside the write's transaction.
pub(crate) fn append(
    tx: &Connection,
    table: &str,
    key: &Key,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Result<()> {
    let kind = match (old, new) {
        (None, _) => "INSERT",
        (Some(_), Some(_)) => "MODIFY",
        (Some(_), None) => "REMOVE",
    };
    tx.prepare_cached(
        "INSERT INTO changes (tbl, kind, keys, old, new, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        table,
        kind,
        to_json(&key.to_item())?,
        old.map(to_json).transpose()?,
        new.map(to_json).transpose()?,
        now_millis()
    ])?;
    Ok(())
}

impl Database {
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

    /// The highest change sequence number of a table, or 0.
    pub fn last_change(&self, table: &str) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM changes WHERE tbl = ?1",
            params![table],
            |r| r.get(0),
        )?)
    }
}
