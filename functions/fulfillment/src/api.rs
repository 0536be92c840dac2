//! The fulfillment service's HTTP API, for warehouse staff, from the view alone.

use crate::view::{BY_STATUS, STATUS_PREFIX, STATUSES, WorkItem, key};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bulkhead::http::{
    PageQuery, Params, Path, Problem, VersionQuery, etag, read_at_least, valid_id,
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

pub const DEFAULT_MAX_WAIT_MS: u64 = 3_000;
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

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
        "The warehouse work queue, for staff.",
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

fn status_param() -> Object {
    ObjectBuilder::from(status_schema())
        .description(Some(
            "Which orders (default `PLACED`); else 400 `invalid-status`.",
        ))
        .default(Some("PLACED".into()))
        .build()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    #[param(schema_with = status_param)]
    status: Option<String>,
    /// Page size, 1 to 100 (default 20); else 400 `invalid-limit` (or `invalid-query` when
    /// not a number).
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<usize>,
    /// The opaque `cursor` of the previous page of the same list; one that is not answers 400
    /// `invalid-cursor`.
    cursor: Option<String>,
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

/// A page of the work queue.
#[derive(Serialize, ToSchema)]
struct WorkItemPage {
    #[schema(max_items = 100)]
    orders: Vec<WorkItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required)]
    cursor: Option<String>,
}

/// The warehouse's work queue
///
/// Orders with one status, oldest first, with the lines to pick. Unknown query parameters
/// answer 400 `invalid-query`.
#[utoipa::path(get, path = "/fulfillment/orders", operation_id = "listWorkItems",
    params(ListParams),
    responses((status = 200, description = "A page of orders.", body = WorkItemPage)),
    security(("bearerAuth" = ["staff"])))]
async fn list_orders(
    State(api): State<Api>,
    Params(params): Params<ListParams>,
) -> Result<Response, Problem> {
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
    let page = WorkItemPage { orders, cursor };
    Ok(Json(page).into_response())
}

/// One order, from fulfillment's view
///
/// Any order, with the same bounded `minVersion` wait as tracking. Unknown query parameters
/// answer 400 `invalid-query`.
#[utoipa::path(get, path = "/fulfillment/orders/{id}", operation_id = "getWorkItem",
    params(OrderPath, VersionQuery),
    responses(
        (status = 200, description = "The order.", body = WorkItem, headers(("ETag"))),
        (status = 404),
        (status = 412, description = "`view-behind`: with `minVersion`, the view still had an \
            older version (`currentVersion`, 0 when it has not seen the order) at the end of \
            the wait; try again later."),
    ),
    security(("bearerAuth" = ["staff"])))]
async fn get_order(
    State(api): State<Api>,
    Path(OrderPath { id }): Path<OrderPath>,
    Params(wait): Params<VersionQuery>,
) -> Result<Response, Problem> {
    valid_id("order id", &id)?;
    let table = api.table.as_ref();
    let read = || async {
        let found = snapshot::read::<WorkItem>(table, &key(&id)).await?;
        Ok(found.map(|order| (order.clone(), order.version)))
    };
    let order = read_at_least(wait, api.max_wait, "the order", read).await?;
    Ok((etag(order.version), Json(order)).into_response())
}
