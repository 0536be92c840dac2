//! The orders service's public events: what each one's `change` holds, and the contract of
//! every event type and version it publishes (`shared/contracts/orders/`).

use crate::acl::PUBLISHES;
use crate::domain::{Line, Order, OrderStatus};
use bulkhead::contract::Contract;
use serde::Serialize;

/// The `change` of an `OrderPlaced`: the lines it was placed with.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Placed {
    pub lines: Vec<Line>,
}

/// The `change` of an `OrderLineAdded` (the quantity added) or `OrderLineRemoved` (the line
/// as it was).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LineChange {
    pub line: Line,
}

/// The `change` of an `OrderCancelled`, `OrderShipped` or `OrderDelivered`.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: OrderStatus,
    pub previous_status: OrderStatus,
}

/// What changed, as the ACL publishes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OrderChange {
    Placed(Placed),
    Line(LineChange),
    Status(StatusChange),
}

/// Every event type and version the orders service publishes; each carries the order's
/// state.
pub fn contracts() -> Vec<Contract> {
    vec![
        Contract::of::<Placed, Order>(PUBLISHES, "OrderPlaced", 1),
        Contract::of::<LineChange, Order>(PUBLISHES, "OrderLineAdded", 1),
        Contract::of::<LineChange, Order>(PUBLISHES, "OrderLineRemoved", 1),
        Contract::of::<StatusChange, Order>(PUBLISHES, "OrderCancelled", 1),
        Contract::of::<StatusChange, Order>(PUBLISHES, "OrderShipped", 1),
        Contract::of::<StatusChange, Order>(PUBLISHES, "OrderDelivered", 1),
    ]
}
