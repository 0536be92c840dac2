//! The table port on the embedded backend.
//!
//! The embedded backend is one SQLite [`Database`] that holds every table, each table's
//! change feed, stream checkpoints, queues and the bus archive. Each part sits beside the
//! port it serves, one concept a file:
//!
//! - `store/embedded/database.rs`: the connection, the schema (each part brings its own
//!   tables) and the wake-up signals of streams and queues.
//! - `store/embedded/items.rs`: tables: items by key, secondary index entries, queries,
//!   conditional writes and TTL expiry. This file: [`EmbeddedTable`], the [`Table`] port on it.
//! - `trigger/embedded.rs`: what triggers read, each table's change feed, appended in the
//!   same transaction as the write it records, and stream consumers' checkpoints.
//! - `bus/embedded.rs`: the [`Bus`](crate::bus::Bus) port; beside it `bus/embedded/queues.rs`
//!   (messages, visibility deadlines, redrive) and `bus/embedded/archive.rs`.
//!
//! Every part adds its methods to [`Database`], so that a caller holds one handle;
//! `bulkhead::embedded` re-exports the types callers name.

mod database;
mod items;

pub use database::Database;
pub(crate) use database::{from_json, to_json};
pub use items::TableSpec;

use super::{Item, Key, Page, Query, Table, Write};
use crate::Result;
use async_trait::async_trait;
use std::sync::Arc;

/// One table of the embedded database.
#[derive(Clone)]
pub struct EmbeddedTable {
    db: Arc<Database>,
    spec: Arc<TableSpec>,
}

impl EmbeddedTable {
    pub fn new(db: Arc<Database>, spec: TableSpec) -> Self {
        EmbeddedTable {
            db,
            spec: Arc::new(spec),
        }
    }
}

#[async_trait]
impl Table for EmbeddedTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.db.get(&self.spec.name, key)
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        self.db.query(&self.spec.name, query)
    }

    async fn write(&self, writes: Vec<Write>) -> Result<()> {
        self.db.write(&self.spec, writes)
    }
}
