//! The bus archive on the embedded database: every event the bus accepted, in order.

use crate::Result;
use crate::store::embedded::Database;
use rusqlite::{Connection, params};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS archive (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, archive TEXT NOT NULL, event TEXT NOT NULL,
    at INTEGER NOT NULL);
";

/// Appends an event to an archive, inside the transaction that delivers it.
pub(crate) fn append(tx: &Connection, archive: &str, event: &str, at: i64) -> Result<()> {
    tx.prepare_cached("INSERT INTO archive (archive, event, at) VALUES (?1, ?2, ?3)")?
        .execute(params![archive, event, at])?;
    Ok(())
}

impl Database {
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
}
