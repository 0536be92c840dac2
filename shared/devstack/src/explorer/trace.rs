//! The hops of the flow, read off the functions' own log lines (the lines a correlation id
//! finds in CloudWatch Logs): API requests, events put on the bus, and each listener's
//! outcome, with their span's fields and the time. A `tracing` layer keeps the latest in
//! memory for the explorer and hands each new one to the live tail.

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// How many hops the explorer keeps.
const KEPT: usize = 20_000;

/// One hop of one change.
#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    /// Milliseconds since the epoch.
    pub at: i64,
    /// `request`, `publish`, `rejected`, `applied`, `ignored` or `failed`.
    pub kind: &'static str,
    /// The line's fields and its span's: ids, function, outcome, status...
    pub fields: Map<String, Value>,
}

impl Hop {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

pub struct Trace {
    hops: Mutex<VecDeque<Hop>>,
    live: broadcast::Sender<Hop>,
}

/// The process's trace, which the layer fills.
pub fn trace() -> &'static Trace {
    static TRACE: OnceLock<Trace> = OnceLock::new();
    TRACE.get_or_init(|| Trace {
        hops: Mutex::new(VecDeque::new()),
        live: broadcast::channel(4096).0,
    })
}

impl Trace {
    fn push(&self, hop: Hop) {
        let mut hops = self.hops.lock().unwrap_or_else(|p| p.into_inner());
        if hops.len() == KEPT {
            hops.pop_front();
        }
        hops.push_back(hop.clone());
        let _ = self.live.send(hop);
    }

    /// Every kept hop that `keep` takes, oldest first.
    pub fn find(&self, keep: impl Fn(&Hop) -> bool) -> Vec<Hop> {
        let hops = self.hops.lock().unwrap_or_else(|p| p.into_inner());
        hops.iter().filter(|h| keep(h)).cloned().collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Hop> {
        self.live.subscribe()
    }
}

/// The kind of hop a log line is, if it is one.
fn kind_of(message: &str) -> Option<&'static str> {
    Some(match message {
        "request handled" => "request",
        "event to publish" => "publish",
        "entry rejected" => "rejected",
        "message applied" => "applied",
        "message ignored" => "ignored",
        "message failed" => "failed",
        _ => return None,
    })
}

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

/// The layer that fills [`trace`].
pub struct Layer;

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message");
        let Some(kind) = message
            .as_ref()
            .and_then(Value::as_str)
            .map(|m| m.trim_matches('"'))
            .and_then(kind_of)
        else {
            return;
        };
        if let Some(span) = ctx.event_span(event)
            && let Some(span_fields) = span.extensions().get::<Fields>()
        {
            for (k, v) in &span_fields.0 {
                fields.0.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        trace().push(Hop {
            at: bulkhead::now_millis(),
            kind,
            fields: fields.0,
        });
    }
}
