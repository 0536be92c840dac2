//! The functions' figures (`bulkhead::telemetry::figures`) as the devstack keeps them: a
//! `metrics` recorder that sums each figure per label set (count, sum, max), shown under
//! `metrics` in `/_devstack/status`. One recorder per process: several devstacks in one
//! process (tests) share it.

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Default)]
struct Stat {
    count: u64,
    sum: f64,
    max: f64,
}

type Stats = Mutex<BTreeMap<(String, String), Stat>>;

/// One figure under one label set.
struct Cell {
    stats: Arc<Stats>,
    name: String,
    labels: String,
}

impl Cell {
    fn add(&self, count: u64, value: f64) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let stat = stats
            .entry((self.name.clone(), self.labels.clone()))
            .or_default();
        stat.count += count;
        stat.sum += value;
        stat.max = stat.max.max(value);
    }
}

impl metrics::CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.add(value, value as f64);
    }

    fn absolute(&self, value: u64) {
        self.add(0, value as f64);
    }
}

impl metrics::HistogramFn for Cell {
    fn record(&self, value: f64) {
        self.add(1, value);
    }
}

struct Figures(Arc<Stats>);

impl Figures {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Cell {
            stats: self.0.clone(),
            name: key.name().to_string(),
            labels: labels.join(","),
        })
    }
}

impl Recorder for Figures {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

static STATS: OnceLock<Option<Arc<Stats>>> = OnceLock::new();

/// Installs the recorder, once per process; answers `false` if another holds the place.
pub fn install() -> bool {
    STATS
        .get_or_init(|| {
            let stats = Arc::new(Stats::default());
            metrics::set_global_recorder(Figures(stats.clone()))
                .ok()
                .map(|()| stats)
        })
        .is_some()
}

/// `{figure: {labels: {count, sum, max}}}`; for a counter, `sum` is its total.
pub fn snapshot() -> Value {
    let Some(Some(stats)) = STATS.get() else {
        return json!({});
    };
    let stats = stats.lock().unwrap_or_else(|p| p.into_inner());
    let mut figures: BTreeMap<&str, BTreeMap<&str, Value>> = BTreeMap::new();
    for ((name, labels), stat) in stats.iter() {
        figures.entry(name).or_default().insert(
            labels,
            json!({"count": stat.count, "sum": stat.sum, "max": stat.max}),
        );
    }
    json!(figures)
}
