//! The orders service's HTTP API.

use crate::acl::ORDER_PREFIX;
use crate::catalog_cache;
use crate::domain::{self, MAX_LINES, Offer, Order, OrderError};
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bulkhead::command::{self, Accepted, Answer, Record};
use bulkhead::http::{
    Caller, JsonBody, Path, Problem, RequestMeta, etag, valid_id, with_fallbacks,
};
use bulkhead::store::{Key, Table, get_as};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

pub const CUSTOMER: &str = "customer";
pub const STAFF: &str = "staff";

type Db = Arc<dyn Table>;

pub fn router(table: Db) -> Router {
    let routes = Router::new()
        .route("/orders", post(place_order))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/lines", post(add_line))
        .route("/orders/{id}/lines/{sku}", delete(remove_line))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/ship", post(ship))
        .route("/orders/{id}/deliver", post(deliver))
        .with_state(table);
    with_fallbacks(routes)
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineRequest {
    sku: String,
    quantity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrder {
    lines: Vec<LineRequest>,
}

fn key(id: &str) -> Key {
    Key::new(format!("{ORDER_PREFIX}{id}"), "#")
}

fn answer(id: &str) -> impl Fn(Accepted) -> (StatusCode, serde_json::Value) + '_ {
    move |accepted| {
        let status = if accepted.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        (status, json!({ "id": id, "version": accepted.version }))
    }
}

/// The order, if this caller may see it: its customer, or staff. Anyone else gets 404.
fn visible<'a>(current: Option<&'a Order>, caller: &Caller) -> Result<&'a Order, Problem> {
    match current {
        Some(order) if order.customer_id == caller.sub || caller.has_role(STAFF) => Ok(order),
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
    let mut offers = HashMap::new();
    for sku in skus {
        if !offers.contains_key(sku)
            && valid_id("sku", sku).is_ok()
            && let Some(offer) = catalog_cache::offer(table, sku).await?
        {
            offers.insert(sku.to_string(), offer);
        }
    }
    Ok(offers)
}

async fn place_order(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<PlaceOrder>,
) -> Result<Answer, Problem> {
    caller.require(CUSTOMER)?;
    let meta = command::meta_from(&caller, &request, &headers, "POST", uri.path(), &body.raw)?;
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
    command::execute(table.as_ref(), &key(&id), &meta, decide, answer(&id)).await
}

async fn get_order(
    State(table): State<Db>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    if !caller.has_role(STAFF) {
        caller.require(CUSTOMER)?;
    }
    valid_id("order id", &id)?;
    let record: Option<Record<Order>> = get_as(table.as_ref(), &key(&id)).await?;
    let order = visible(record.as_ref().map(|r| &r.state), &caller)?;
    let mut body = serde_json::to_value(order).map_err(bulkhead::Error::from)?;
    let version = record.as_ref().map_or(0, |r| r.version);
    body["version"] = json!(version);
    Ok((etag(version), Json(body)).into_response())
}

async fn add_line(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<LineRequest>,
) -> Result<Answer, Problem> {
    caller.require(CUSTOMER)?;
    valid_id("order id", &id)?;
    let meta = command::meta_from(&caller, &request, &headers, "POST", uri.path(), &body.raw)?;
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
    command::execute(table.as_ref(), &key(&id), &meta, decide, answer(&id)).await
}

async fn remove_line(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    Path((id, sku)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Answer, Problem> {
    caller.require(CUSTOMER)?;
    valid_id("order id", &id)?;
    let meta = command::meta_from(&caller, &request, &headers, "DELETE", uri.path(), b"")?;
    let decide =
        |current: Option<&Order>| Ok(Some(domain::remove_line(owned(current, &caller)?, &sku)?));
    command::execute(table.as_ref(), &key(&id), &meta, decide, answer(&id)).await
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
        let meta = command::meta_from(
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

/// A status change: who may ask for it, and the rule that makes it.
async fn transition(
    context: Context,
    id: String,
    role: &str,
    rule: fn(&Order) -> Result<Order, OrderError>,
) -> Result<Answer, Problem> {
    let Context {
        table,
        caller,
        meta,
    } = context;
    caller.require(role)?;
    valid_id("order id", &id)?;
    let decide = |current: Option<&Order>| {
        let order = if role == STAFF {
            visible(current, &caller)?
        } else {
            owned(current, &caller)?
        };
        Ok(Some(rule(order)?))
    };
    command::execute(table.as_ref(), &key(&id), &meta, decide, answer(&id)).await
}

async fn cancel(context: Context, Path(id): Path<String>) -> Result<Answer, Problem> {
    transition(context, id, CUSTOMER, domain::cancel).await
}

async fn ship(context: Context, Path(id): Path<String>) -> Result<Answer, Problem> {
    transition(context, id, STAFF, domain::ship).await
}

async fn deliver(context: Context, Path(id): Path<String>) -> Result<Answer, Problem> {
    transition(context, id, STAFF, domain::deliver).await
}
