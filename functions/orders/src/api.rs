//! The orders service's HTTP API.

use crate::acl::ORDER_PREFIX;
use crate::catalog_cache;
use crate::domain::{self, MAX_LINES, Offer, Order, OrderError};
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bulkhead::command::{self, Accepted, Reply, Versioned};
use bulkhead::http::{Caller, JsonBody, Path, Problem, RequestMeta, Role, etag, valid_id};
use bulkhead::openapi::{CommandHeaders, Fragment};
use bulkhead::store::{Key, Table, get_as};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Db = Arc<dyn Table>;

/// Every route, declared once: the router and the document both come from here.
fn routes() -> OpenApiRouter<Db> {
    OpenApiRouter::default()
        .routes(routes!(place_order))
        .routes(routes!(get_order))
        .routes(routes!(add_line))
        .routes(routes!(remove_line))
        .routes(routes!(cancel))
        .routes(routes!(ship))
        .routes(routes!(deliver))
}

pub fn router(table: Db) -> Router {
    bulkhead::openapi::router(routes(), table)
}

/// The service's part of the OpenAPI document.
pub fn openapi() -> Fragment {
    Fragment::new(crate::SERVICE, "Orders, for customers and staff.", routes())
}

impl From<OrderError> for Problem {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => Problem::not_found("the order"),
            OrderError::LineNotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, e.code(), e.to_string())
            }
            e => Problem::unprocessable(e.code(), e.to_string()),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct OrderPath {
    /// The order's id (as answered by `POST /orders`, `o-` and 32 hex digits): 1 to 64 of
    /// `A-Z a-z 0-9 - _`; anything else answers 400 `invalid-order-id`.
    #[param(
        pattern = "^[A-Za-z0-9_-]{1,64}$",
        example = "o-0195f0c2a1b27c3e8f4d5a6b7c8d9e0f"
    )]
    id: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct LinePath {
    /// The order's id: 1 to 64 of `A-Z a-z 0-9 - _`; anything else answers 400
    /// `invalid-order-id`.
    #[param(
        pattern = "^[A-Za-z0-9_-]{1,64}$",
        example = "o-0195f0c2a1b27c3e8f4d5a6b7c8d9e0f"
    )]
    id: String,
    /// The sku of a line of the order: 1 to 64 of `A-Z a-z 0-9 - _`, else 400
    /// `invalid-sku`; a sku the order has no line for answers 404 `line-not-found`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$", example = "A1")]
    sku: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LineRequest {
    /// A sku the orders service has seen in catalog events, else 422 `unknown-sku`; a
    /// discontinued one answers 422 `product-discontinued`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    sku: String,
    /// 1 to 10,000, else 422 `invalid-quantity`; lines with the same sku add up, and so must
    /// stay within 10,000.
    #[schema(minimum = 1, maximum = 10_000)]
    quantity: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlaceOrder {
    /// At least one line (else 422 `no-lines`) and at most 50 (else 422 `too-many-lines`).
    #[schema(min_items = 1, max_items = 50)]
    lines: Vec<LineRequest>,
}

/// A command's answer.
#[derive(Serialize, ToSchema)]
struct OrderAccepted {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    id: String,
    version: u64,
}

/// An order, at the version read.
#[derive(Serialize, ToSchema)]
struct VersionedOrder {
    #[serde(flatten)]
    order: Order,
    version: u64,
}

fn key(id: &str) -> Key {
    Key::new(format!("{ORDER_PREFIX}{id}"), "#")
}

fn answer(id: &str) -> impl Fn(Accepted) -> (u16, serde_json::Value) + '_ {
    move |accepted| {
        let status = if accepted.created { 201 } else { 200 };
        let body = OrderAccepted {
            id: id.to_string(),
            version: accepted.version,
        };
        (status, json!(body))
    }
}

/// The order, if this caller may see it: its customer, or staff. Anyone else gets 404.
fn visible<'a>(current: Option<&'a Order>, caller: &Caller) -> Result<&'a Order, Problem> {
    match current {
        Some(order) if order.customer_id == caller.sub || caller.has_role(Role::Staff) => Ok(order),
        _ => Err(OrderError::NotFound.into()),
    }
}

/// The order, if it is this customer's own.
fn owned<'a>(current: Option<&'a Order>, caller: &Caller) -> Result<&'a Order, Problem> {
    match current {
        Some(order) if order.customer_id == caller.sub => Ok(order),
        _ => Err(OrderError::NotFound.into()),
    }
}

async fn offers(
    table: &dyn Table,
    skus: impl Iterator<Item = &str>,
) -> Result<HashMap<String, Offer>, Problem> {
    let mut skus: Vec<&str> = skus.filter(|sku| valid_id("sku", sku).is_ok()).collect();
    skus.sort_unstable();
    skus.dedup();
    Ok(catalog_cache::offers(table, &skus).await?)
}

/// Place an order
///
/// The customer is the token's `sub`. Lines are priced from the orders service's own cache
/// of catalog events; lines with the same sku merge. The new order's version is 1, so
/// `If-Match` other than `0` or `*` answers 412.
#[utoipa::path(post, path = "/orders", operation_id = "placeOrder",
    params(CommandHeaders),
    request_body = PlaceOrder,
    responses(
        (status = 201, description = "Placed.", body = OrderAccepted, links(
            ("GetOrder" = (operation_id = "getOrder", parameters(("id" = "$response.body#/id")))),
            ("AddLine" = (operation_id = "addLine", parameters(("id" = "$response.body#/id")))),
            ("CancelOrder" = (operation_id = "cancelOrder", parameters(("id" = "$response.body#/id")))),
            ("ShipOrder" = (operation_id = "shipOrder", parameters(("id" = "$response.body#/id")))),
            ("DeliverOrder" = (operation_id = "deliverOrder", parameters(("id" = "$response.body#/id")))),
            ("GetTrackedOrder" = (operation_id = "getTrackedOrder", parameters(
                ("id" = "$response.body#/id"), ("minVersion" = "$response.body#/version")))),
            ("GetWorkItem" = (operation_id = "getWorkItem", parameters(
                ("id" = "$response.body#/id"), ("minVersion" = "$response.body#/version")))),
        )),
        (status = 412), (status = 415),
        (status = 422, description = "A rule or the body's shape: `invalid-body`, `no-lines`, \
            `too-many-lines`, `invalid-quantity`, `unknown-sku`, `product-discontinued`, \
            `order-total-too-large`, `idempotency-key-reused`."),
    ),
    security(("bearerAuth" = ["customer"])))]
async fn place_order(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<PlaceOrder>,
) -> Result<Reply, Problem> {
    let meta =
        bulkhead::http::command_meta(&caller, &request, &headers, "POST", uri.path(), &body.raw)?;
    let lines = &body.value.lines;
    if lines.len() > MAX_LINES {
        return Err(OrderError::TooManyLines.into());
    }
    let offers = offers(table.as_ref(), lines.iter().map(|l| l.sku.as_str())).await?;
    let id = format!("o-{}", uuid::Uuid::now_v7().simple());
    let placed_at = command::timestamp();
    let decide = |_: Option<&Order>| {
        let requested = lines.iter().map(|l| (l.sku.as_str(), l.quantity));
        Ok(Some(domain::place(
            &id,
            &caller.sub,
            &placed_at,
            requested,
            |sku| offers.get(sku).cloned(),
        )?))
    };
    Ok(command::execute(table.as_ref(), &key(&id), &meta, decide, answer(&id)).await?)
}

/// Read an order from the write model
///
/// A customer reads its own orders only, staff any order. A customer gets 404 for another
/// customer's order, as for an order that does not exist.
#[utoipa::path(get, path = "/orders/{id}", operation_id = "getOrder",
    params(OrderPath),
    responses(
        (status = 200, description = "The order.", body = VersionedOrder, headers(("ETag"))),
        (status = 404),
    ),
    security(("bearerAuth" = ["customer"]), ("bearerAuth" = ["staff"])))]
async fn get_order(
    State(table): State<Db>,
    caller: Caller,
    Path(OrderPath { id }): Path<OrderPath>,
) -> Result<Response, Problem> {
    valid_id("order id", &id)?;
    let record: Option<Versioned<Order>> = get_as(table.as_ref(), &key(&id)).await?;
    let order = visible(record.as_ref().map(|r| &r.state), &caller)?;
    let version = record.as_ref().map_or(0, |r| r.version);
    let body = VersionedOrder {
        order: order.clone(),
        version,
    };
    Ok((etag(version), Json(body)).into_response())
}

/// Add a line
///
/// On the customer's own order (anyone else's is 404). A sku already on the order raises
/// that line's quantity, at its first price.
#[utoipa::path(post, path = "/orders/{id}/lines", operation_id = "addLine",
    params(OrderPath, CommandHeaders),
    request_body = LineRequest,
    responses(
        (status = 200, description = "Added.", body = OrderAccepted),
        (status = 404), (status = 409), (status = 412), (status = 415),
        (status = 422, description = "A rule or the body's shape: `invalid-body`, \
            `invalid-quantity`, `too-many-lines`, `unknown-sku`, `product-discontinued`, \
            `order-total-too-large`, `order-closed`, `idempotency-key-reused`."),
    ),
    security(("bearerAuth" = ["customer"])))]
async fn add_line(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    Path(OrderPath { id }): Path<OrderPath>,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<LineRequest>,
) -> Result<Reply, Problem> {
    valid_id("order id", &id)?;
    let meta =
        bulkhead::http::command_meta(&caller, &request, &headers, "POST", uri.path(), &body.raw)?;
    let LineRequest { sku, quantity } = &body.value;
    let offer = offers(table.as_ref(), std::iter::once(sku.as_str()))
        .await?
        .remove(sku);
    let decide = |current: Option<&Order>| {
        Ok(Some(domain::add_line(
            owned(current, &caller)?,
            sku,
            *quantity,
            offer.as_ref(),
        )?))
    };
    Ok(command::execute(table.as_ref(), &key(&id), &meta, decide, answer(&id)).await?)
}

/// Remove a line
///
/// On the customer's own order. 404 `line-not-found` when the order has no line for the
/// sku.
#[utoipa::path(delete, path = "/orders/{id}/lines/{sku}", operation_id = "removeLine",
    params(LinePath, CommandHeaders),
    responses(
        (status = 200, description = "Removed.", body = OrderAccepted),
        (status = 404), (status = 409), (status = 412),
        (status = 422, description = "A rule or the body's shape: `order-closed`, \
            `idempotency-key-reused`."),
    ),
    security(("bearerAuth" = ["customer"])))]
async fn remove_line(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    Path(LinePath { id, sku }): Path<LinePath>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Reply, Problem> {
    valid_id("order id", &id)?;
    valid_id("sku", &sku)?;
    let meta =
        bulkhead::http::command_meta(&caller, &request, &headers, "DELETE", uri.path(), b"")?;
    let decide =
        |current: Option<&Order>| Ok(Some(domain::remove_line(owned(current, &caller)?, &sku)?));
    Ok(command::execute(table.as_ref(), &key(&id), &meta, decide, answer(&id)).await?)
}

/// What every status change needs from its request.
struct Context {
    table: Db,
    caller: Caller,
    meta: command::CommandMeta,
}

impl FromRequestParts<Db> for Context {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        table: &Db,
    ) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, table).await?;
        let request = RequestMeta::from_request_parts(parts, table).await?;
        let meta = bulkhead::http::command_meta(
            &caller,
            &request,
            &parts.headers,
            "POST",
            parts.uri.path(),
            b"",
        )?;
        Ok(Context {
            table: table.clone(),
            caller,
            meta,
        })
    }
}

/// A status change: the role that asks for it (staff act on any order, customers on their
/// own), and the rule that makes it.
async fn transition(
    context: Context,
    id: String,
    role: Role,
    rule: fn(&Order) -> Result<Order, OrderError>,
) -> Result<Reply, Problem> {
    let Context {
        table,
        caller,
        meta,
    } = context;
    valid_id("order id", &id)?;
    let decide = |current: Option<&Order>| {
        let order = if role == Role::Staff {
            visible(current, &caller)?
        } else {
            owned(current, &caller)?
        };
        Ok(Some(rule(order)?))
    };
    Ok(command::execute(table.as_ref(), &key(&id), &meta, decide, answer(&id)).await?)
}

/// Cancel an order
///
/// On the customer's own order. A shipped order is in transit: 422 `too-late`. No request
/// body is read.
#[utoipa::path(post, path = "/orders/{id}/cancel", operation_id = "cancelOrder",
    params(OrderPath, CommandHeaders),
    responses(
        (status = 200, description = "Cancelled.", body = OrderAccepted),
        (status = 404), (status = 409), (status = 412),
        (status = 422, description = "A rule or the body's shape: `too-late`, `order-closed`, \
            `idempotency-key-reused`."),
    ),
    security(("bearerAuth" = ["customer"])))]
async fn cancel(
    context: Context,
    Path(OrderPath { id }): Path<OrderPath>,
) -> Result<Reply, Problem> {
    transition(context, id, Role::Customer, domain::cancel).await
}

/// Ship an order
///
/// Any order. Only a placed order can ship. No request body is read.
#[utoipa::path(post, path = "/orders/{id}/ship", operation_id = "shipOrder",
    params(OrderPath, CommandHeaders),
    responses(
        (status = 200, description = "Shipped.", body = OrderAccepted),
        (status = 404), (status = 409), (status = 412),
        (status = 422, description = "A rule or the body's shape: `order-closed`, \
            `idempotency-key-reused`."),
    ),
    security(("bearerAuth" = ["staff"])))]
async fn ship(context: Context, Path(OrderPath { id }): Path<OrderPath>) -> Result<Reply, Problem> {
    transition(context, id, Role::Staff, domain::ship).await
}

/// Deliver an order
///
/// Any order. Only a shipped order can be delivered (`not-shipped` before). No request body
/// is read.
#[utoipa::path(post, path = "/orders/{id}/deliver", operation_id = "deliverOrder",
    params(OrderPath, CommandHeaders),
    responses(
        (status = 200, description = "Delivered.", body = OrderAccepted),
        (status = 404), (status = 409), (status = 412),
        (status = 422, description = "A rule or the body's shape: `not-shipped`, \
            `order-closed`, `idempotency-key-reused`."),
    ),
    security(("bearerAuth" = ["staff"])))]
async fn deliver(
    context: Context,
    Path(OrderPath { id }): Path<OrderPath>,
) -> Result<Reply, Problem> {
    transition(context, id, Role::Staff, domain::deliver).await
}
