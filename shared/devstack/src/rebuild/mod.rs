//! Blue/green rebuild of a view: a new generation of each of a service's tables, filled
//! from the whole archive and from the live events at once while the current generation
//! keeps answering reads, then switched to in one step, and the old one dropped.
//!
//! 1. The service's listener is built again on the new generation (`<Table>~g<n>`), with
//!    two queues of its own: `<Queue>~g<n>` for the replay, `<Queue>~g<n>-live` for copies.
//! 2. Every message the live queue hands out is copied to the `-live` queue first
//!    ([`mirror`]), and the archive, up to now, is replayed to the service's rules into
//!    the replay queue.
//! 3. The replay queue is applied first, in order of event time; the copies wait, and are
//!    applied once it is empty, so that the new generation sees history as a quiet
//!    rebuild would.
//! 4. When both are empty, the tables' aliases ([`alias`]) point at the new generation:
//!    the API's reads and the live listener's writes move in one step. Copying stops, the
//!    last copies drain, and the old generation is dropped once no call is in flight on
//!    it (or kept with `keepOld`, to compare).
//!
//! Events reach the new generation twice, live and replayed, in any order; the views stay
//! exact by versions and apply-once. A service whose listener takes a mailer is refused:
//! its new generation would either mail again or claim messages nobody sent. A message the
//! new generation keeps failing goes to its own dead-letter queue and fails the rebuild,
//! before any switch.
//! Only views are rebuilt: a service with a stream trigger owns the truth, not a view.

pub mod alias;
pub mod cli;
pub mod mirror;

use crate::faults::Faults;
use crate::host::DevHost;
use crate::infra::Infra;
use crate::infra::QueueSource;
use crate::replay::Replayer;
use crate::template::{FunctionSpec, QueueMapping, QueueSpec, Template};
use alias::{Alias, Generations};
use bulkhead::bus::Bus;
use bulkhead::listener::Listener;
use bulkhead::mail::{Mail, Mailer};
use bulkhead::store::Table;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Why a rebuild cannot start or cannot be found. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no service {0} in the template")]
    UnknownService(String),
    #[error("{service} is not a view: {reason}")]
    NotAView { service: String, reason: String },
    #[error("rebuild {name} of {service} is still running")]
    AlreadyRunning { service: String, name: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("no rebuild {0}")]
    UnknownRebuild(String),
    #[error(
        "{0} has a side effect (it mails): a rebuilt generation would either repeat it or claim messages it never sent"
    )]
    SideEffects(String),
    #[error("the rebuild could not start: {0}")]
    Failed(String),
    #[error(transparent)]
    Replay(#[from] crate::replay::Refused),
}

/// What to rebuild.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    pub service: String,
    /// Keep the old generation, no longer fed, instead of dropping it.
    #[serde(default)]
    pub keep_old: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// The archive is being replayed into the new generation, live events too.
    Replaying,
    /// The replay is over; the new generation's queue is being emptied.
    CatchingUp,
    /// Reads and writes use the new generation; the last copies drain.
    Switched,
    Completed,
    Failed,
}

/// One table's generations in a rebuild.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub table: String,
    pub from: u32,
    pub to: u32,
}

/// A rebuild as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub name: String,
    pub service: String,
    pub state: State,
    pub tables: Vec<Generation>,
    /// The replay that feeds the new generation, and its progress.
    pub replay: String,
    pub replayed: u64,
    pub in_window: u64,
    /// Messages in the new generation's queues, not yet applied.
    pub behind: i64,
    pub keep_old: bool,
    #[serde(default)]
    pub error: Option<String>,
}

/// A view under rebuild sends nothing: a service that takes a mailer is refused.
struct NoMail;

#[async_trait::async_trait]
impl Mailer for NoMail {
    async fn send(&self, _mail: &Mail) -> bulkhead::Result<()> {
        Err(bulkhead::Error::Config(
            "a generation under rebuild sends no mail".into(),
        ))
    }
}

/// What the devstack's `start` hands the rebuilder: the tables every function holds, and
/// the switch of each listener queue's copy.
pub struct Wiring {
    pub aliases: HashMap<String, Arc<Alias>>,
    pub buses: HashMap<String, Arc<dyn Bus>>,
    pub mirrors: HashMap<String, Arc<Mutex<Option<String>>>>,
    pub generations: Arc<Generations>,
}

pub struct Rebuilder {
    template: Template,
    config: crate::Config,
    infra: Arc<dyn Infra>,
    faults: Arc<Faults>,
    replayer: Arc<Replayer>,
    wiring: Arc<Wiring>,
    rebuilds: Mutex<BTreeMap<String, Arc<Mutex<Status>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often a rebuild looks at its replay and queues.
const TICK: Duration = Duration::from_millis(20);
/// How long a rebuild waits for the copies to empty before it settles for a few.
const PATIENCE: Duration = Duration::from_secs(10);
const CAUGHT_UP: i64 = 10;

impl Rebuilder {
    pub fn new(
        template: &Template,
        config: &crate::Config,
        infra: Arc<dyn Infra>,
        faults: Arc<Faults>,
        wiring: Wiring,
    ) -> Self {
        Rebuilder {
            replayer: Arc::new(Replayer::new(template, infra.clone(), faults.clone())),
            template: template.clone(),
            config: config.clone(),
            infra,
            faults,
            wiring: Arc::new(wiring),
            rebuilds: Mutex::default(),
        }
    }

    /// A table as every function holds it: its current generation.
    pub fn table(&self, name: &str) -> Option<Arc<dyn Table>> {
        let alias = self.wiring.aliases.get(name)?;
        Some(alias.clone() as Arc<dyn Table>)
    }

    pub fn replayer(&self) -> &Replayer {
        &self.replayer
    }

    pub fn list(&self) -> Vec<Status> {
        lock(&self.rebuilds)
            .values()
            .map(|s| lock(s).clone())
            .collect()
    }

    pub fn status(&self, name: &str) -> Result<Status, Refused> {
        lock(&self.rebuilds)
            .get(name)
            .map(|s| lock(s).clone())
            .ok_or_else(|| Refused::UnknownRebuild(name.into()))
    }

    /// The service's listeners and the tables they and its API hold.
    fn view(&self, service: &str) -> Result<(Vec<&FunctionSpec>, Vec<String>), Refused> {
        let functions: Vec<&FunctionSpec> = self
            .template
            .functions
            .iter()
            .filter(|f| f.service == service)
            .collect();
        let not_a_view = |reason: &str| Refused::NotAView {
            service: service.into(),
            reason: reason.into(),
        };
        if functions.is_empty() {
            return Err(Refused::UnknownService(service.into()));
        }
        if functions.iter().any(|f| !f.streams.is_empty()) {
            return Err(not_a_view(
                "its table is the source of its events, rebuilt from nothing",
            ));
        }
        let listeners: Vec<&FunctionSpec> = functions
            .iter()
            .copied()
            .filter(|f| !f.queues.is_empty())
            .collect();
        if listeners.is_empty() {
            return Err(not_a_view("it has no listener"));
        }
        let tables: Vec<String> = self
            .template
            .tables
            .keys()
            .filter(|t| functions.iter().any(|f| f.env.values().any(|v| v == *t)))
            .cloned()
            .collect();
        if tables.is_empty() {
            return Err(not_a_view("it has no table"));
        }
        Ok((listeners, tables))
    }

    /// Checks a request and starts the rebuild; nothing changes if it is refused.
    pub fn start(&self, request: &Request) -> Result<Status, Refused> {
        let (listeners, tables) = self.view(&request.service)?;
        if !self.infra.keeps_generations() {
            return Err(Refused::Unsupported(
                "the AWS-API backend does not rebuild views yet: run the embedded devstack, or see README, Rebuilding a view with no downtime (on AWS)".into(),
            ));
        }
        let mut rebuilds = lock(&self.rebuilds);
        if let Some((name, _)) = rebuilds.iter().find(|(_, s)| {
            let s = lock(s);
            s.service == request.service && !matches!(s.state, State::Completed | State::Failed)
        }) {
            return Err(Refused::AlreadyRunning {
                service: request.service.clone(),
                name: name.clone(),
            });
        }
        let wiring = &self.wiring;
        let generations: Vec<Generation> = tables
            .iter()
            .map(|table| {
                let from = wiring.aliases[table].generation();
                Generation {
                    table: table.clone(),
                    from,
                    // Never one a failed or interrupted rebuild may have left data in.
                    to: from.max(wiring.generations.used(table)) + 1,
                }
            })
            .collect();
        let n = generations[0].to;
        let mut new_tables: HashMap<String, Arc<dyn Table>> = HashMap::new();
        for g in &generations {
            let table = self.infra.generation(&g.table, g.to).map_err(failed)?;
            new_tables.insert(g.table.clone(), table);
        }
        // Each live queue gets two beside it: one for the replay, one for the copies.
        let live: Vec<String> = listeners
            .iter()
            .flat_map(|f| f.queues.iter().map(|q| q.queue.clone()))
            .collect();
        let beside = |suffix: &str| -> BTreeMap<String, String> {
            live.iter()
                .map(|q| (q.clone(), format!("{q}~g{n}{suffix}")))
                .collect()
        };
        let (replayed, copied) = (beside(""), beside("-live"));
        let mut feeds = vec![];
        let mut held = vec![];
        for function in &listeners {
            feeds.extend(self.feeds(function, &new_tables, &replayed)?);
            held.extend(self.feeds(function, &new_tables, &copied)?);
        }
        for g in &generations {
            wiring
                .generations
                .use_up(&g.table, g.to)
                .map_err(|e| Refused::Failed(format!("generations.json: {e}")))?;
        }
        // Copy first, then fix the window's end: whatever the live queues handed out before
        // copying began was published, and archived, before the end.
        let copy = |on: bool| {
            for (live, copies) in &copied {
                *lock(&wiring.mirrors[live]) = on.then(|| copies.clone());
            }
        };
        copy(true);
        std::thread::sleep(Duration::from_millis(2));
        let replay = crate::replay::Request {
            service: request.service.clone(),
            from: "1970-01-01T00:00:00Z".into(),
            to: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            rule: None,
            archive: None,
        };
        let replay = match self.replayer.start_into(&replay, replayed.clone()) {
            Ok(replay) => replay,
            Err(refused) => {
                copy(false);
                return Err(refused.into());
            }
        };
        let dead = feeds
            .iter()
            .chain(&held)
            .filter_map(|f| f.queue.redrive.as_ref())
            .map(|r| r.dead_letter_queue.clone())
            .collect();
        let pollers = feeds
            .into_iter()
            .map(|feed| feed.spawn(&self.faults, &self.config))
            .collect();
        let name = format!(
            "{}-{}",
            request.service,
            replay.name.rsplit('-').next().unwrap_or("0")
        );
        let status = Arc::new(Mutex::new(Status {
            name: name.clone(),
            service: request.service.clone(),
            state: State::Replaying,
            tables: generations,
            replay: replay.name.clone(),
            replayed: 0,
            in_window: 0,
            behind: 0,
            keep_old: request.keep_old,
            error: None,
        }));
        rebuilds.insert(name, status.clone());
        let run = Run {
            infra: self.infra.clone(),
            faults: self.faults.clone(),
            config: self.config.clone(),
            replayer: self.replayer.clone(),
            wiring: self.wiring.clone(),
            status: status.clone(),
            new_tables,
            copied,
            replayed: replayed.into_values().collect(),
            dead,
            held,
            pollers,
        };
        tokio::spawn(run.go());
        let status = lock(&status).clone();
        Ok(status)
    }

    /// The service's listener built on the new generation, one feed per queue it polls.
    fn feeds(
        &self,
        function: &FunctionSpec,
        new_tables: &HashMap<String, Arc<dyn Table>>,
        queues: &BTreeMap<String, String>,
    ) -> Result<Vec<Feed>, Refused> {
        let mut tables: HashMap<String, Arc<dyn Table>> = self
            .wiring
            .aliases
            .iter()
            .map(|(name, alias)| (name.clone(), alias.clone() as Arc<dyn Table>))
            .collect();
        tables.extend(new_tables.clone());
        let mailer: Arc<dyn Mailer> = Arc::new(NoMail);
        let host = DevHost::new(
            function.env.clone(),
            tables,
            self.wiring.buses.clone(),
            mailer.clone(),
        );
        let listener = crate::registry::listener(function, &host)
            .map_err(failed)?
            .named(&format!("{}~rebuild", function.name));
        drop(host);
        // A listener that kept the mailer sends mail: its claims would be a lie.
        if Arc::strong_count(&mailer) > 1 {
            return Err(Refused::SideEffects(function.service.clone()));
        }
        let mut feeds = vec![];
        for mapping in &function.queues {
            let name = queues[&mapping.queue].clone();
            let live = &self.template.queues[&mapping.queue];
            let queue = QueueSpec {
                redrive: live.redrive.as_ref().map(|r| bulkhead::embedded::Redrive {
                    dead_letter_queue: format!("{name}-dead"),
                    ..r.clone()
                }),
                name,
                ..live.clone()
            };
            feeds.push(Feed {
                source: self.infra.queue(&queue).map_err(failed)?,
                function: function.clone(),
                mapping: QueueMapping {
                    queue: queue.name.clone(),
                    ..mapping.clone()
                },
                queue,
                listener: listener.clone(),
            });
        }
        Ok(feeds)
    }
}

/// A queue of the new generation and the listener that applies it.
struct Feed {
    source: Arc<dyn QueueSource>,
    function: FunctionSpec,
    mapping: QueueMapping,
    queue: QueueSpec,
    listener: Listener,
}

impl Feed {
    fn spawn(&self, faults: &Arc<Faults>, config: &crate::Config) -> JoinHandle<()> {
        crate::pollers::spawn_queue(
            self.source.clone(),
            &self.function,
            &self.mapping,
            self.queue.clone(),
            self.listener.clone(),
            faults.clone(),
            config,
        )
    }
}

fn failed(e: bulkhead::Error) -> Refused {
    Refused::Failed(e.to_string())
}

/// A rebuild after it started: waits for the replay and the queues, switches, cleans up.
struct Run {
    infra: Arc<dyn Infra>,
    replayer: Arc<Replayer>,
    wiring: Arc<Wiring>,
    faults: Arc<Faults>,
    config: crate::Config,
    status: Arc<Mutex<Status>>,
    new_tables: HashMap<String, Arc<dyn Table>>,
    /// Each live queue and the queue its copies go to.
    copied: BTreeMap<String, String>,
    /// The queues the replay goes to.
    replayed: Vec<String>,
    /// Where a message the new generation keeps failing goes: a non-empty one fails the
    /// rebuild, before any switch.
    dead: Vec<String>,
    /// The copies' feeds, held until the replay has been applied.
    held: Vec<Feed>,
    pollers: Vec<JoinHandle<()>>,
}

impl Run {
    async fn go(mut self) {
        if let Err(e) = self.steps().await {
            tracing::error!(error = %e, "rebuild failed");
            for mirror in self.copied.keys() {
                *lock(&self.wiring.mirrors[mirror]) = None;
            }
            let replay = lock(&self.status).replay.clone();
            let _ = self.replayer.cancel(&replay);
            let status = lock(&self.status).clone();
            if status.state != State::Switched {
                for g in &status.tables {
                    let _ = self.infra.drop_generation(&g.table, g.to).await;
                }
            }
            let mut status = lock(&self.status);
            status.state = State::Failed;
            status.error = Some(e.to_string());
        }
        for poller in &self.pollers {
            poller.abort();
        }
    }

    fn set(&self, state: State) {
        lock(&self.status).state = state;
    }

    async fn depth(&self, queues: impl Iterator<Item = &String>) -> bulkhead::Result<i64> {
        let mut depth = 0;
        for queue in queues {
            let d = self.infra.depth(queue).await?;
            depth += d.visible + d.in_flight;
        }
        Ok(depth)
    }

    /// Messages not yet applied, in the replay's queues and in all the new generation's;
    /// an error once the new generation has given up on a message.
    async fn behind(&self) -> bulkhead::Result<(i64, i64)> {
        let dead = self.depth(self.dead.iter()).await?;
        if dead > 0 {
            return Err(bulkhead::Error::Config(format!(
                "the new generation failed {dead} message(s) for good; they are in {}",
                self.dead.join(", ")
            )));
        }
        let replayed = self.depth(self.replayed.iter()).await?;
        let behind = replayed + self.depth(self.copied.values()).await?;
        lock(&self.status).behind = behind;
        Ok((replayed, behind))
    }

    /// Replay first, in order of event time; then the live events copied meanwhile, so
    /// that the new generation sees history as a quiet rebuild would; then the switch.
    async fn steps(&mut self) -> bulkhead::Result<()> {
        let replay = lock(&self.status).replay.clone();
        loop {
            tokio::time::sleep(TICK).await;
            let progress = self
                .replayer
                .status(&replay)
                .map_err(|e| bulkhead::Error::Config(e.to_string()))?;
            {
                let mut status = lock(&self.status);
                status.replayed = progress.replayed;
                status.in_window = progress.in_window;
            }
            let (replayed, _) = self.behind().await?;
            match progress.state {
                crate::replay::State::Completed if replayed == 0 => break,
                crate::replay::State::Failed | crate::replay::State::Cancelled => {
                    return Err(bulkhead::Error::Config(format!(
                        "replay {replay} ended {}: {}",
                        progress.state,
                        progress.error.unwrap_or_default()
                    )));
                }
                _ => {}
            }
        }
        self.set(State::CatchingUp);
        for feed in std::mem::take(&mut self.held) {
            self.pollers.push(feed.spawn(&self.faults, &self.config));
        }
        // Caught up: nothing left, or, under a load that never lets the copies empty, no
        // more than a batch or so after a while (they drain into the new generation after
        // the switch, as before it).
        let catching_up = std::time::Instant::now();
        loop {
            let (_, behind) = self.behind().await?;
            if behind == 0 || (behind <= CAUGHT_UP && catching_up.elapsed() > PATIENCE) {
                break;
            }
            tokio::time::sleep(TICK).await;
        }
        let tables = lock(&self.status).tables.clone();
        for g in &tables {
            self.wiring
                .generations
                .set(&g.table, g.to)
                .map_err(|e| bulkhead::Error::Config(format!("generations.json: {e}")))?;
        }
        let mut old = vec![];
        for g in &tables {
            old.push(self.wiring.aliases[&g.table].switch(g.to, self.new_tables[&g.table].clone()));
        }
        self.set(State::Switched);
        tracing::info!(tables = ?tables, "rebuild: reads and writes switched to the new generation");
        for live in self.copied.keys() {
            *lock(&self.wiring.mirrors[live]) = None;
        }
        while self.behind().await?.1 > 0 {
            tokio::time::sleep(TICK).await;
        }
        // A write that took the old generation just before the switch may still be waiting
        // for the database: drop only once none is in flight.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !old.iter().all(alias::settled) && std::time::Instant::now() < deadline {
            tokio::time::sleep(TICK).await;
        }
        drop(old);
        if !lock(&self.status).keep_old {
            for g in &tables {
                self.infra.drop_generation(&g.table, g.from).await?;
            }
        }
        self.set(State::Completed);
        Ok(())
    }
}
