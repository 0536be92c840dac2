//! The work queue: one item per order, indexed by status and then by the time it was
//! placed, so that the oldest work comes first. Upserts are guarded by the order's version.

use bulkhead::event::EventSet;
use bulkhead::listener::Delivered;
use bulkhead::listener::snapshot::{Row, keep_newest};
use bulkhead::store::{Key, Table};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const ORDER_PREFIX: &str = "ORDER#";
pub const STATUS_PREFIX: &str = "STATUS#";
/// The index of orders by status, oldest first.
pub const BY_STATUS: &str = "gsi1";
pub const STATUSES: [&str; 4] = ["PLACED", "SHIPPED", "DELIVERED", "CANCELLED"];

#[derive(
    Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct PickLine {
    pub sku: String,
    pub quantity: i64,
}

/// An order as the warehouse sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkItem {
    pub id: String,
    pub customer_id: String,
    #[schema(schema_with = crate::api::status_schema)]
    pub status: String,
    pub lines: Vec<PickLine>,
    #[schema(format = DateTime)]
    pub placed_at: String,
    pub version: u64,
}

/// What this service reads of the orders service's public order state.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    id: String,
    customer_id: String,
    status: String,
    lines: Vec<PickLine>,
    placed_at: String,
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

pub fn key(id: &str) -> Key {
    Key::new(format!("{ORDER_PREFIX}{id}"), "#")
}

/// Keeps the order's newest state in the work queue.
pub async fn apply(
    table: Arc<dyn Table>,
    event: Delivered,
    order: OrderState,
) -> bulkhead::Result<()> {
    let version = event.detail.aggregate.version;
    let index = (
        format!("{STATUS_PREFIX}{}", order.status),
        format!("{}#{}", order.placed_at, order.id),
    );
    let row = Row::new(
        key(&order.id),
        WorkItem {
            id: order.id,
            customer_id: order.customer_id,
            status: order.status,
            lines: order.lines,
            placed_at: order.placed_at,
            version,
        },
    )
    .indexed(index.0, index.1);
    keep_newest(table.as_ref(), &row, version).await?;
    Ok(())
}
