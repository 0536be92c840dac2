//! The work queue: one item per order, indexed by status and then by the time it was
//! placed, so that the oldest work comes first. Upserts are guarded by the order's version.

use bulkhead::listener::Delivered;
use bulkhead::store::{Key, to_item, upsert_if_newer};
use serde::{Deserialize, Serialize};

pub const ORDER_PREFIX: &str = "ORDER#";
pub const STATUS_PREFIX: &str = "STATUS#";
/// The index of orders by status, oldest first.
pub const BY_STATUS: &str = "gsi1";
pub const STATUSES: [&str; 4] = ["PLACED", "SHIPPED", "DELIVERED", "CANCELLED"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkItemRecord {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    #[serde(flatten)]
    pub item: WorkItem,
}

/// What this service reads of the orders service's public order state.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderState {
    id: String,
    customer_id: String,
    status: String,
    lines: Vec<PickLine>,
    placed_at: String,
}

pub fn key(id: &str) -> Key {
    Key::new(format!("{ORDER_PREFIX}{id}"), "#")
}

pub async fn apply(
    table: &dyn bulkhead::store::Table,
    delivered: &Delivered,
) -> bulkhead::Result<()> {
    let event = &delivered.detail;
    if delivered.source != "bulkhead.orders" || event.aggregate.kind != "order" {
        return Ok(());
    }
    let state: OrderState = event.state_as()?;
    let key = key(&state.id);
    let record = WorkItemRecord {
        pk: key.pk,
        sk: key.sk,
        gsi1pk: format!("{STATUS_PREFIX}{}", state.status),
        gsi1sk: format!("{}#{}", state.placed_at, state.id),
        item: WorkItem {
            id: state.id,
            customer_id: state.customer_id,
            status: state.status,
            lines: state.lines,
            placed_at: state.placed_at,
            version: event.aggregate.version,
        },
    };
    upsert_if_newer(table, to_item(&record)?, event.aggregate.version).await?;
    Ok(())
}
