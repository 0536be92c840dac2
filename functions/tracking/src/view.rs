//! The per-customer order history. Each order event carries the order's whole public state,
//! so the view keeps the newest version it has seen and ignores older or repeated ones.
//! Product names are joined in when the order's view is written, from this service's own
//! copy of catalog events.

use bulkhead::event::EventSet;
use bulkhead::listener::Delivered;
use bulkhead::listener::snapshot::{self, Row, keep_newest};
use bulkhead::store::{Key, Table};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

/// This service's copy of a product.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductCopy {
    pub sku: String,
    pub name: String,
    pub version: u64,
}

/// What this service reads of the orders service's public order state.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    id: String,
    customer_id: String,
    status: String,
    lines: Vec<LineState>,
    total: Price,
    placed_at: String,
}

/// What this service reads of an amount of money: orders publish one currency.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Price {
    amount_cents: i64,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct LineState {
    sku: String,
    quantity: i64,
    unit_price: Price,
}

/// What this service reads of the catalog's public product state.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct ProductState {
    sku: String,
    name: String,
}

/// Every order event: each carries the order's state, status included.
pub const ORDER_EVENTS: EventSet = EventSet {
    source: "bulkhead.orders",
    types: &[
        "OrderPlaced",
        "OrderLineAdded",
        "OrderLineRemoved",
        "OrderCancelled",
        "OrderShipped",
        "OrderDelivered",
    ],
};

/// Every product event, for the names.
pub const PRODUCT_EVENTS: EventSet = EventSet {
    source: "bulkhead.catalog",
    types: &["ProductCreated", "ProductUpdated", "ProductDiscontinued"],
};

pub fn order_key(id: &str) -> Key {
    Key::new(format!("{ORDER_PREFIX}{id}"), "#")
}

pub fn product_key(sku: &str) -> Key {
    Key::new(format!("{PRODUCT_PREFIX}{sku}"), "#")
}

/// The names of these products as far as known, in one read.
pub async fn product_names(
    table: &dyn Table,
    skus: impl Iterator<Item = &str>,
) -> bulkhead::Result<Vec<Option<String>>> {
    let keys: Vec<Key> = skus.map(product_key).collect();
    Ok(snapshot::read_many::<ProductCopy>(table, &keys)
        .await?
        .into_iter()
        .map(|copy| copy.map(|p| p.name))
        .collect())
}

/// Keeps the order's newest state, with the names of its products as far as known.
pub async fn apply_order(
    table: Arc<dyn Table>,
    event: Delivered,
    order: OrderState,
) -> bulkhead::Result<()> {
    let table = table.as_ref();
    let version = event.detail.aggregate.version;
    let names = product_names(table, order.lines.iter().map(|l| l.sku.as_str())).await?;
    let lines = order
        .lines
        .into_iter()
        .zip(names)
        .map(|(line, name)| TrackedLine {
            name,
            sku: line.sku,
            quantity: line.quantity,
            unit_price_cents: line.unit_price.amount_cents,
        })
        .collect();
    let index = (
        format!("{CUSTOMER_PREFIX}{}", order.customer_id),
        format!("{}#{}", order.placed_at, order.id),
    );
    let row = Row::new(
        order_key(&order.id),
        TrackedOrder {
            id: order.id,
            customer_id: order.customer_id,
            status: order.status,
            lines,
            total_cents: order.total.amount_cents,
            placed_at: order.placed_at,
            updated_at: event.detail.occurred_at,
            version,
        },
    )
    .indexed(index.0, index.1);
    keep_newest(table, &row, version).await?;
    Ok(())
}

/// Keeps the product's newest name.
pub async fn apply_product(
    table: Arc<dyn Table>,
    event: Delivered,
    product: ProductState,
) -> bulkhead::Result<()> {
    let version = event.detail.aggregate.version;
    let row = Row::new(
        product_key(&product.sku),
        ProductCopy {
            sku: product.sku,
            name: product.name,
            version,
        },
    );
    keep_newest(table.as_ref(), &row, version).await?;
    Ok(())
}
