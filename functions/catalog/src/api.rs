//! The catalog's HTTP API.

use crate::acl::PRODUCT_PREFIX;
use crate::domain::{self, CatalogError, Product};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use bulkhead::command::{self, Accepted, Answer, Record};
use bulkhead::http::{
    Caller, JsonBody, Path, Problem, RequestMeta, etag, valid_id, with_fallbacks,
};
use bulkhead::store::{Key, Table, get_as};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub const MERCHANDISER: &str = "merchandiser";

type Db = Arc<dyn Table>;

pub fn router(table: Db) -> Router {
    let routes = Router::new()
        .route(
            "/products/{sku}",
            put(put_product)
                .get(get_product)
                .delete(discontinue_product),
        )
        .with_state(table);
    with_fallbacks(routes)
}

impl From<CatalogError> for Problem {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound => Problem::not_found("the product"),
            e => Problem::unprocessable(e.code(), e.to_string()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PutProduct {
    name: String,
    price_cents: i64,
}

fn key(sku: &str) -> Key {
    Key::new(format!("{PRODUCT_PREFIX}{sku}"), "#")
}

fn answer(sku: &str) -> impl Fn(Accepted) -> (StatusCode, serde_json::Value) + '_ {
    move |accepted| {
        let status = if accepted.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        (status, json!({ "sku": sku, "version": accepted.version }))
    }
}

async fn put_product(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    Path(sku): Path<String>,
    headers: HeaderMap,
    body: JsonBody<PutProduct>,
) -> Result<Answer, Problem> {
    caller.require(MERCHANDISER)?;
    valid_id("sku", &sku)?;
    let meta = command::meta_from(&caller, &request, &headers, "PUT", &sku, &body.raw)?;
    let PutProduct { name, price_cents } = &body.value;
    let decide = |current: Option<&Product>| Ok(domain::put(current, &sku, name, *price_cents)?);
    command::execute(table.as_ref(), &key(&sku), &meta, decide, answer(&sku)).await
}

async fn discontinue_product(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    Path(sku): Path<String>,
    headers: HeaderMap,
) -> Result<Answer, Problem> {
    caller.require(MERCHANDISER)?;
    valid_id("sku", &sku)?;
    let meta = command::meta_from(&caller, &request, &headers, "DELETE", &sku, b"")?;
    let decide = |current: Option<&Product>| Ok(domain::discontinue(current)?);
    command::execute(table.as_ref(), &key(&sku), &meta, decide, answer(&sku)).await
}

async fn get_product(
    State(table): State<Db>,
    _caller: Caller,
    Path(sku): Path<String>,
) -> Result<Response, Problem> {
    valid_id("sku", &sku)?;
    let record: Record<Product> = get_as(table.as_ref(), &key(&sku))
        .await?
        .ok_or_else(|| Problem::not_found("the product"))?;
    let mut body = serde_json::to_value(&record.state).map_err(bulkhead::Error::from)?;
    body["version"] = json!(record.version);
    Ok((etag(record.version), Json(body)).into_response())
}
