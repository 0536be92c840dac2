//! The catalog's HTTP API.

use crate::acl::PRODUCT_PREFIX;
use crate::domain::{self, CatalogError, Product};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bulkhead::command::{self, Accepted, Reply, Versioned};
use bulkhead::http::{Caller, JsonBody, Path, Problem, RequestMeta, etag, valid_id};
use bulkhead::openapi::{CommandHeaders, Fragment};
use bulkhead::store::{Key, Table, get_as};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Db = Arc<dyn Table>;

/// Every route, declared once: the router and the document both come from here.
fn routes() -> OpenApiRouter<Db> {
    OpenApiRouter::default().routes(routes!(put_product, get_product, discontinue_product))
}

pub fn router(table: Db) -> Router {
    bulkhead::openapi::router(routes(), table)
}

/// The service's part of the OpenAPI document.
pub fn openapi() -> Fragment {
    Fragment::new(crate::SERVICE, "Products, for merchandisers.", routes())
}

impl From<CatalogError> for Problem {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound => Problem::not_found("the product"),
            e => Problem::unprocessable(e.code(), e.to_string()),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct SkuPath {
    /// The product's sku: 1 to 64 of `A-Z a-z 0-9 - _`; anything else answers 400
    /// `invalid-sku`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    sku: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PutProduct {
    /// 1 to 200 characters once trimmed, else 422 `invalid-name`.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    /// 1 to 100,000,000 ($1,000,000), else 422 `invalid-price`.
    #[schema(minimum = 1, maximum = 100_000_000_i64)]
    price_cents: i64,
}

/// A command's answer.
#[derive(Serialize, ToSchema)]
struct ProductAccepted {
    sku: String,
    version: u64,
}

/// A product, at the version read.
#[derive(Serialize, ToSchema)]
struct VersionedProduct {
    #[serde(flatten)]
    product: Product,
    version: u64,
}

fn key(sku: &str) -> Key {
    Key::new(format!("{PRODUCT_PREFIX}{sku}"), "#")
}

fn answer(sku: &str) -> impl Fn(Accepted) -> (u16, serde_json::Value) + '_ {
    move |accepted| {
        let status = if accepted.created { 201 } else { 200 };
        let body = ProductAccepted {
            sku: sku.to_string(),
            version: accepted.version,
        };
        (status, json!(body))
    }
}

/// Create or update a product
///
/// Creates the product (201) or changes its name and price (200); a request that changes
/// nothing answers 200 with the current version. A discontinued product cannot change (422
/// `product-discontinued`).
#[utoipa::path(put, path = "/products/{sku}", operation_id = "putProduct",
    params(SkuPath, CommandHeaders),
    request_body = PutProduct,
    responses(
        (status = 200, description = "Updated, or unchanged.", body = ProductAccepted, links(
            ("GetProduct" = (operation_id = "getProduct", parameters(("sku" = "$response.body#/sku")))),
            ("DiscontinueProduct" = (operation_id = "discontinueProduct", parameters(("sku" = "$response.body#/sku")))),
        )),
        (status = 201, description = "Created.", body = ProductAccepted, links(
            ("GetProduct" = (operation_id = "getProduct", parameters(("sku" = "$response.body#/sku")))),
            ("DiscontinueProduct" = (operation_id = "discontinueProduct", parameters(("sku" = "$response.body#/sku")))),
        )),
        (status = 404), (status = 409), (status = 412), (status = 415),
        (status = 422, description = "A rule or the body's shape: `invalid-body`, `invalid-name`, \
            `invalid-price`, `product-discontinued`, `idempotency-key-reused`."),
    ),
    security(("bearerAuth" = ["merchandiser"])))]
async fn put_product(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    Path(SkuPath { sku }): Path<SkuPath>,
    headers: HeaderMap,
    body: JsonBody<PutProduct>,
) -> Result<Reply, Problem> {
    valid_id("sku", &sku)?;
    let meta = bulkhead::http::command_meta(&caller, &request, &headers, "PUT", &sku, &body.raw)?;
    let PutProduct { name, price_cents } = &body.value;
    let decide = |current: Option<&Product>| Ok(domain::put(current, &sku, name, *price_cents)?);
    Ok(command::execute(table.as_ref(), &key(&sku), &meta, decide, answer(&sku)).await?)
}

/// Discontinue a product
///
/// The product stays readable as `DISCONTINUED` and can no longer be ordered; discontinuing
/// it again changes nothing (200, same version).
#[utoipa::path(delete, path = "/products/{sku}", operation_id = "discontinueProduct",
    params(SkuPath, CommandHeaders),
    responses(
        (status = 200, description = "Discontinued.", body = ProductAccepted),
        (status = 404), (status = 409), (status = 412),
        (status = 422, description = "A rule or the body's shape: `idempotency-key-reused`."),
    ),
    security(("bearerAuth" = ["merchandiser"])))]
async fn discontinue_product(
    State(table): State<Db>,
    caller: Caller,
    request: RequestMeta,
    Path(SkuPath { sku }): Path<SkuPath>,
    headers: HeaderMap,
) -> Result<Reply, Problem> {
    valid_id("sku", &sku)?;
    let meta = bulkhead::http::command_meta(&caller, &request, &headers, "DELETE", &sku, b"")?;
    let decide = |current: Option<&Product>| Ok(domain::discontinue(current)?);
    Ok(command::execute(table.as_ref(), &key(&sku), &meta, decide, answer(&sku)).await?)
}

/// Read a product
///
/// Any role. A discontinued product stays readable, with status `DISCONTINUED`.
#[utoipa::path(get, path = "/products/{sku}", operation_id = "getProduct",
    params(SkuPath),
    responses(
        (status = 200, description = "The product.", body = VersionedProduct, headers(("ETag"))),
        (status = 404),
    ),
    security(("bearerAuth" = [])))]
async fn get_product(
    State(table): State<Db>,
    Path(SkuPath { sku }): Path<SkuPath>,
) -> Result<Response, Problem> {
    valid_id("sku", &sku)?;
    let record: Versioned<Product> = get_as(table.as_ref(), &key(&sku))
        .await?
        .ok_or_else(|| Problem::not_found("the product"))?;
    let body = VersionedProduct {
        product: record.state,
        version: record.version,
    };
    Ok((etag(record.version), Json(body)).into_response())
}
