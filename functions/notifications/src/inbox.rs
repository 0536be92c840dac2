//! The inbox: `CUSTOMER#<id>` / `MESSAGE#<occurredAt>#<order id>#<kind>`, newest last in
//! the partition. The key comes from the event alone, so a duplicate lands on its own row,
//! which keeps its version: a repeated or reordered event never makes a second message.

use bulkhead::event::EventSet;
use bulkhead::listener::Delivered;
use bulkhead::listener::snapshot::{Row, keep_newest};
use bulkhead::store::{Key, Table};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

pub const CUSTOMER_PREFIX: &str = "CUSTOMER#";

/// The status changes a customer is told about.
pub const ORDER_EVENTS: EventSet = EventSet {
    source: "bulkhead.orders",
    types: &["OrderShipped", "OrderDelivered", "OrderCancelled"],
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageLine {
    pub sku: String,
    pub quantity: i64,
}

/// One message in a customer's inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub order_id: String,
    /// `shipped`, `delivered` or `cancelled`.
    #[schema(pattern = "^(shipped|delivered|cancelled)$")]
    pub kind: String,
    pub lines: Vec<MessageLine>,
    pub total_cents: i64,
    /// When the order changed.
    #[schema(format = DateTime)]
    pub at: String,
    pub version: u64,
}

/// What this service reads of the orders service's public order state.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    id: String,
    customer_id: String,
    lines: Vec<MessageLine>,
    total: Price,
}

/// What this service reads of an amount of money: orders publish one currency.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Price {
    amount_cents: i64,
}

pub fn partition(customer: &str) -> String {
    format!("{CUSTOMER_PREFIX}{customer}")
}

/// Writes the message for this status change, once.
pub async fn apply(
    table: Arc<dyn Table>,
    event: Delivered,
    order: OrderState,
) -> bulkhead::Result<()> {
    let kind = event.detail_type.trim_start_matches("Order").to_lowercase();
    let (at, version) = (event.detail.occurred_at, event.detail.aggregate.version);
    let key = Key::new(
        partition(&order.customer_id),
        format!("MESSAGE#{at}#{}#{kind}", order.id),
    );
    let message = Message {
        order_id: order.id,
        kind,
        lines: order.lines,
        total_cents: order.total.amount_cents,
        at,
        version,
    };
    keep_newest(table.as_ref(), &Row::new(key, message), version).await?;
    Ok(())
}
