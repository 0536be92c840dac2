//! The tracking service's HTTP API: a customer's own orders, from the view alone.

use crate::view::{BY_CUSTOMER, CUSTOMER_PREFIX, TrackedOrder, order_key, product_name};
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
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const CUSTOMER: &str = "customer";
/// The default and the ceiling of the `minVersion` wait, in milliseconds.
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
        .route("/tracking/orders", get(list_orders))
        .route("/tracking/orders/{id}", get(get_order))
        .with_state(Api { table, max_wait });
    with_fallbacks(routes)
}

async fn list_orders(
    State(api): State<Api>,
    caller: Caller,
    Params(page): Params<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(CUSTOMER)?;
    let query = Query {
        index: Some(BY_CUSTOMER.into()),
        partition: format!("{CUSTOMER_PREFIX}{}", caller.sub),
        descending: true,
        limit: page.limit(DEFAULT_PAGE, MAX_PAGE)?,
        cursor: page.cursor,
        ..Query::default()
    };
    let (found, cursor) = snapshot::list::<TrackedOrder>(api.table.as_ref(), &query).await?;
    let mut orders = Vec::with_capacity(found.len());
    for order in found {
        orders.push(with_names(api.table.as_ref(), order).await?);
    }
    Ok(Json(json!({ "orders": orders, "cursor": cursor })).into_response())
}

async fn get_order(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    Params(wait): Params<VersionQuery>,
) -> Result<Response, Problem> {
    caller.require(CUSTOMER)?;
    valid_id("order id", &id)?;
    let table = api.table.as_ref();
    let read = || async {
        let own = snapshot::read::<TrackedOrder>(table, &order_key(&id)).await?;
        Ok(own
            .filter(|order| order.customer_id == caller.sub)
            .map(|order| {
                let version = order.version;
                (order, version)
            }))
    };
    let order = read_at_least(wait, api.max_wait, "the order", read).await?;
    let version = order.version;
    Ok((etag(version), Json(with_names(table, order).await?)).into_response())
}

/// Fills in names that were not known when the order's view was written.
async fn with_names(table: &dyn Table, mut order: TrackedOrder) -> bulkhead::Result<TrackedOrder> {
    for line in order.lines.iter_mut().filter(|l| l.name.is_none()) {
        line.name = product_name(table, &line.sku).await?;
    }
    Ok(order)
}
