//! The table port on the embedded database.

use super::{Item, Key, Page, Query, Table, Write};
use crate::Result;
use crate::embedded::{Database, TableSpec};
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
