//! The per-customer order history. Each order event carries the order's whole public state,
//! so the view keeps the newest version it has seen and ignores older or repeated ones.
//! Product names are joined in when the order's view is written, from this service's own
//! copy of catalog events.

use bulkhead::listener::Delivered;
use bulkhead::store::{Key, Table, get_as, to_item, upsert_if_newer};
use serde::{Deserialize, Serialize};

pub const ORDER_PREFIX: &str = "ORDER#";
pub const PRODUCT_PREFIX: &str = "PRODUCT#";
pub const CUSTOMER_PREFIX: &str = "CUSTOMER#";
/// The index that lists a customer's orders by the time they were placed.
pub const BY_CUSTOMER: &str = "gsi1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackedLine {
    pub sku: String,
    /// The product's name when the order's view was written; null while this service has
    /// not yet seen the product.
    #[schema(required)]
    pub name: Option<String>,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// One order in a customer's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackedOrder {
    pub id: String,
    pub customer_id: String,
    #[schema(schema_with = crate::api::status_schema)]
    pub status: String,
    pub lines: Vec<TrackedLine>,
    pub total_cents: i64,
    #[schema(format = DateTime)]
    pub placed_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub version: u64,
}

/// The stored view item: the order plus its keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    #[serde(flatten)]
    pub order: TrackedOrder,
}

/// This service's copy of a product.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductCopy {
    pub pk: String,
    pub sk: String,
    pub sku: String,
    pub name: String,
    pub version: u64,
}

/// What this service reads of the orders service's public order state.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderState {
    id: String,
    customer_id: String,
    status: String,
    lines: Vec<LineState>,
    total_cents: i64,
    placed_at: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineState {
    sku: String,
    quantity: i64,
    unit_price_cents: i64,
}

#[derive(Deserialize)]
struct ProductState {
    sku: String,
    name: String,
}

pub fn order_key(id: &str) -> Key {
    Key::new(format!("{ORDER_PREFIX}{id}"), "#")
}

pub fn product_key(sku: &str) -> Key {
    Key::new(format!("{PRODUCT_PREFIX}{sku}"), "#")
}

pub async fn product_name(table: &dyn Table, sku: &str) -> bulkhead::Result<Option<String>> {
    Ok(get_as::<ProductCopy>(table, &product_key(sku))
        .await?
        .map(|p| p.name))
}

/// Applies one delivered event to the view.
pub async fn apply(table: &dyn Table, delivered: &Delivered) -> bulkhead::Result<()> {
    let event = &delivered.detail;
    let version = event.aggregate.version;
    match (delivered.source.as_str(), event.aggregate.kind.as_str()) {
        ("bulkhead.orders", "order") => {
            let state: OrderState = event.state_as()?;
            let mut lines = Vec::with_capacity(state.lines.len());
            for line in state.lines {
                lines.push(TrackedLine {
                    name: product_name(table, &line.sku).await?,
                    sku: line.sku,
                    quantity: line.quantity,
                    unit_price_cents: line.unit_price_cents,
                });
            }
            let key = order_key(&state.id);
            let item = OrderItem {
                pk: key.pk,
                sk: key.sk,
                gsi1pk: format!("{CUSTOMER_PREFIX}{}", state.customer_id),
                gsi1sk: format!("{}#{}", state.placed_at, state.id),
                order: TrackedOrder {
                    id: state.id,
                    customer_id: state.customer_id,
                    status: state.status,
                    lines,
                    total_cents: state.total_cents,
                    placed_at: state.placed_at,
                    updated_at: event.occurred_at.clone(),
                    version,
                },
            };
            upsert_if_newer(table, to_item(&item)?, version).await?;
        }
        ("bulkhead.catalog", "product") => {
            let state: ProductState = event.state_as()?;
            let key = product_key(&state.sku);
            let copy = ProductCopy {
                pk: key.pk,
                sk: key.sk,
                sku: state.sku,
                name: state.name,
                version,
            };
            upsert_if_newer(table, to_item(&copy)?, version).await?;
        }
        _ => {}
    }
    Ok(())
}
