//! The orders service's public events: the order's public state and what each event's
//! `change` holds, and the contract of every event type and version it has published
//! (`shared/contracts/orders/`).
//!
//! **Version 2** (every order event): money is `{amountCents, currency}` instead of bare
//! cents (`totalCents`, `unitPriceCents`). A bare integer says nothing of its currency, so
//! the day orders takes a second one, every consumer that sums `totalCents` would add euros
//! to dollars without a sign. Renaming fields and changing their type breaks every reader,
//! hence a new version. The public state is also its own type now, no longer the write
//! model's `Order`. Version 1 events stay in the archive; `bulkhead::contract::upcast` raises
//! them to version 2 where consumers read.

use crate::acl::PUBLISHES;
use crate::domain::{Line, Order, OrderStatus};
use bulkhead::contract::Contract;
use serde::Serialize;

/// The version of the order events this service publishes.
pub const VERSION: u32 = 2;

/// An amount of money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// In the currency's smallest unit.
    pub amount_cents: i64,
    pub currency: Currency,
}

/// ISO 4217. Orders take one currency so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum Currency {
    #[allow(clippy::upper_case_acronyms)]
    USD,
}

impl Money {
    pub fn usd(amount_cents: i64) -> Money {
        Money {
            amount_cents,
            currency: Currency::USD,
        }
    }
}

/// An order line as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicLine {
    pub sku: String,
    pub quantity: i64,
    /// The price when the line was first added.
    pub unit_price: Money,
}

/// The order's public state, carried by every order event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicOrder {
    pub id: String,
    /// The `sub` of the customer who placed it.
    pub customer_id: String,
    pub status: OrderStatus,
    pub lines: Vec<PublicLine>,
    pub total: Money,
    /// RFC 3339, UTC, with milliseconds.
    pub placed_at: String,
}

impl From<&Line> for PublicLine {
    fn from(line: &Line) -> Self {
        PublicLine {
            sku: line.sku.clone(),
            quantity: line.quantity,
            unit_price: Money::usd(line.unit_price_cents),
        }
    }
}

impl From<&Order> for PublicOrder {
    fn from(order: &Order) -> Self {
        PublicOrder {
            id: order.id.clone(),
            customer_id: order.customer_id.clone(),
            status: order.status,
            lines: order.lines.iter().map(PublicLine::from).collect(),
            total: Money::usd(order.total_cents),
            placed_at: order.placed_at.clone(),
        }
    }
}

/// The `change` of an `OrderPlaced`: the lines it was placed with.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Placed {
    pub lines: Vec<PublicLine>,
}

/// The `change` of an `OrderLineAdded` (the quantity added) or `OrderLineRemoved` (the line
/// as it was).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LineChange {
    pub line: PublicLine,
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

/// Version 1, as it was published: money in bare cents, the state the write model's
/// `Order`. Kept so that its contract stays declared for the archive's events.
pub mod v1 {
    use crate::domain::Line;
    use serde::Serialize;

    /// The `change` of an `OrderPlaced`: the lines it was placed with.
    #[derive(Serialize, schemars::JsonSchema)]
    pub struct Placed {
        pub lines: Vec<Line>,
    }

    /// The `change` of an `OrderLineAdded` (the quantity added) or `OrderLineRemoved` (the line
    /// as it was).
    #[derive(Serialize, schemars::JsonSchema)]
    pub struct LineChange {
        pub line: Line,
    }
}

/// Every event type and version the orders service has published; each carries the order's
/// state.
pub fn contracts() -> Vec<Contract> {
    vec![
        Contract::of::<v1::Placed, Order>(PUBLISHES, "OrderPlaced", 1),
        Contract::of::<v1::LineChange, Order>(PUBLISHES, "OrderLineAdded", 1),
        Contract::of::<v1::LineChange, Order>(PUBLISHES, "OrderLineRemoved", 1),
        Contract::of::<StatusChange, Order>(PUBLISHES, "OrderCancelled", 1),
        Contract::of::<StatusChange, Order>(PUBLISHES, "OrderShipped", 1),
        Contract::of::<StatusChange, Order>(PUBLISHES, "OrderDelivered", 1),
        Contract::of::<Placed, PublicOrder>(PUBLISHES, "OrderPlaced", VERSION),
        Contract::of::<LineChange, PublicOrder>(PUBLISHES, "OrderLineAdded", VERSION),
        Contract::of::<LineChange, PublicOrder>(PUBLISHES, "OrderLineRemoved", VERSION),
        Contract::of::<StatusChange, PublicOrder>(PUBLISHES, "OrderCancelled", VERSION),
        Contract::of::<StatusChange, PublicOrder>(PUBLISHES, "OrderShipped", VERSION),
        Contract::of::<StatusChange, PublicOrder>(PUBLISHES, "OrderDelivered", VERSION),
    ]
}
