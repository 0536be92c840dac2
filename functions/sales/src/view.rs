//! The sales table: per-order bookkeeping and the counters it keeps exact.
//!
//! - `ORDER#<id>`: the version applied and its [`Contribution`];
//! - `MONTH#<yyyy-mm>` / `DAY#<yyyy-mm-dd>`: a day's `orders`, `units`, `revenueCents`;
//! - `DAY#<yyyy-mm-dd>` / `SKU#<sku>`: a day's `units` and `revenueCents` for one sku.
//!
//! The kit's exact counters commit an order's bookkeeping and its counter increments in one
//! transaction, so nothing counts twice.

use crate::counting::{Contribution, OrderState, contribution, day_of};
use bulkhead::event::EventSet;
use bulkhead::listener::Delivered;
use bulkhead::listener::counter::{Counter, Share, count_once};
use bulkhead::store::{AttributeValue, Item, Key, Table};
use bulkhead::{Error, Result};
use std::sync::Arc;

pub const ORDER_PREFIX: &str = "ORDER#";

/// Every order event: each carries the order's state, which is all that counting needs.
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

pub fn day_key(day: &str) -> Key {
    Key::new(format!("MONTH#{}", &day[..7]), format!("DAY#{day}"))
}

pub fn sku_key(day: &str, sku: &str) -> Key {
    Key::new(format!("DAY#{day}"), format!("SKU#{sku}"))
}

fn labels(pairs: &[(&str, &str)]) -> Item {
    let labels: std::collections::HashMap<_, _> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string())))
        .collect();
    labels.into()
}

impl Share for Contribution {
    fn counters(&self) -> Vec<Counter> {
        let day = Counter {
            key: day_key(&self.day),
            labels: labels(&[("day", &self.day)]),
            amounts: vec![
                ("orders", self.orders),
                ("units", self.total.units),
                ("revenueCents", self.total.revenue_cents),
            ],
        };
        let skus = self.skus.iter().map(|(sku, amount)| Counter {
            key: sku_key(&self.day, sku),
            labels: labels(&[("day", &self.day), ("sku", sku)]),
            amounts: vec![
                ("units", amount.units),
                ("revenueCents", amount.revenue_cents),
            ],
        });
        std::iter::once(day).chain(skus).collect()
    }
}

/// Counts an order's newest state, once.
pub async fn apply(table: Arc<dyn Table>, event: Delivered, order: OrderState) -> Result<()> {
    let day = day_of(&order.placed_at)
        .ok_or_else(|| Error::Malformed(format!("placedAt {:?}", order.placed_at)))?;
    let aggregate = &event.detail.aggregate;
    let share = contribution(&order, day)
        .ok_or_else(|| Error::Malformed(format!("order {} overflows the totals", aggregate.id)))?;
    let bookkeeping = Key::new(format!("{ORDER_PREFIX}{}", aggregate.id), "#");
    count_once(table.as_ref(), bookkeeping, aggregate.version, share).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting::{Amount, Line};
    use bulkhead::embedded::{Database, TableSpec};
    use bulkhead::event::{AggregateRef, PublicEvent};
    use bulkhead::listener::counter::difference;
    use bulkhead::store::embedded::EmbeddedTable;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn delivered(id: &str, version: u64, state: &OrderState) -> Delivered {
        let mut event = PublicEvent::new(
            "OrderLineAdded",
            AggregateRef {
                kind: "order".into(),
                id: id.into(),
                version,
            },
            state.placed_at.clone(),
        );
        event.state = serde_json::to_value(state).unwrap();
        Delivered {
            source: "bulkhead.orders".into(),
            detail_type: event.event_type.clone(),
            detail: event,
            replay_name: None,
        }
    }

    /// Random order histories: each order's successive public states.
    fn histories() -> impl Strategy<Value = Vec<Vec<OrderState>>> {
        let line = (0usize..4, 1i64..5).prop_map(|(sku, quantity)| Line {
            sku: ["A", "B", "C", "D"][sku].into(),
            quantity,
            unit_price_cents: [100, 250, 999, 5][sku],
        });
        let state = (prop::collection::vec(line, 0..4), 0usize..10, 0usize..3).prop_map(
            |(mut lines, status, day)| {
                lines.sort_by(|a, b| a.sku.cmp(&b.sku));
                lines.dedup_by(|a, b| a.sku == b.sku);
                OrderState {
                    status: if status == 0 { "CANCELLED" } else { "PLACED" }.into(),
                    lines,
                    placed_at: format!("2026-11-{:02}T10:00:00.000Z", 20 + day),
                }
            },
        );
        prop::collection::vec(prop::collection::vec(state, 1..6), 1..6).prop_map(|orders| {
            // An order is placed on one day; its later states keep that day.
            orders
                .into_iter()
                .map(|mut states| {
                    let placed_at = states[0].placed_at.clone();
                    states
                        .iter_mut()
                        .for_each(|s| s.placed_at = placed_at.clone());
                    states
                })
                .collect()
        })
    }

    type Totals = BTreeMap<String, (i64, i64, i64)>;

    fn expected(orders: &[Vec<OrderState>]) -> (Totals, BTreeMap<(String, String), Amount>) {
        let mut days = Totals::new();
        let mut skus = BTreeMap::new();
        for states in orders {
            let last = states.last().unwrap();
            let c = crate::counting::contribution(last, day_of(&last.placed_at).unwrap()).unwrap();
            let d = days.entry(c.day.clone()).or_default();
            d.0 += c.orders;
            d.1 += c.total.units;
            d.2 += c.total.revenue_cents;
            for (sku, amount) in c.skus {
                let s: &mut Amount = skus.entry((c.day.clone(), sku)).or_default();
                s.units += amount.units;
                s.revenue_cents += amount.revenue_cents;
            }
        }
        (days, skus)
    }

    async fn actual(
        table: &dyn Table,
        days: &[String],
        skus: &[String],
    ) -> (Totals, BTreeMap<(String, String), Amount>) {
        let number = |item: &Item, name: &str| match item.get(name) {
            Some(AttributeValue::N(n)) => n.parse::<i64>().unwrap(),
            _ => 0,
        };
        let mut day_totals = Totals::new();
        let mut sku_totals = BTreeMap::new();
        for day in days {
            if let Some(item) = table.get(&day_key(day)).await.unwrap() {
                day_totals.insert(
                    day.clone(),
                    (
                        number(&item, "orders"),
                        number(&item, "units"),
                        number(&item, "revenueCents"),
                    ),
                );
            }
            for sku in skus {
                if let Some(item) = table.get(&sku_key(day, sku)).await.unwrap() {
                    let amount = Amount {
                        units: number(&item, "units"),
                        revenue_cents: number(&item, "revenueCents"),
                    };
                    sku_totals.insert((day.clone(), sku.clone()), amount);
                }
            }
        }
        (day_totals, sku_totals)
    }

    fn without_zeros(
        t: (Totals, BTreeMap<(String, String), Amount>),
    ) -> (Totals, BTreeMap<(String, String), Amount>) {
        let (mut days, mut skus) = t;
        days.retain(|_, v| *v != (0, 0, 0));
        skus.retain(|_, v| *v != Amount::default());
        (days, skus)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn totals_are_exact_under_duplication_and_reordering(
            orders in histories(),
            duplicates in prop::collection::vec(0usize..1000, 0..20),
            seed in any::<u64>(),
        ) {
            let mut deliveries = vec![];
            for (n, states) in orders.iter().enumerate() {
                for (v, state) in states.iter().enumerate() {
                    deliveries.push(delivered(&format!("o-{n}"), v as u64 + 1, state));
                }
            }
            for d in duplicates {
                deliveries.push(deliveries[d % deliveries.len()].clone());
            }
            // A seeded Fisher-Yates shuffle, so that a failure reproduces from its seed.
            let mut state = seed | 1;
            for i in (1..deliveries.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                deliveries.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let table: Arc<dyn Table> = Arc::new(EmbeddedTable::new(Database::open_in_memory().unwrap(), TableSpec { name: "Sales".into(), ..TableSpec::default() }));
            let days: Vec<String> = (20..23).map(|d| format!("2026-11-{d}")).collect();
            let skus: Vec<String> = ["A", "B", "C", "D"].map(String::from).to_vec();
            let got = runtime.block_on(async {
                for d in &deliveries {
                    apply(table.clone(), d.clone(), d.detail.state_as().unwrap()).await.unwrap();
                }
                actual(table.as_ref(), &days, &skus).await
            });
            prop_assert_eq!(without_zeros(got), without_zeros(expected(&orders)));
        }
    }

    #[tokio::test]
    async fn concurrent_events_of_one_order_count_once() {
        let table: Arc<dyn Table> = Arc::new(EmbeddedTable::new(
            Database::open_in_memory().unwrap(),
            TableSpec {
                name: "Sales".into(),
                ..TableSpec::default()
            },
        ));
        let placed = OrderState {
            status: "PLACED".into(),
            lines: vec![Line {
                sku: "A".into(),
                quantity: 2,
                unit_price_cents: 100,
            }],
            placed_at: "2026-11-22T10:00:00.000Z".into(),
        };
        let mut more = placed.clone();
        more.lines[0].quantity = 5;
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let table = table.clone();
                let d = if i % 2 == 0 {
                    delivered("o-1", 1, &placed)
                } else {
                    delivered("o-1", 2, &more)
                };
                let state = d.detail.state_as().unwrap();
                tokio::spawn(async move { apply(table, d, state).await })
            })
            .collect();
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let item = table.get(&day_key("2026-11-22")).await.unwrap().unwrap();
        assert_eq!(item.get("units"), Some(&AttributeValue::N("5".into())));
        assert_eq!(item.get("orders"), Some(&AttributeValue::N("1".into())));
    }

    fn counted(status: &str, lines: &[(&str, i64)]) -> Vec<Counter> {
        let state = OrderState {
            status: status.into(),
            lines: lines
                .iter()
                .map(|&(sku, quantity)| Line {
                    sku: sku.into(),
                    quantity,
                    unit_price_cents: 100,
                })
                .collect(),
            placed_at: "2026-11-22T10:00:00.000Z".into(),
        };
        contribution(&state, "2026-11-22".into())
            .unwrap()
            .counters()
    }

    fn amounts(d: &[Counter], key: Key) -> Vec<(&'static str, i64)> {
        d.iter().find(|c| c.key == key).unwrap().amounts.clone()
    }

    #[test]
    fn given_a_cancellation_then_the_contribution_is_taken_back() {
        let d = difference(
            &counted("PLACED", &[("A", 2)]),
            &counted("CANCELLED", &[("A", 2)]),
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            amounts(&d, day_key("2026-11-22")),
            [("orders", -1), ("revenueCents", -200), ("units", -2)]
        );
        assert_eq!(
            amounts(&d, sku_key("2026-11-22", "A")),
            [("revenueCents", -200), ("units", -2)]
        );
    }

    #[test]
    fn given_a_line_added_then_only_that_sku_and_the_day_change() {
        let d = difference(
            &counted("PLACED", &[("A", 2)]),
            &counted("PLACED", &[("A", 2), ("B", 1)]),
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            amounts(&d, day_key("2026-11-22")),
            [("revenueCents", 100), ("units", 1)]
        );
        assert_eq!(
            amounts(&d, sku_key("2026-11-22", "B")),
            [("revenueCents", 100), ("units", 1)]
        );
    }
}
