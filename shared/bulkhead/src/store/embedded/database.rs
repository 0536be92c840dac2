//! The embedded database: one SQLite connection, its schema, and the wake-up signals of
//! streams and queues.

use crate::store::Item;
use crate::{Error, Result};
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Room in the prepared statement cache for every statement the embedded backend runs.
const STATEMENTS: usize = 64;

/// The embedded database.
pub struct Database {
    conn: Mutex<Connection>,
    signals: Mutex<HashMap<String, Arc<Notify>>>,
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(e.to_string())
    }
}

pub(crate) fn to_json(item: &Item) -> Result<String> {
    Ok(serde_json::to_string(item)?)
}

pub(crate) fn from_json(text: &str) -> Result<Item> {
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
        // Each part of the backend creates its own tables.
        for schema in [
            super::items::SCHEMA,
            crate::trigger::embedded::SCHEMA,
            crate::bus::embedded::queues::SCHEMA,
            crate::bus::embedded::archive::SCHEMA,
            crate::mail::outbox::SCHEMA,
        ] {
            conn.execute_batch(schema)?;
        }
        // Every statement is prepared once and reused: compiling SQL dominated a small write.
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        Ok(Arc::new(Database {
            conn: Mutex::new(conn),
            signals: Mutex::default(),
        }))
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The wake-up signal of a stream (`stream/<table>`) or a queue (`queue/<name>`).
    pub fn signal(&self, name: &str) -> Arc<Notify> {
        let mut signals = self.signals.lock().unwrap_or_else(|p| p.into_inner());
        signals.entry(name.to_string()).or_default().clone()
    }
}
