//! Money limits: no order the orders service accepts can make a sales figure overflow, or
//! pass 2^53 − 1 (the largest integer a JavaScript client reads exactly), within a bound of
//! orders per day that a real shop does not reach.

use bulkhead::embedded::{Database, TableSpec};
use bulkhead::event::{AggregateRef, PublicEvent};
use bulkhead::listener::Delivered;
use bulkhead::store::embedded::EmbeddedTable;
use bulkhead::store::{AttributeValue, Table};
use catalog::domain::MAX_PRICE_CENTS;
use orders::domain::{
    MAX_LINES, MAX_ORDER_TOTAL_CENTS, MAX_QUANTITY, Offer, Order, OrderError, place,
};
use proptest::prelude::*;
use sales::counting::{OrderState, contribution, day_of};
use std::sync::Arc;

/// The largest integer that a JSON number carries exactly to a JavaScript client.
const SAFE: i64 = (1 << 53) - 1;
/// The bound of orders a UTC day that the sales figures are sized for. At the largest order
/// total, 9,007,199 orders a day reach 2^53.
const ORDERS_A_DAY: i64 = 1_000_000;

fn placed(lines: &[(i64, i64)]) -> Result<Order, OrderError> {
    let skus: Vec<String> = (0..lines.len()).map(|n| format!("S{n}")).collect();
    let price = |sku: &str| {
        let n: usize = sku[1..].parse().unwrap();
        Some(Offer {
            price_cents: lines[n].1,
            discontinued: false,
        })
    };
    place(
        "o-1",
        "c",
        "2026-11-22T10:00:00.000Z",
        skus.iter().zip(lines).map(|(s, &(q, _))| (s.as_str(), q)),
        price,
    )
}

fn state_of(order: &Order) -> OrderState {
    let public = orders::events::PublicOrder::from(order);
    serde_json::from_value(serde_json::to_value(public).unwrap()).unwrap()
}

/// Prices and quantities that cluster at the limits: the extremes, and anything between.
fn extreme(max: i64) -> impl Strategy<Value = i64> {
    prop_oneof![Just(max), Just(1), max - 10..=max, 1..=max]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn no_accepted_order_can_overflow_a_day(
        lines in prop::collection::vec((extreme(MAX_QUANTITY), extreme(MAX_PRICE_CENTS)), 1..=MAX_LINES)
    ) {
        let Ok(order) = placed(&lines) else {
            // Refused at the command: 422 order-total-too-large.
            let total: i128 = lines.iter().map(|&(q, p)| q as i128 * p as i128).sum();
            prop_assert!(total > MAX_ORDER_TOTAL_CENTS as i128);
            return Ok(());
        };
        prop_assert!(order.total_cents <= MAX_ORDER_TOTAL_CENTS);
        let c = contribution(&state_of(&order), "2026-11-22".into()).expect("no overflow");
        prop_assert_eq!(c.total.revenue_cents, order.total_cents);
        prop_assert!(c.total.units <= MAX_LINES as i64 * MAX_QUANTITY);
        // A day's totals are sums of at most ORDERS_A_DAY such contributions; a sku's are
        // parts of them.
        for figure in [c.orders, c.total.units, c.total.revenue_cents] {
            prop_assert!(figure.checked_mul(ORDERS_A_DAY).is_some_and(|d| d <= SAFE));
        }
    }
}

#[test]
fn the_bounds_leave_room_for_every_figure() {
    const {
        assert!(MAX_ORDER_TOTAL_CENTS * ORDERS_A_DAY <= SAFE);
        assert!(MAX_LINES as i64 * MAX_QUANTITY * ORDERS_A_DAY <= SAFE);
        assert!(MAX_PRICE_CENTS <= MAX_ORDER_TOTAL_CENTS);
    }
    // The reproduction: 50 lines of 10,000 at the highest price is refused.
    assert_eq!(
        placed(&vec![(MAX_QUANTITY, MAX_PRICE_CENTS); MAX_LINES]).unwrap_err(),
        OrderError::OrderTotalTooLarge
    );
}

/// Many orders at the largest total through the sales view itself: every one counts, and
/// the day's revenue is exact.
#[tokio::test]
async fn the_sales_view_counts_orders_at_the_largest_total() {
    let table: Arc<dyn Table> = Arc::new(EmbeddedTable::new(
        Database::open_in_memory().unwrap(),
        TableSpec {
            name: "Sales".into(),
            ..TableSpec::default()
        },
    ));
    let per_line = MAX_ORDER_TOTAL_CENTS / MAX_LINES as i64 / MAX_QUANTITY;
    let order = placed(&vec![(MAX_QUANTITY, per_line); MAX_LINES]).unwrap();
    assert_eq!(order.total_cents, MAX_ORDER_TOTAL_CENTS);
    let state = state_of(&order);
    let orders = 300;
    for n in 0..orders {
        let mut event = PublicEvent::new(
            "OrderPlaced",
            AggregateRef {
                kind: "order".into(),
                id: format!("o-{n}"),
                version: 1,
            },
            order.placed_at.clone(),
        );
        event.state = serde_json::to_value(&state).unwrap();
        let delivered = Delivered {
            source: "bulkhead.orders".into(),
            detail_type: event.event_type.clone(),
            detail: event,
            replay_name: None,
        };
        sales::view::apply(table.clone(), delivered, state.clone())
            .await
            .unwrap();
    }
    let day = day_of(&order.placed_at).unwrap();
    let item = table
        .get(&sales::view::day_key(&day))
        .await
        .unwrap()
        .unwrap();
    let revenue = (orders * MAX_ORDER_TOTAL_CENTS).to_string();
    assert_eq!(item.get("revenueCents"), Some(&AttributeValue::N(revenue)));
}
