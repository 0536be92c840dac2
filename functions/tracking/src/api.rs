//! The tracking service's HTTP API: a customer's own orders, from the view alone.

use crate::view::{BY_CUSTOMER, CUSTOMER_PREFIX, OrderItem, TrackedOrder, order_key, product_name};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bulkhead::http::{Caller, Params, Problem, etag, valid_id, with_fallbacks};
use bulkhead::store::{Query, Table, from_item, get_as};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn list_orders(
    State(api): State<Api>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Response, Problem> {
    caller.require(CUSTOMER)?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::bad_request(
            "invalid-limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let query = Query {
        index: Some(BY_CUSTOMER.into()),
        partition: format!("{CUSTOMER_PREFIX}{}", caller.sub),
        descending: true,
        limit,
        cursor: params.cursor,
        ..Query::default()
    };
    let page = api.table.query(&query).await?;
    let mut orders = Vec::with_capacity(page.items.len());
    for item in page.items {
        orders.push(with_names(api.table.as_ref(), from_item::<OrderItem>(item)?.order).await?);
    }
    Ok(Json(json!({ "orders": orders, "cursor": page.cursor })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetParams {
    min_version: Option<u64>,
    max_wait_ms: Option<u64>,
}

async fn get_order(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    Params(params): Params<GetParams>,
) -> Result<Response, Problem> {
    caller.require(CUSTOMER)?;
    valid_id("order id", &id)?;
    let wait = params
        .max_wait_ms
        .map_or(api.max_wait, Duration::from_millis)
        .min(api.max_wait);
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        let own = get_as::<OrderItem>(api.table.as_ref(), &order_key(&id))
            .await?
            .map(|item| item.order)
            .filter(|order| order.customer_id == caller.sub);
        let current = own.as_ref().map_or(0, |o| o.version);
        match (own, params.min_version) {
            (Some(order), min) if min.is_none_or(|min| order.version >= min) => {
                let version = order.version;
                let order = with_names(api.table.as_ref(), order).await?;
                return Ok((etag(version), Json(order)).into_response());
            }
            (None, None) => return Err(Problem::not_found("the order")),
            (_, Some(min)) if Instant::now() >= deadline => {
                return Err(Problem::new(
                    StatusCode::PRECONDITION_FAILED,
                    "view-behind",
                    format!(
                        "the view has version {current} of this order, not yet {min}; try again"
                    ),
                )
                .with("currentVersion", current)
                .with("minVersion", min));
            }
            _ => {
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// Fills in names that were not known when the order's view was written.
async fn with_names(table: &dyn Table, mut order: TrackedOrder) -> bulkhead::Result<TrackedOrder> {
    for line in order.lines.iter_mut().filter(|l| l.name.is_none()) {
        line.name = product_name(table, &line.sku).await?;
    }
    Ok(order)
}
