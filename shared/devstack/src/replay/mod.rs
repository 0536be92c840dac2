//! Replay: archived events in a time window sent again to one service's rules, and to no
//! other, as EventBridge's `StartReplay` with `Destination.FilterArns` does.
//!
//! A service's rules are read off the template: the rules whose targets are queues that the
//! service's functions consume. Each replayed event is the archived one with a new `id` and
//! a `replay-name`, as EventBridge marks a replay, and goes to the rule's target queues, by
//! the backend's own `send` (SQLite on the embedded backend, SQS on the AWS-API one).
//! Events go in order of event time (EventBridge: one-minute slices, no order within one);
//! a replay can be watched
//! (replayed / in the window, and its state) and cancelled. Replay goes through the bus:
//! while the bus is down (`POST /_devstack/faults {"down": ["bus"]}`) it waits, RUNNING.

pub mod cli;
#[cfg(feature = "aws")]
pub mod eventbridge;

use crate::faults::Faults;
use crate::infra::Infra;
use crate::template::{RuleSpec, Template};
use bulkhead::embedded::ArchiveQuery;
use chrono::{DateTime, SecondsFormat, Utc};
use quamina::Quamina;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why a replay cannot start, or cannot be found or cancelled. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no service {0} in the template listens to the bus")]
    UnknownService(String),
    #[error("{rule} is not a rule of {service}; its rules: {known:?}")]
    UnknownRule {
        service: String,
        rule: String,
        known: Vec<String>,
    },
    #[error("no archive {0} in the template")]
    UnknownArchive(String),
    #[error("the window {0}")]
    BadWindow(String),
    #[error("replay {running} of {service} is still {state}; cancel it or wait")]
    AlreadyRunning {
        service: String,
        running: String,
        state: State,
    },
    #[error("no replay {0}")]
    UnknownReplay(String),
    #[error("replay {0} is already {1}")]
    Finished(String, State),
}

/// A replay's state, named as EventBridge names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Starting,
    Running,
    Cancelling,
    Cancelled,
    Completed,
    Failed,
}

impl State {
    pub fn is_over(self) -> bool {
        matches!(self, State::Cancelled | State::Completed | State::Failed)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(text.as_str().unwrap_or_default())
    }
}

/// What to replay.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    pub service: String,
    /// RFC 3339; the window is `[from, to)` of event time.
    pub from: String,
    pub to: String,
    /// Only this rule of the service; default: all of its rules.
    #[serde(default)]
    pub rule: Option<String>,
    /// Default: the template's archive.
    #[serde(default)]
    pub archive: Option<String>,
}

/// A replay as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub name: String,
    pub service: String,
    pub archive: String,
    pub rules: Vec<String>,
    pub from: String,
    pub to: String,
    pub state: State,
    /// Events sent again so far.
    pub replayed: u64,
    /// Events of the window that the service's rules match.
    pub in_window: u64,
    /// The event time replay has reached.
    #[serde(default)]
    pub last_replayed_time: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

struct Replay {
    status: Mutex<Status>,
    cancel: AtomicBool,
    replayed: AtomicU64,
}

impl Replay {
    fn status(&self) -> Status {
        let mut status = lock(&self.status).clone();
        status.replayed = self.replayed.load(Ordering::SeqCst);
        status
    }

    fn set(&self, state: State, error: Option<String>) {
        let mut status = lock(&self.status);
        if !status.state.is_over() {
            status.state = state;
            status.error = error;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The rules each service's functions are fed by, from the template.
pub fn service_rules(template: &Template) -> BTreeMap<String, Vec<RuleSpec>> {
    let mut services: BTreeMap<String, Vec<RuleSpec>> = BTreeMap::new();
    for rule in &template.rules {
        for function in &template.functions {
            let fed = function
                .queues
                .iter()
                .any(|q| rule.targets.contains(&q.queue));
            if fed {
                let rules = services.entry(function.service.clone()).or_default();
                if !rules.iter().any(|r| r.name == rule.name) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    services
}

/// Parses an RFC 3339 time.
pub fn parse_time(what: &str, text: &str) -> Result<DateTime<Utc>, Refused> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Refused::BadWindow(format!("{what} {text:?} is not an RFC 3339 time: {e}")))
}

/// Checks a window as EventBridge does, and a little more: it must not be reversed or
/// empty, and it must not reach into the future.
pub fn window(
    from: &str,
    to: &str,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Refused> {
    let (from, to) = (parse_time("from", from)?, parse_time("to", to)?);
    if from >= to {
        return Err(Refused::BadWindow(format!(
            "is reversed or empty: from {from} is not before to {to}"
        )));
    }
    if to > now {
        return Err(Refused::BadWindow(format!(
            "reaches into the future: to {to} is after now, {now}"
        )));
    }
    Ok((from, to))
}

/// The devstack's replays.
pub struct Replayer {
    infra: Arc<dyn Infra>,
    faults: Arc<Faults>,
    services: BTreeMap<String, Vec<RuleSpec>>,
    archives: Vec<String>,
    replays: Mutex<BTreeMap<String, Arc<Replay>>>,
}

impl Replayer {
    pub fn new(template: &Template, infra: Arc<dyn Infra>, faults: Arc<Faults>) -> Self {
        Replayer {
            infra,
            faults,
            services: service_rules(template),
            archives: template.archives.iter().map(|(a, _)| a.clone()).collect(),
            replays: Mutex::default(),
        }
    }

    /// Checks a request and starts the replay; nothing changes if it is refused.
    pub fn start(&self, request: &Request) -> Result<Status, Refused> {
        self.start_into(request, BTreeMap::new())
    }

    /// As [`Replayer::start`], but events meant for a queue named in `redirect` go to the
    /// queue it maps to instead: a view's new generation is fed this way (`rebuild`).
    pub fn start_into(
        &self,
        request: &Request,
        redirect: BTreeMap<String, String>,
    ) -> Result<Status, Refused> {
        let rules = self
            .services
            .get(&request.service)
            .ok_or_else(|| Refused::UnknownService(request.service.clone()))?;
        let rules: Vec<RuleSpec> = match &request.rule {
            None => rules.clone(),
            Some(rule) => {
                vec![
                    rules
                        .iter()
                        .find(|r| &r.name == rule)
                        .cloned()
                        .ok_or_else(|| Refused::UnknownRule {
                            service: request.service.clone(),
                            rule: rule.clone(),
                            known: rules.iter().map(|r| r.name.clone()).collect(),
                        })?,
                ]
            }
        };
        let archive = request
            .archive
            .clone()
            .unwrap_or_else(|| crate::infra::ARCHIVE.into());
        if !self.archives.contains(&archive) || archive != crate::infra::ARCHIVE {
            return Err(Refused::UnknownArchive(archive));
        }
        let (from, to) = window(&request.from, &request.to, Utc::now())?;
        let mut replays = lock(&self.replays);
        if let Some((name, replay)) = replays.iter().find(|(_, r)| {
            let s = lock(&r.status);
            s.service == request.service && !s.state.is_over()
        }) {
            return Err(Refused::AlreadyRunning {
                service: request.service.clone(),
                running: name.clone(),
                state: lock(&replay.status).state,
            });
        }
        let name = format!(
            "{}-{}",
            request.service,
            uuid::Uuid::now_v7()
                .simple()
                .to_string()
                .get(..16)
                .unwrap_or("0")
        );
        let replay = Arc::new(Replay {
            status: Mutex::new(Status {
                name: name.clone(),
                service: request.service.clone(),
                archive,
                rules: rules.iter().map(|r| r.name.clone()).collect(),
                from: from.to_rfc3339_opts(SecondsFormat::Millis, true),
                to: to.to_rfc3339_opts(SecondsFormat::Millis, true),
                state: State::Starting,
                replayed: 0,
                in_window: 0,
                last_replayed_time: None,
                error: None,
            }),
            cancel: AtomicBool::new(false),
            replayed: AtomicU64::new(0),
        });
        replays.insert(name, replay.clone());
        let status = replay.status();
        let (infra, faults) = (self.infra.clone(), self.faults.clone());
        let window = (from.timestamp_millis(), to.timestamp_millis());
        tokio::spawn(async move {
            let outcome = run(infra, &faults, &replay, &rules, &redirect, window).await;
            match outcome {
                Ok(()) if replay.cancel.load(Ordering::SeqCst) => {
                    replay.set(State::Cancelled, None)
                }
                Ok(()) => replay.set(State::Completed, None),
                Err(e) => {
                    tracing::error!(error = %e, "replay failed");
                    replay.set(State::Failed, Some(e.to_string()))
                }
            }
        });
        Ok(status)
    }

    pub fn status(&self, name: &str) -> Result<Status, Refused> {
        lock(&self.replays)
            .get(name)
            .map(|r| r.status())
            .ok_or_else(|| Refused::UnknownReplay(name.into()))
    }

    pub fn list(&self) -> Vec<Status> {
        lock(&self.replays).values().map(|r| r.status()).collect()
    }

    /// Asks a replay to stop after the event in hand.
    pub fn cancel(&self, name: &str) -> Result<Status, Refused> {
        let replay = lock(&self.replays)
            .get(name)
            .cloned()
            .ok_or_else(|| Refused::UnknownReplay(name.into()))?;
        let state = lock(&replay.status).state;
        if state.is_over() {
            return Err(Refused::Finished(name.into(), state));
        }
        replay.cancel.store(true, Ordering::SeqCst);
        replay.set(State::Cancelling, None);
        Ok(replay.status())
    }
}

/// One page of the archive per request.
const PAGE: usize = 500;

/// Sends the window's events again to the rules' queues, in order of event time.
async fn run(
    infra: Arc<dyn Infra>,
    faults: &Faults,
    replay: &Replay,
    rules: &[RuleSpec],
    redirect: &BTreeMap<String, String>,
    (from, to): (i64, i64),
) -> bulkhead::Result<()> {
    let mut matcher = Quamina::new();
    for rule in rules {
        matcher
            .add_pattern(rule.name.clone(), &rule.pattern.to_string())
            .map_err(|e| bulkhead::Error::Config(format!("rule {}: {e}", rule.name)))?;
    }
    let targets = |event: &serde_json::Value| -> bulkhead::Result<Vec<&RuleSpec>> {
        let matched = matcher
            .matches_for_event(event.to_string().as_bytes())
            .map_err(|e| bulkhead::Error::Bus(e.to_string()))?;
        Ok(rules.iter().filter(|r| matched.contains(&r.name)).collect())
    };
    // How many events of the window the rules take.
    let mut in_window = 0;
    for_each(&*infra, from, to, |event| {
        in_window += u64::from(!targets(event)?.is_empty());
        Ok(true)
    })
    .await?;
    {
        let mut status = lock(&replay.status);
        status.in_window = in_window;
        status.state = State::Running;
    }
    // Then the events, page by page in order of event time: EventBridge goes in
    // one-minute slices and keeps no order within them, the devstack keeps it.
    let mut query = ArchiveQuery {
        from_millis: Some(from),
        to_millis: Some(to),
        limit: PAGE,
        ..ArchiveQuery::default()
    };
    let name = lock(&replay.status).name.clone();
    loop {
        let page = infra.archive_page(&query).await?;
        for archived in &page.events {
            while faults.is_down("bus") && !replay.cancel.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            if replay.cancel.load(Ordering::SeqCst) {
                return Ok(());
            }
            let event = &archived.event;
            let rules = targets(event)?;
            if rules.is_empty() {
                continue;
            }
            let mut again = event.clone();
            again["id"] = uuid::Uuid::new_v4().to_string().into();
            again["replay-name"] = name.clone().into();
            let body = again.to_string();
            for rule in rules {
                for queue in &rule.targets {
                    let queue = redirect.get(queue).unwrap_or(queue);
                    infra.send(queue, body.clone()).await?;
                }
            }
            replay.replayed.fetch_add(1, Ordering::SeqCst);
            lock(&replay.status).last_replayed_time = event["time"].as_str().map(String::from);
        }
        match page.cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(()),
        }
    }
}

/// Calls `f` on every archived event of `[from, to)`, in order of event time, until it
/// answers `false`.
async fn for_each(
    infra: &dyn Infra,
    from: i64,
    to: i64,
    mut f: impl FnMut(&serde_json::Value) -> bulkhead::Result<bool>,
) -> bulkhead::Result<()> {
    let mut query = ArchiveQuery {
        from_millis: Some(from),
        to_millis: Some(to),
        limit: PAGE,
        ..ArchiveQuery::default()
    };
    loop {
        let page = infra.archive_page(&query).await?;
        for archived in &page.events {
            if !f(&archived.event)? {
                return Ok(());
            }
        }
        match page.cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_must_be_in_order_and_in_the_past() {
        let now = parse_time("now", "2026-12-01T12:00:00Z").unwrap();
        assert!(window("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", now).is_ok());
        for (from, to) in [
            ("2026-12-01T11:00:00Z", "2026-12-01T10:00:00Z"),
            ("2026-12-01T11:00:00Z", "2026-12-01T11:00:00Z"),
            ("2026-12-01T11:00:00Z", "2026-12-01T13:00:00Z"),
            ("yesterday", "2026-12-01T11:00:00Z"),
        ] {
            assert!(
                matches!(window(from, to, now), Err(Refused::BadWindow(_))),
                "{from} {to}"
            );
        }
    }

    #[test]
    fn a_service_s_rules_are_those_that_feed_its_queues() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let template = Template::load(&path).unwrap();
        let services = service_rules(&template);
        let names =
            |s: &str| -> Vec<String> { services[s].iter().map(|r| r.name.clone()).collect() };
        assert_eq!(names("notifications"), ["NotificationsRule"]);
        assert!(!services.contains_key("catalog"));
        for (service, rules) in &services {
            for rule in rules {
                assert!(
                    rule.name.to_lowercase().starts_with(service.as_str()),
                    "{service}: {}",
                    rule.name
                );
            }
        }
    }
}
