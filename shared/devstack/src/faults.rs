//! Faults the devstack can inject: services (or the bus) taken down and brought back.

use bulkhead::bus::{Bus, BusEntry, EntryFailure};
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// What is down right now. A down service's API answers 503 and its triggers and listeners
/// stop consuming; a down bus refuses every `PutEvents`.
#[derive(Debug, Default)]
pub struct Faults {
    down: RwLock<BTreeSet<String>>,
}

impl Faults {
    pub fn new(down: impl IntoIterator<Item = String>) -> Self {
        Faults {
            down: RwLock::new(down.into_iter().collect()),
        }
    }

    pub fn is_down(&self, name: &str) -> bool {
        self.down
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }

    pub fn set_down(&self, names: impl IntoIterator<Item = String>) {
        *self.down.write().unwrap_or_else(|p| p.into_inner()) = names.into_iter().collect();
    }

    pub fn down(&self) -> Vec<String> {
        self.down
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// The bus, behind the `bus` fault.
pub struct FaultyBus {
    inner: Arc<dyn Bus>,
    faults: Arc<Faults>,
}

impl FaultyBus {
    pub fn new(inner: Arc<dyn Bus>, faults: Arc<Faults>) -> Self {
        FaultyBus { inner, faults }
    }
}

#[async_trait::async_trait]
impl Bus for FaultyBus {
    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> bulkhead::Result<Vec<Result<(), EntryFailure>>> {
        if self.faults.is_down("bus") {
            return Err(bulkhead::Error::Bus(
                "the bus is down (devstack fault)".into(),
            ));
        }
        self.inner.put_events(entries).await
    }
}
