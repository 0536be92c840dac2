//! The tracking service's HTTP API: a customer's own orders, from the view alone.

use crate::view::{BY_CUSTOMER, CUSTOMER_PREFIX, TrackedOrder, order_key, product_names};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bulkhead::http::{
    Caller, PageQuery, Params, Path, Problem, VersionQuery, etag, read_at_least, valid_id,
};
use bulkhead::listener::snapshot;
use bulkhead::openapi::Fragment;
use bulkhead::store::{Query, Table};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The default and the ceiling of the `minVersion` wait, in milliseconds.
pub const DEFAULT_MAX_WAIT_MS: u64 = 3_000;
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// The statuses of the public order state, which the view keeps as it comes.
const STATUSES: [&str; 4] = ["PLACED", "SHIPPED", "DELIVERED", "CANCELLED"];

#[derive(Clone)]
struct Api {
    table: Arc<dyn Table>,
    max_wait: Duration,
}

/// Every route, declared once: the router and the document both come from here.
fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::default()
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
}

pub fn router(table: Arc<dyn Table>, max_wait: Duration) -> Router {
    bulkhead::openapi::router(routes(), Api { table, max_wait })
}

/// The service's part of the OpenAPI document.
pub fn openapi() -> Fragment {
    Fragment::new(
        crate::SERVICE,
        "Each customer's order history, from tracking's own view.",
        routes(),
    )
}

/// `PLACED → SHIPPED → DELIVERED`, or `PLACED → CANCELLED`.
pub(crate) fn status_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(STATUSES))
        .build()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct OrderPath {
    /// The order's id: 1 to 64 of `A-Z a-z 0-9 - _`; anything else answers 400
    /// `invalid-order-id`.
    #[param(
        pattern = "^[A-Za-z0-9_-]{1,64}$",
        example = "o-0195f0c2a1b27c3e8f4d5a6b7c8d9e0f"
    )]
    id: String,
}

/// A page of the caller's orders.
#[derive(Serialize, ToSchema)]
struct TrackedOrderPage {
    #[schema(max_items = 100)]
    orders: Vec<TrackedOrder>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required)]
    cursor: Option<String>,
}

/// The caller's order history
///
/// The caller's own orders, newest first, from tracking's own view. Unknown query
/// parameters answer 400 `invalid-query`.
#[utoipa::path(get, path = "/tracking/orders", operation_id = "listTrackedOrders",
    params(PageQuery),
    responses((status = 200, description = "A page of orders.", body = TrackedOrderPage)),
    security(("bearerAuth" = ["customer"])))]
async fn list_orders(
    State(api): State<Api>,
    caller: Caller,
    Params(page): Params<PageQuery>,
) -> Result<Response, Problem> {
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
    let page = TrackedOrderPage { orders, cursor };
    Ok(Json(page).into_response())
}

/// One of the caller's orders, from tracking's view
///
/// Another customer's order is never shown: without `minVersion` it is 404, with it it
/// looks like an order the view has not seen yet (412). Product names missing when the view
/// was written are filled in from tracking's copy of the catalog. Unknown query parameters
/// answer 400 `invalid-query`.
#[utoipa::path(get, path = "/tracking/orders/{id}", operation_id = "getTrackedOrder",
    params(OrderPath, VersionQuery),
    responses(
        (status = 200, description = "The order.", body = TrackedOrder, headers(("ETag"))),
        (status = 404),
        (status = 412, description = "`view-behind`: with `minVersion`, the view still had an \
            older version (`currentVersion`, 0 when it has not seen the order) at the end of \
            the wait; try again later."),
    ),
    security(("bearerAuth" = ["customer"])))]
async fn get_order(
    State(api): State<Api>,
    caller: Caller,
    Path(OrderPath { id }): Path<OrderPath>,
    Params(wait): Params<VersionQuery>,
) -> Result<Response, Problem> {
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
    let unnamed = || order.lines.iter().filter(|l| l.name.is_none());
    if unnamed().next().is_none() {
        return Ok(order);
    }
    let names = product_names(table, unnamed().map(|l| l.sku.as_str())).await?;
    for (line, name) in order
        .lines
        .iter_mut()
        .filter(|l| l.name.is_none())
        .zip(names)
    {
        line.name = name;
    }
    Ok(order)
}
