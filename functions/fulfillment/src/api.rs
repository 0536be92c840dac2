//! The fulfillment service's HTTP API, for warehouse staff, from the view alone.

use crate::view::{BY_STATUS, STATUS_PREFIX, STATUSES, WorkItem, key};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bulkhead::http::{
    Caller, PageQuery, Params, Path, Problem, VersionQuery, etag, read_at_least, valid_id,
    with_fallbacks,
};
use bulkhead::listener::snapshot;
use bulkhead::store::{Query, Table};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const STAFF: &str = "staff";
pub const DEFAULT_MAX_WAIT_MS: u64 = 3_000;
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

#[derive(Clone)]
struct Api {
    table: Arc<dyn Table>,
    max_wait: Duration,
}

pub fn router(table: Arc<dyn Table>, max_wait: Duration) -> Router {
    let routes = Router::new()
        .route("/fulfillment/orders", get(list_orders))
        .route("/fulfillment/orders/{id}", get(get_order))
        .with_state(Api { table, max_wait });
    with_fallbacks(routes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Orders with one status, oldest first: the work queue. The status defaults to `PLACED`.
async fn list_orders(
    State(api): State<Api>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Response, Problem> {
    caller.require(STAFF)?;
    let status = params.status.unwrap_or_else(|| "PLACED".into());
    if !STATUSES.contains(&status.as_str()) {
        return Err(Problem::bad_request(
            "invalid-status",
            format!("status must be one of {}", STATUSES.join(", ")),
        ));
    }
    let page = PageQuery {
        limit: params.limit,
        cursor: params.cursor,
    };
    let query = Query {
        index: Some(BY_STATUS.into()),
        partition: format!("{STATUS_PREFIX}{status}"),
        limit: page.limit(DEFAULT_PAGE, MAX_PAGE)?,
        cursor: page.cursor,
        ..Query::default()
    };
    let (orders, cursor) = snapshot::list::<WorkItem>(api.table.as_ref(), &query).await?;
    Ok(Json(json!({ "orders": orders, "cursor": cursor })).into_response())
}

async fn get_order(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    Params(wait): Params<VersionQuery>,
) -> Result<Response, Problem> {
    caller.require(STAFF)?;
    valid_id("order id", &id)?;
    let table = api.table.as_ref();
    let read = || async {
        let found = snapshot::read::<WorkItem>(table, &key(&id)).await?;
        Ok(found.map(|order| (order.clone(), order.version)))
    };
    let order = read_at_least(wait, api.max_wait, "the order", read).await?;
    Ok((etag(order.version), Json(order)).into_response())
}
