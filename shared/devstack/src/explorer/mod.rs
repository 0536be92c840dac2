//! The event explorer at `/_devstack/ui`: one page, no build step, served by the devstack
//! and fed by its own endpoints, so that it keeps working while services are down.
//!
//! - `GET /_devstack/tail?source=&type=&aggregateId=&correlationId=`: server-sent events,
//!   one per hop as it happens ([`trace`]).
//! - `GET /_devstack/path?correlationId=|aggregateId=|eventId=`: one change end to end:
//!   the API request, each event put on the bus with the rules it matched and the queues it
//!   reached, and each listener's outcome, all with times.
//! - the page reads the rest where it already is: `/_devstack/status` (queues, DLQs,
//!   streams, faults, figures), queue peeks and redrive, the archive, replays.

pub mod trace;

use crate::template::Template;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use quamina::Quamina;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use trace::Hop;

const PAGE: &str = include_str!("page.html");

/// Logs as text on the terminal (`RUST_LOG`, default `info`), and the explorer's hops from
/// the functions' lines whatever `RUST_LOG` says.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, filter};
    let text = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_filter(EnvFilter::new(text)),
        )
        .with(
            trace::Layer
                .with_filter(filter::Targets::new().with_target("bulkhead", tracing::Level::INFO)),
        )
        .try_init();
}

pub fn page() -> Response {
    Html(PAGE).into_response()
}

/// What a query asks of hops: every given field must match.
fn matches(hop: &Hop, query: &BTreeMap<String, String>) -> bool {
    query.iter().all(|(key, want)| match key.as_str() {
        "aggregateId" => hop.field("aggregate").rsplit('#').next() == Some(want.as_str()),
        "type" => hop.field("eventType") == want,
        field => hop.field(field) == want,
    })
}

/// The live tail: each new hop that the query takes.
pub fn tail(mut query: BTreeMap<String, String>) -> Response {
    query.retain(|_, v| !v.is_empty());
    let receiver = trace::trace().subscribe();
    let stream = futures::stream::unfold((receiver, query), |(mut receiver, query)| async move {
        loop {
            match receiver.recv().await {
                Ok(hop) if matches(&hop, &query) => {
                    let event = Event::default()
                        .event("hop")
                        .json_data(&hop)
                        .unwrap_or_default();
                    return Some((Ok::<_, std::convert::Infallible>(event), (receiver, query)));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Which rules take an event, and the queues they send it to, as the template declares.
pub struct Routes {
    matcher: Quamina<String>,
    targets: BTreeMap<String, Vec<String>>,
    consumers: BTreeMap<String, Vec<String>>,
}

impl Routes {
    pub fn new(template: &Template) -> Self {
        let mut matcher = Quamina::new();
        let mut targets = BTreeMap::new();
        for rule in &template.rules {
            if matcher
                .add_pattern(rule.name.clone(), &rule.pattern.to_string())
                .is_ok()
            {
                targets.insert(rule.name.clone(), rule.targets.clone());
            }
        }
        let mut consumers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for function in &template.functions {
            for mapping in &function.queues {
                consumers
                    .entry(mapping.queue.clone())
                    .or_default()
                    .push(function.name.clone());
            }
        }
        Routes {
            matcher,
            targets,
            consumers,
        }
    }

    /// `[{rule, queues: [{queue, functions}]}]` for an archived event.
    fn of(&self, event: &Value) -> Value {
        let matched = self
            .matcher
            .matches_for_event(event.to_string().as_bytes())
            .unwrap_or_default();
        let matched: BTreeSet<&String> = matched.iter().collect();
        json!(
            matched
                .into_iter()
                .map(|rule| json!({
                    "rule": rule,
                    "queues": self.targets.get(rule).into_iter().flatten().map(|queue| json!({
                        "queue": queue,
                        "functions": self.consumers.get(queue).cloned().unwrap_or_default(),
                    })).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>()
        )
    }
}

/// One change end to end: the hops that a correlation id, aggregate id or event id names,
/// and each event of them as the bus archived it, with where it was routed.
pub async fn path(
    infra: &dyn crate::infra::Infra,
    routes: &Routes,
    query: BTreeMap<String, String>,
) -> bulkhead::Result<Value> {
    let query: BTreeMap<String, String> = query
        .into_iter()
        .filter(|(k, v)| {
            ["correlationId", "aggregateId", "eventId"].contains(&k.as_str()) && !v.is_empty()
        })
        .collect();
    if query.is_empty() {
        return Err(bulkhead::Error::Malformed(
            "name a correlationId, aggregateId or eventId".into(),
        ));
    }
    let hops = trace::trace().find(|hop| matches(hop, &query));
    let mut events = vec![];
    let ids: BTreeSet<&str> = hops
        .iter()
        .map(|h| h.field("eventId"))
        .filter(|id| !id.is_empty())
        .collect();
    let aggregates: BTreeSet<&str> = hops
        .iter()
        .filter_map(|h| h.field("aggregate").rsplit('#').next())
        .filter(|id| !id.is_empty())
        .collect();
    for aggregate in aggregates {
        let page = infra
            .archive_page(&bulkhead::embedded::ArchiveQuery {
                aggregate_id: Some(aggregate.to_string()),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        for archived in page.events {
            let id = archived.event["detail"]["id"].as_str().unwrap_or_default();
            if ids.contains(id) && archived.event.get("replay-name").is_none() {
                events.push(json!({
                    "archivedAt": archived.time_millis,
                    "event": archived.event,
                    "routes": routes.of(&archived.event),
                }));
            }
        }
    }
    Ok(json!({"hops": hops, "events": events}))
}
