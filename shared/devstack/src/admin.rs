//! The devstack's own endpoints, beside the API it emulates: `GET /openapi.json` and
//! `/_devstack/*` (status, faults, queues, dead-letter redrive, raw table writes and the
//! archive), for tests and curiosity. They need no token.

use crate::faults::Faults;
use crate::infra::{ARCHIVE, Infra};
use crate::pollers::Progress;
use crate::template::{QueueSpec, Template};
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulkhead::http::Problem;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A stream poller, as the status sees it.
pub struct StreamConsumer {
    pub name: String,
    pub table: String,
    pub progress: Arc<Progress>,
}

/// What the devstack's own endpoints see of it.
pub struct Admin {
    faults: Arc<Faults>,
    infra: Arc<dyn Infra>,
    queues: BTreeMap<String, QueueSpec>,
    streams: Vec<StreamConsumer>,
    /// Each table's secondary indexes (`<index>pk`, `<index>sk` are their keys).
    tables: BTreeMap<String, Vec<String>>,
    /// The API's OpenAPI document, generated from the route declarations, served
    /// unauthenticated at `GET /openapi.json`.
    openapi: String,
    rebuilder: Arc<crate::rebuild::Rebuilder>,
    routes: crate::explorer::Routes,
    services: Vec<String>,
}

impl Admin {
    pub fn new(
        template: &Template,
        faults: Arc<Faults>,
        infra: Arc<dyn Infra>,
        streams: Vec<StreamConsumer>,
        rebuilder: Arc<crate::rebuild::Rebuilder>,
    ) -> Self {
        Admin {
            rebuilder,
            routes: crate::explorer::Routes::new(template),
            services: {
                let mut services: Vec<String> = template
                    .functions
                    .iter()
                    .map(|f| f.service.clone())
                    .collect();
                services.dedup();
                services
            },
            faults,
            infra,
            queues: template.queues.clone(),
            streams,
            tables: template
                .tables
                .iter()
                .map(|(name, (spec, _))| (name.clone(), spec.indexes.clone()))
                .collect(),
            openapi: crate::openapi::text(),
        }
    }

    /// Whether a request is for the devstack itself rather than for the API.
    pub fn serves(method: &Method, path: &str) -> bool {
        (method == Method::GET && path == "/openapi.json") || path.starts_with("/_devstack/")
    }

    /// Answers a request that [`Admin::serves`].
    pub async fn handle(&self, request: Request) -> Response {
        let path = request.uri().path().to_string();
        match path.strip_prefix("/_devstack/") {
            Some(own) => self
                .endpoint(own, request)
                .await
                .unwrap_or_else(|p| p.into_response()),
            None => {
                let document = self.openapi.clone();
                ([(header::CONTENT_TYPE, "application/json")], document).into_response()
            }
        }
    }

    /// Queue depths, stream lags and what is down: what a test waits on to drain.
    pub async fn status(&self) -> bulkhead::Result<Value> {
        let mut queues = Map::new();
        for q in self.queues.keys() {
            queues.insert(q.clone(), serde_json::to_value(self.infra.depth(q).await?)?);
        }
        let mut streams = Map::new();
        for consumer in &self.streams {
            let lag = match self
                .infra
                .stream_lag(&consumer.name, &consumer.table)
                .await?
            {
                Some(lag) => lag,
                None => i64::from(!consumer.progress.caught_up().await),
            };
            streams.insert(consumer.name.clone(), json!({ "lag": lag }));
        }
        Ok(json!({
            "down": self.faults.down(),
            "faults": self.faults.plan(),
            "injected": self.faults.injected(),
            "queues": queues,
            "streams": streams,
            "metrics": crate::figures::snapshot(),
            "services": self.services,
        }))
    }

    /// Moves every message of a dead-letter queue back to the queue it came from, as SQS's
    /// dead-letter queue redrive does. Answers how many moved.
    async fn redrive(&self, dlq: &str) -> Result<usize, Problem> {
        let (Some(spec), Some(source)) = (
            self.queues.get(dlq),
            self.queues.values().find(|q| {
                q.redrive
                    .as_ref()
                    .is_some_and(|r| r.dead_letter_queue == dlq)
            }),
        ) else {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "no-dead-letter-queue",
                format!("{dlq} is not any queue's dead-letter queue"),
            ));
        };
        let dead = self.infra.queue(spec)?;
        let mut moved = 0;
        loop {
            let messages = dead.receive(10, 30_000).await?;
            if messages.is_empty() {
                return Ok(moved);
            }
            for message in &messages {
                self.infra.send(&source.name, message.body.clone()).await?;
            }
            dead.delete(&messages).await?;
            moved += messages.len();
        }
    }

    /// `/_devstack/{path}`.
    async fn endpoint(&self, path: &str, request: Request) -> Result<Response, Problem> {
        let method = request.method().clone();
        if method != Method::GET {
            json_only(request.headers())?;
        }
        let segments: Vec<&str> = path.split('/').collect();
        let query = request.uri().query().unwrap_or_default().to_string();
        let params: BTreeMap<String, String> = axum::extract::Query::try_from_uri(request.uri())
            .map(|q| q.0)
            .unwrap_or_default();
        let body = crate::gateway::read_body(request.into_body()).await?;
        let ok = |v: Value| Ok(axum::Json(v).into_response());
        match (method, segments.as_slice()) {
            (Method::GET, ["status"]) => ok(self.status().await?),
            (Method::GET, ["ui"]) => Ok(crate::explorer::page()),
            (Method::GET, ["tail"]) => Ok(crate::explorer::tail(params)),
            (Method::GET, ["path"]) => {
                match crate::explorer::path(&*self.infra, &self.routes, params).await {
                    Ok(path) => ok(path),
                    Err(bulkhead::Error::Malformed(e)) => {
                        Err(Problem::bad_request("invalid-query", e))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            (Method::PUT, ["faults"]) | (Method::POST, ["faults"]) => {
                let plan: crate::faults::Plan = bulkhead::http::parse_json(&body)?;
                plan.validate().map_err(|e| {
                    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-fault-plan", e)
                })?;
                self.faults.set(plan);
                ok(self.status().await?)
            }
            (Method::GET, ["archives", ARCHIVE, "events"]) => {
                ok(json!(self.infra.archived().await?))
            }
            (Method::GET, ["archives", ARCHIVE, "page"]) => {
                let query = archive_query(&query)?;
                ok(json!(self.infra.archive_page(&query).await?))
            }
            (Method::GET, ["archives", archive, ..]) if *archive != ARCHIVE => Err(refused(
                crate::replay::Refused::UnknownArchive(archive.to_string()),
            )),
            (Method::GET, ["replays"]) => ok(json!(self.rebuilder.replayer().list())),
            (Method::POST, ["replays"]) => {
                let request: crate::replay::Request = bulkhead::http::parse_json(&body)?;
                let started = self.rebuilder.replayer().start(&request).map_err(refused)?;
                Ok((StatusCode::CREATED, axum::Json(started)).into_response())
            }
            (Method::GET, ["replays", name]) => ok(json!(
                self.rebuilder.replayer().status(name).map_err(refused)?
            )),
            (Method::POST, ["replays", name, "cancel"]) => ok(json!(
                self.rebuilder.replayer().cancel(name).map_err(refused)?
            )),
            (Method::GET, ["rebuilds"]) => ok(json!(self.rebuilder.list())),
            (Method::POST, ["rebuilds"]) => {
                let request: crate::rebuild::Request = bulkhead::http::parse_json(&body)?;
                let started = self.rebuilder.start(&request).map_err(not_rebuilt)?;
                Ok((StatusCode::CREATED, axum::Json(started)).into_response())
            }
            (Method::GET, ["rebuilds", name]) => {
                ok(json!(self.rebuilder.status(name).map_err(not_rebuilt)?))
            }
            (Method::GET, ["tables", table, "generations", n, "items"])
                if self.tables.contains_key(*table) =>
            {
                let n: u32 = n.parse().map_err(|_| {
                    Problem::bad_request("invalid-generation", format!("{n} is not a generation"))
                })?;
                match self.infra.generation_items(table, n).await {
                    Ok(items) => ok(json!(items)),
                    Err(e) => Err(Problem::unprocessable("no-generations", e.to_string())),
                }
            }
            (Method::GET, ["outbox"]) => ok(json!(self.infra.outbox()?)),
            (Method::GET, ["queues", queue, "messages"]) if self.queues.contains_key(*queue) => {
                ok(json!(self.infra.peek(queue).await?))
            }
            (Method::POST, ["queues", queue, "messages"]) if self.queues.contains_key(*queue) => {
                self.infra
                    .send(queue, String::from_utf8_lossy(&body).into_owned())
                    .await?;
                Ok(StatusCode::ACCEPTED.into_response())
            }
            (Method::POST, ["queues", dlq, "redrive"]) => ok(json!({
                "moved": self.redrive(dlq).await?,
            })),
            (Method::PUT, ["tables", table, "items"]) if self.tables.contains_key(*table) => {
                let item: bulkhead::store::Item = bulkhead::http::parse_json(&body)?;
                keyed(&item, &self.tables[*table]).map_err(|e| {
                    Problem::unprocessable("invalid-item", format!("an item of {table}: {e}"))
                })?;
                // Through the table's alias: after a rebuild, its current generation.
                match self.rebuilder.table(table) {
                    Some(current) => {
                        use bulkhead::store::{Condition, Write};
                        current
                            .write(vec![Write::put(item, Condition::Always)])
                            .await?
                    }
                    None => self.infra.put_raw(table, item).await?,
                }
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(Problem::new(
                StatusCode::NOT_FOUND,
                "no-route",
                format!("no devstack endpoint /_devstack/{path}"),
            )),
        }
    }
}

/// A replay refused, as problem+json: nothing changed.
fn refused(e: crate::replay::Refused) -> Problem {
    use crate::replay::Refused::*;
    let (status, code) = match &e {
        UnknownService(_) => (StatusCode::NOT_FOUND, "unknown-service"),
        UnknownRule { .. } => (StatusCode::NOT_FOUND, "unknown-rule"),
        UnknownArchive(_) => (StatusCode::NOT_FOUND, "unknown-archive"),
        UnknownReplay(_) => (StatusCode::NOT_FOUND, "unknown-replay"),
        BadWindow(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-window"),
        AlreadyRunning { .. } => (StatusCode::CONFLICT, "replay-running"),
        Finished(..) => (StatusCode::CONFLICT, "replay-finished"),
    };
    Problem::new(status, code, e.to_string())
}

/// A rebuild refused, as problem+json: nothing changed.
fn not_rebuilt(e: crate::rebuild::Refused) -> Problem {
    use crate::rebuild::Refused::*;
    let (status, code) = match &e {
        Replay(replay) => return refused(replay.clone()),
        UnknownService(_) => (StatusCode::NOT_FOUND, "unknown-service"),
        UnknownRebuild(_) => (StatusCode::NOT_FOUND, "unknown-rebuild"),
        NotAView { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "not-a-view"),
        Unsupported(_) => (StatusCode::UNPROCESSABLE_ENTITY, "rebuild-unsupported"),
        AlreadyRunning { .. } => (StatusCode::CONFLICT, "rebuild-running"),
        SideEffects(_) => (StatusCode::UNPROCESSABLE_ENTITY, "has-side-effects"),
        Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "rebuild-failed"),
    };
    Problem::new(status, code, e.to_string())
}

/// `?source=&type=&aggregateId=&from=&to=&limit=&cursor=` of the archive's page endpoint.
fn archive_query(query: &str) -> Result<bulkhead::embedded::ArchiveQuery, Problem> {
    let mut q = bulkhead::embedded::ArchiveQuery {
        limit: 100,
        ..Default::default()
    };
    let bad = |d: String| Problem::bad_request("invalid-query", d);
    let millis = |name: &str, v: &str| {
        crate::replay::parse_time(name, v)
            .map(|t| t.timestamp_millis())
            .map_err(|e| bad(e.to_string()))
    };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.into_owned();
        match name.as_ref() {
            "source" => q.source = Some(value),
            "type" => q.detail_type = Some(value),
            "aggregateId" => q.aggregate_id = Some(value),
            "from" => q.from_millis = Some(millis("from", &value)?),
            "to" => q.to_millis = Some(millis("to", &value)?),
            "cursor" => q.cursor = Some(value),
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=bulkhead::embedded::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "limit {value:?} is not within 1–{}",
                            bulkhead::embedded::MAX_PAGE
                        ))
                    })?
            }
            other => return Err(bad(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(q)
}

/// Admin writes take JSON only: a request with a body must say `application/json`, and no
/// write may name another type. A web page can send `text/plain` or a form to localhost
/// without asking, but not `application/json` (that needs a CORS preflight, which the
/// devstack never grants).
fn json_only(headers: &axum::http::HeaderMap) -> Result<(), Problem> {
    let content_type = headers.get(header::CONTENT_TYPE);
    let is_json = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    let has_body = headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|n| n.as_bytes() != b"0")
        || headers.contains_key(header::TRANSFER_ENCODING);
    if is_json || (content_type.is_none() && !has_body) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "devstack writes take application/json",
        ))
    }
}

/// Checks an item against its table's key schema, as DynamoDB does: `pk` and `sk` are
/// non-empty strings, and an index's key attributes, when present, are strings too.
fn keyed(item: &bulkhead::store::Item, indexes: &[String]) -> Result<(), String> {
    use bulkhead::store::AttributeValue;
    for name in ["pk", "sk"] {
        match item.get(name) {
            Some(AttributeValue::S(s)) if !s.is_empty() => {}
            _ => return Err(format!("{name} must be a non-empty string")),
        }
    }
    for index in indexes {
        for name in [format!("{index}pk"), format!("{index}sk")] {
            match item.get(&name) {
                None | Some(AttributeValue::S(_)) => {}
                Some(_) => return Err(format!("{name}, a key of index {index}, must be a string")),
            }
        }
    }
    Ok(())
}
