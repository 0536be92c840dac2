//! The devstack's host: a function's environment from the template, and the backend's ports.

use bulkhead::bus::Bus;
use bulkhead::host::Host;
use bulkhead::mail::Mailer;
use bulkhead::store::Table;
use bulkhead::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

pub struct DevHost {
    env: HashMap<String, String>,
    tables: HashMap<String, Arc<dyn Table>>,
    buses: HashMap<String, Arc<dyn Bus>>,
    mailer: Arc<dyn Mailer>,
}

impl DevHost {
    pub fn new(
        env: HashMap<String, String>,
        tables: HashMap<String, Arc<dyn Table>>,
        buses: HashMap<String, Arc<dyn Bus>>,
        mailer: Arc<dyn Mailer>,
    ) -> Self {
        DevHost {
            env,
            tables,
            buses,
            mailer,
        }
    }
}

impl Host for DevHost {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    fn table(&self, name: &str) -> Result<Arc<dyn Table>> {
        self.tables
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Config(format!("no table {name} in the template")))
    }

    fn bus(&self, name: &str) -> Result<Arc<dyn Bus>> {
        self.buses
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Config(format!("no bus {name} in the template")))
    }

    /// The devstack's outbox, which the devstack reads back (`/_devstack/outbox`).
    fn mailer(&self) -> Result<Arc<dyn Mailer>> {
        Ok(self.mailer.clone())
    }
}
