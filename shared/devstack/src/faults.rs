//! Faults the devstack can inject, from a test or by hand: services (or the bus) down, a bus
//! outage, `PutEvents` entries that fail, listeners that error or panic, duplicate and
//! reordered queue delivery, and the process killed between handling a batch and
//! acknowledging it.
//!
//! Every random choice is a hash of the plan's seed, the fault and what it applies to (an
//! entry and its attempt, a message and its receive count), never of timing, so one seed
//! picks the same victims on every run.

use bulkhead::bus::{Bus, BusEntry, EntryFailure};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What to break. `POST /_devstack/faults` replaces the whole plan: a field left out is off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Plan {
    /// Services (or `bus`) that are down: a down service's API answers 503 and its triggers
    /// and listeners stop consuming; a down bus refuses every `PutEvents`.
    pub down: Vec<String>,
    /// Seeds every random choice below.
    pub seed: u64,
    /// The bus refuses every `PutEvents` for this long, counted from when the plan is set.
    pub bus_outage_ms: u64,
    /// Each `PutEvents` entry fails alone with this probability, per attempt, with the
    /// retryable code EventBridge uses for its own failures.
    pub put_events_failure_rate: f64,
    /// Each delivery of a message makes its listener fail it with this probability.
    pub listener_error_rate: f64,
    /// Each delivery of a message makes its listener panic with this probability, after
    /// applying the messages before it in the batch.
    pub listener_panic_rate: f64,
    /// A message whose body contains one of these strings fails on every delivery.
    pub listener_error_on: Vec<String>,
    /// A message whose body contains one of these strings panics its listener every time.
    pub listener_panic_on: Vec<String>,
    /// A handled message is left on its queue, so that it is delivered again, with this
    /// probability.
    pub duplicate_rate: f64,
    /// A received message is held back and handled after the next batch, with this
    /// probability; batches are also shuffled when this is set.
    pub reorder_rate: f64,
    /// After a batch is handled and before it is acknowledged (stream checkpoint or queue
    /// delete), the process kills itself with SIGKILL with this probability. Only for a
    /// devstack run as a child process. For stream batches the draw also depends on the
    /// process id, since a restarted process reads the same batch again.
    pub kill_rate: f64,
}

impl Plan {
    /// Refuses rates outside [0, 1].
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("putEventsFailureRate", self.put_events_failure_rate),
            ("listenerErrorRate", self.listener_error_rate),
            ("listenerPanicRate", self.listener_panic_rate),
            ("duplicateRate", self.duplicate_rate),
            ("reorderRate", self.reorder_rate),
            ("killRate", self.kill_rate),
        ];
        match rates.iter().find(|(_, r)| !(0.0..=1.0).contains(r)) {
            Some((name, rate)) => Err(format!("{name} is {rate}; a rate is between 0 and 1")),
            None => Ok(()),
        }
    }
}

/// The faults in force.
#[derive(Debug, Default)]
pub struct Faults {
    plan: RwLock<Plan>,
    outage_until: Mutex<Option<Instant>>,
    attempts: Mutex<HashMap<u64, u64>>,
    injected: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Faults {
    pub fn new(plan: Plan) -> Self {
        let faults = Faults::default();
        faults.set(plan);
        faults
    }

    /// Replaces the plan; a bus outage starts now.
    pub fn set(&self, plan: Plan) {
        *self.outage_until.lock().unwrap_or_else(|p| p.into_inner()) = (plan.bus_outage_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(plan.bus_outage_ms));
        self.attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        *self.plan.write().unwrap_or_else(|p| p.into_inner()) = plan;
    }

    pub fn plan(&self) -> Plan {
        self.plan.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_down(&self, name: &str) -> bool {
        if name == "bus" && self.bus_outage() {
            return true;
        }
        self.plan
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .down
            .iter()
            .any(|d| d == name)
    }

    /// What is down now, bus outage included.
    pub fn down(&self) -> Vec<String> {
        let mut down = self.plan().down;
        if self.bus_outage() && !down.iter().any(|d| d == "bus") {
            down.push("bus".into());
        }
        down.sort();
        down
    }

    fn bus_outage(&self) -> bool {
        self.outage_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }

    /// Whether the fault `kind` hits `subject`, which has probability `rate`.
    pub fn hits(&self, kind: &str, subject: &str, rate: f64) -> bool {
        let hit =
            rate > 0.0 && ((self.draw(kind, subject) >> 11) as f64 / (1u64 << 53) as f64) < rate;
        if hit {
            self.count(kind);
        }
        hit
    }

    /// Counts an injected fault of this kind.
    pub fn count(&self, kind: &str) {
        *self
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.to_string())
            .or_default() += 1;
    }

    /// How many faults of each kind were injected since the devstack started.
    pub fn injected(&self) -> std::collections::BTreeMap<String, u64> {
        self.injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A uniform 64-bit draw from the seed, the fault and its subject.
    pub fn draw(&self, kind: &str, subject: &str) -> u64 {
        let seed = self.plan.read().unwrap_or_else(|p| p.into_inner()).seed;
        splitmix(fnv1a(&[
            &seed.to_le_bytes(),
            kind.as_bytes(),
            subject.as_bytes(),
        ]))
    }

    /// Whether this attempt at putting `entry` fails: each attempt is a fresh draw.
    fn entry_fails(&self, entry: &BusEntry, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let id = fnv1a(&[entry.detail_type.as_bytes(), entry.detail.as_bytes()]);
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
            let n = attempts.entry(id).or_default();
            *n += 1;
            *n
        };
        self.hits("put-events", &format!("{id:x}#{attempt}"), rate)
    }

    /// Kills this process with SIGKILL, as a crash or an out-of-memory kill would.
    pub fn kill_now(&self, during: &str) -> ! {
        tracing::warn!(during, "devstack fault: SIGKILL");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort()
    }
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The bus, behind the `bus` and `PutEvents` faults.
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
            self.faults.count("bus-down");
            return Err(bulkhead::Error::Bus(
                "the bus is down (devstack fault)".into(),
            ));
        }
        let rate = self.faults.plan().put_events_failure_rate;
        let failing: Vec<bool> = entries
            .iter()
            .map(|e| self.faults.entry_fails(e, rate))
            .collect();
        if !failing.contains(&true) {
            return self.inner.put_events(entries).await;
        }
        let passing: Vec<BusEntry> = entries
            .iter()
            .zip(&failing)
            .filter(|(_, fails)| !**fails)
            .map(|(e, _)| e.clone())
            .collect();
        let mut passed = if passing.is_empty() {
            vec![]
        } else {
            self.inner.put_events(&passing).await?
        }
        .into_iter();
        Ok(failing
            .iter()
            .map(|fails| match fails {
                true => Err(EntryFailure {
                    code: "InternalFailure".into(),
                    message: "devstack fault: putEventsFailureRate".into(),
                }),
                false => passed.next().unwrap_or(Ok(())),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_picks_the_same_victims_every_time_and_about_as_many_as_the_rate() {
        let faults = Faults::new(Plan {
            seed: 42,
            ..Plan::default()
        });
        let picks = |f: &Faults| -> Vec<bool> {
            (0..10_000)
                .map(|i| f.hits("error", &format!("m{i}"), 0.2))
                .collect()
        };
        let first = picks(&faults);
        assert_eq!(first, picks(&faults));
        let hit = first.iter().filter(|h| **h).count();
        assert!((1_800..2_200).contains(&hit), "{hit} of 10,000 at rate 0.2");
        let other = Faults::new(Plan {
            seed: 43,
            ..Plan::default()
        });
        assert_ne!(first, picks(&other));
        assert!(!faults.hits("error", "m1", 0.0));
    }

    #[test]
    fn a_bus_outage_ends_by_itself() {
        let faults = Faults::new(Plan {
            bus_outage_ms: 30,
            ..Plan::default()
        });
        assert!(faults.is_down("bus"));
        assert_eq!(faults.down(), ["bus"]);
        std::thread::sleep(Duration::from_millis(40));
        assert!(!faults.is_down("bus"));
    }

    #[test]
    fn unknown_fault_names_are_refused() {
        assert!(serde_json::from_str::<Plan>(r#"{"putEventFailureRate": 0.5}"#).is_err());
        let plan: Plan = serde_json::from_str(r#"{"down": ["bus"], "seed": 3}"#).unwrap();
        assert_eq!(plan.down, ["bus"]);
    }
}
