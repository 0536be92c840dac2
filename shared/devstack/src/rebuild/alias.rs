//! A view's table by its logical name, pointing at one generation at a time: what the
//! functions hold, so that a rebuild switches every reader and writer in one step, as a
//! Lambda alias or an SSM parameter does in AWS. The current generation of each table is
//! kept in `generations.json` in the data directory, so that a restart keeps the switch.

use async_trait::async_trait;
use bulkhead::Result;
use bulkhead::store::{Item, Key, Page, Query, Table, Write};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

pub struct Alias {
    current: RwLock<(u32, Arc<dyn Table>)>,
}

impl Alias {
    pub fn new(generation: u32, table: Arc<dyn Table>) -> Self {
        Alias {
            current: RwLock::new((generation, table)),
        }
    }

    pub fn generation(&self) -> u32 {
        self.current.read().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Points every later call at `table`; calls in flight finish where they started.
    /// Answers the table it pointed at: while a call is still in flight on it, that call
    /// holds it too (see [`settled`]).
    pub fn switch(&self, generation: u32, table: Arc<dyn Table>) -> Arc<dyn Table> {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *current, (generation, table)).1
    }

    fn table(&self) -> Arc<dyn Table> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }
}

#[async_trait]
impl Table for Alias {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.table().get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        self.table().get_many(keys).await
    }

    async fn query(&self, query: &Query) -> Result<Page> {
        self.table().query(query).await
    }

    async fn write(&self, writes: Vec<Write>) -> Result<()> {
        self.table().write(writes).await
    }
}

/// Whether no call is in flight any more on a table that an alias no longer points at:
/// its caller holds the only reference.
pub fn settled(old: &Arc<dyn Table>) -> bool {
    Arc::strong_count(old) == 1
}

/// The current generation of each table whose first generation was replaced, and the
/// highest each has used, so that a rebuild never takes a generation that a failed or
/// interrupted one may have left data in.
pub struct Generations {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct State {
    current: BTreeMap<String, u32>,
    used: BTreeMap<String, u32>,
}

impl Generations {
    pub fn load(data_dir: &std::path::Path) -> crate::Result<Self> {
        let path = data_dir.join("generations.json");
        let state = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| crate::Error::Registry(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(Generations {
            path,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn of(&self, table: &str) -> u32 {
        self.lock().current.get(table).copied().unwrap_or(1)
    }

    pub fn used(&self, table: &str) -> u32 {
        let state = self.lock();
        let used = state.used.get(table).copied().unwrap_or(1);
        used.max(state.current.get(table).copied().unwrap_or(1))
    }

    /// Records a switch durably.
    pub fn set(&self, table: &str, generation: u32) -> std::io::Result<()> {
        let mut state = self.lock();
        state.current.insert(table.to_string(), generation);
        self.write(&state)
    }

    /// Records that a rebuild took `generation`, before it writes anything there.
    pub fn use_up(&self, table: &str, generation: u32) -> std::io::Result<()> {
        let mut state = self.lock();
        state.used.insert(table.to_string(), generation);
        self.write(&state)
    }

    /// Written aside, then renamed over the old file.
    fn write(&self, state: &State) -> std::io::Result<()> {
        let aside = self.path.with_extension("json.new");
        std::fs::write(&aside, serde_json::to_vec_pretty(state)?)?;
        std::fs::rename(aside, &self.path)
    }
}
