//! The order's rules. Pure: no I/O, no AWS types.

use serde::{Deserialize, Serialize};

pub const MAX_QUANTITY: i64 = 10_000;
/// Also keeps a sales transaction (one write per sku, plus two) within DynamoDB's 100.
pub const MAX_LINES: usize = 50;
/// The largest order, in cents: $10,000,000. With it every money figure of an order, and a
/// day's sales totals up to 9,007,199 orders at this maximum, stay below 2^53, the largest
/// integer a JavaScript client reads exactly.
pub const MAX_ORDER_TOTAL_CENTS: i64 = 1_000_000_000;

/// `PLACED → SHIPPED → DELIVERED`, or `PLACED → CANCELLED`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Placed,
    Shipped,
    Delivered,
    Cancelled,
}

#[derive(
    Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub sku: String,
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: i64,
    /// The price when the line was first added.
    pub unit_price_cents: i64,
}

#[derive(
    Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    /// The `sub` of the customer who placed it.
    pub customer_id: String,
    pub status: OrderStatus,
    #[schema(max_items = 50)]
    pub lines: Vec<Line>,
    /// At most 1,000,000,000 ($10,000,000), else 422 `order-total-too-large`.
    #[schema(minimum = 0, maximum = 1_000_000_000_i64)]
    pub total_cents: i64,
    /// RFC 3339, UTC, with milliseconds.
    #[schema(format = DateTime)]
    pub placed_at: String,
}

/// What the orders service knows of a product, from its own cache of catalog events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub price_cents: i64,
    pub discontinued: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("quantity must be between 1 and {MAX_QUANTITY}")]
    InvalidQuantity,
    #[error("an order needs at least one line")]
    NoLines,
    #[error("an order has at most {MAX_LINES} lines")]
    TooManyLines,
    #[error("sku {0} is not in the catalog")]
    UnknownSku(String),
    #[error("sku {0} is discontinued and cannot be ordered")]
    ProductDiscontinued(String),
    #[error("the order is {0:?} and cannot change")]
    OrderClosed(OrderStatus),
    #[error("the order is in transit and can no longer be cancelled")]
    TooLate,
    #[error("the order has not been shipped")]
    NotShipped,
    #[error("an order totals at most {MAX_ORDER_TOTAL_CENTS} cents")]
    OrderTotalTooLarge,
    #[error("the order has no line for sku {0}")]
    LineNotFound(String),
    #[error("no such order")]
    NotFound,
}

impl OrderError {
    /// The stable, machine-readable code of the rule.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::InvalidQuantity => "invalid-quantity",
            OrderError::NoLines => "no-lines",
            OrderError::TooManyLines => "too-many-lines",
            OrderError::UnknownSku(_) => "unknown-sku",
            OrderError::ProductDiscontinued(_) => "product-discontinued",
            OrderError::OrderClosed(_) => "order-closed",
            OrderError::TooLate => "too-late",
            OrderError::NotShipped => "not-shipped",
            OrderError::OrderTotalTooLarge => "order-total-too-large",
            OrderError::LineNotFound(_) => "line-not-found",
            OrderError::NotFound => "not-found",
        }
    }
}

type Result<T> = std::result::Result<T, OrderError>;

fn priced(sku: &str, quantity: i64, offer: Option<&Offer>) -> Result<Line> {
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(OrderError::InvalidQuantity);
    }
    match offer {
        None => Err(OrderError::UnknownSku(sku.into())),
        Some(o) if o.discontinued => Err(OrderError::ProductDiscontinued(sku.into())),
        Some(o) => Ok(Line {
            sku: sku.into(),
            quantity,
            unit_price_cents: o.price_cents,
        }),
    }
}

/// The order's total, refused above [`MAX_ORDER_TOTAL_CENTS`]. Prices come from catalog
/// events, so the arithmetic is checked rather than trusted to their bounds.
fn total(lines: &[Line]) -> Result<i64> {
    lines
        .iter()
        .try_fold(0i64, |sum, l| {
            l.quantity
                .checked_mul(l.unit_price_cents)
                .and_then(|line| sum.checked_add(line))
        })
        .filter(|t| (0..=MAX_ORDER_TOTAL_CENTS).contains(t))
        .ok_or(OrderError::OrderTotalTooLarge)
}

fn open(order: &Order) -> Result<()> {
    match order.status {
        OrderStatus::Placed => Ok(()),
        closed => Err(OrderError::OrderClosed(closed)),
    }
}

fn add(mut lines: Vec<Line>, line: Line) -> Result<Vec<Line>> {
    let count = lines.len();
    match lines.iter_mut().find(|l| l.sku == line.sku) {
        Some(existing) => {
            existing.quantity += line.quantity;
            if existing.quantity > MAX_QUANTITY {
                return Err(OrderError::InvalidQuantity);
            }
        }
        None if count >= MAX_LINES => return Err(OrderError::TooManyLines),
        None => lines.push(line),
    }
    Ok(lines)
}

/// Places an order. Lines with the same sku merge; each is priced from `offers`.
pub fn place<'a>(
    id: &str,
    customer_id: &str,
    placed_at: &str,
    requested: impl IntoIterator<Item = (&'a str, i64)>,
    offer_of: impl Fn(&str) -> Option<Offer>,
) -> Result<Order> {
    let mut lines = vec![];
    for (sku, quantity) in requested {
        lines = add(lines, priced(sku, quantity, offer_of(sku).as_ref())?)?;
    }
    if lines.is_empty() {
        return Err(OrderError::NoLines);
    }
    Ok(Order {
        id: id.into(),
        customer_id: customer_id.into(),
        status: OrderStatus::Placed,
        total_cents: total(&lines)?,
        lines,
        placed_at: placed_at.into(),
    })
}

/// Adds a line, or raises the quantity of the line that has this sku (at its first price).
pub fn add_line(order: &Order, sku: &str, quantity: i64, offer: Option<&Offer>) -> Result<Order> {
    open(order)?;
    let lines = add(order.lines.clone(), priced(sku, quantity, offer)?)?;
    Ok(Order {
        total_cents: total(&lines)?,
        lines,
        ..order.clone()
    })
}

pub fn remove_line(order: &Order, sku: &str) -> Result<Order> {
    open(order)?;
    if !order.lines.iter().any(|l| l.sku == sku) {
        return Err(OrderError::LineNotFound(sku.into()));
    }
    let lines: Vec<Line> = order
        .lines
        .iter()
        .filter(|l| l.sku != sku)
        .cloned()
        .collect();
    Ok(Order {
        total_cents: total(&lines)?,
        lines,
        ..order.clone()
    })
}

pub fn cancel(order: &Order) -> Result<Order> {
    match order.status {
        OrderStatus::Placed => Ok(Order {
            status: OrderStatus::Cancelled,
            ..order.clone()
        }),
        OrderStatus::Shipped => Err(OrderError::TooLate),
        closed => Err(OrderError::OrderClosed(closed)),
    }
}

pub fn ship(order: &Order) -> Result<Order> {
    open(order)?;
    Ok(Order {
        status: OrderStatus::Shipped,
        ..order.clone()
    })
}

pub fn deliver(order: &Order) -> Result<Order> {
    match order.status {
        OrderStatus::Shipped => Ok(Order {
            status: OrderStatus::Delivered,
            ..order.clone()
        }),
        OrderStatus::Placed => Err(OrderError::NotShipped),
        closed => Err(OrderError::OrderClosed(closed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(sku: &str) -> Option<Offer> {
        match sku {
            "A1" => Some(Offer {
                price_cents: 250,
                discontinued: false,
            }),
            "B2" => Some(Offer {
                price_cents: 1000,
                discontinued: false,
            }),
            "OLD" => Some(Offer {
                price_cents: 5,
                discontinued: true,
            }),
            _ => None,
        }
    }

    fn given_placed(lines: &[(&str, i64)]) -> Order {
        place(
            "o-1",
            "alice",
            "2026-11-22T10:00:00.000Z",
            lines.iter().copied(),
            offers,
        )
        .unwrap()
    }

    #[test]
    fn given_known_products_when_placed_then_lines_are_priced_and_merged() {
        let order = given_placed(&[("A1", 2), ("B2", 1), ("A1", 1)]);
        assert_eq!(order.lines.len(), 2);
        assert_eq!(order.lines[0].quantity, 3);
        assert_eq!(order.total_cents, 3 * 250 + 1000);
        assert_eq!(order.status, OrderStatus::Placed);
    }

    #[test]
    fn given_any_order_when_a_quantity_is_below_one_then_it_is_refused() {
        let err = |q| place("o", "c", "t", [("A1", q)], offers).unwrap_err();
        assert_eq!(err(0), OrderError::InvalidQuantity);
        assert_eq!(err(-3), OrderError::InvalidQuantity);
        assert_eq!(
            add_line(&given_placed(&[("A1", 1)]), "B2", 0, offers("B2").as_ref()),
            Err(OrderError::InvalidQuantity)
        );
    }

    #[test]
    fn given_unknown_or_discontinued_skus_when_ordered_then_they_are_refused() {
        assert_eq!(
            place("o", "c", "t", [("ZZ", 1)], offers),
            Err(OrderError::UnknownSku("ZZ".into()))
        );
        assert_eq!(
            place("o", "c", "t", [("OLD", 1)], offers),
            Err(OrderError::ProductDiscontinued("OLD".into()))
        );
        assert_eq!(place("o", "c", "t", [], offers), Err(OrderError::NoLines));
    }

    #[test]
    fn given_a_line_for_a_sku_when_the_sku_is_added_again_then_its_quantity_rises() {
        let order = add_line(&given_placed(&[("A1", 1)]), "A1", 4, offers("A1").as_ref()).unwrap();
        assert_eq!(
            order.lines,
            [Line {
                sku: "A1".into(),
                quantity: 5,
                unit_price_cents: 250
            }]
        );
        assert_eq!(order.total_cents, 1250);
    }

    #[test]
    fn given_an_order_over_the_largest_total_then_it_is_refused() {
        let offer = |price_cents| {
            move |_: &str| {
                Some(Offer {
                    price_cents,
                    discontinued: false,
                })
            }
        };
        let at_most = place(
            "o",
            "c",
            "t",
            [("A1", 10)],
            offer(MAX_ORDER_TOTAL_CENTS / 10),
        );
        assert_eq!(at_most.unwrap().total_cents, MAX_ORDER_TOTAL_CENTS);
        assert_eq!(
            place(
                "o",
                "c",
                "t",
                [("A1", 10), ("B2", 1)],
                offer(MAX_ORDER_TOTAL_CENTS / 10)
            ),
            Err(OrderError::OrderTotalTooLarge)
        );
        assert_eq!(
            place("o", "c", "t", [("A1", MAX_QUANTITY)], offer(i64::MAX)),
            Err(OrderError::OrderTotalTooLarge),
            "a price no catalog accepts does not overflow"
        );
        assert_eq!(
            place("o", "c", "t", [("A1", 1)], offer(-1)),
            Err(OrderError::OrderTotalTooLarge)
        );
        let order = given_placed(&[("A1", 1)]);
        let big = Offer {
            price_cents: MAX_ORDER_TOTAL_CENTS,
            discontinued: false,
        };
        assert_eq!(
            add_line(&order, "B2", 1, Some(&big)),
            Err(OrderError::OrderTotalTooLarge)
        );
    }

    #[test]
    fn given_a_line_when_removed_then_the_total_drops() {
        let order = remove_line(&given_placed(&[("A1", 1), ("B2", 2)]), "B2").unwrap();
        assert_eq!(order.total_cents, 250);
        assert_eq!(
            remove_line(&order, "B2"),
            Err(OrderError::LineNotFound("B2".into()))
        );
    }

    #[test]
    fn given_a_shipped_order_when_changed_or_cancelled_then_it_is_refused() {
        let shipped = ship(&given_placed(&[("A1", 1)])).unwrap();
        assert_eq!(cancel(&shipped), Err(OrderError::TooLate));
        assert_eq!(
            add_line(&shipped, "A1", 1, offers("A1").as_ref()),
            Err(OrderError::OrderClosed(OrderStatus::Shipped))
        );
        assert_eq!(
            remove_line(&shipped, "A1"),
            Err(OrderError::OrderClosed(OrderStatus::Shipped))
        );
        assert_eq!(
            ship(&shipped),
            Err(OrderError::OrderClosed(OrderStatus::Shipped))
        );
        assert_eq!(deliver(&shipped).unwrap().status, OrderStatus::Delivered);
    }

    #[test]
    fn given_a_cancelled_or_delivered_order_when_changed_then_it_is_refused() {
        let cancelled = cancel(&given_placed(&[("A1", 1)])).unwrap();
        assert_eq!(
            cancel(&cancelled),
            Err(OrderError::OrderClosed(OrderStatus::Cancelled))
        );
        assert_eq!(
            ship(&cancelled),
            Err(OrderError::OrderClosed(OrderStatus::Cancelled))
        );
        let delivered = deliver(&ship(&given_placed(&[("A1", 1)])).unwrap()).unwrap();
        assert_eq!(
            cancel(&delivered),
            Err(OrderError::OrderClosed(OrderStatus::Delivered))
        );
        assert_eq!(
            deliver(&given_placed(&[("A1", 1)])),
            Err(OrderError::NotShipped)
        );
    }
}
