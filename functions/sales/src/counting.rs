//! What an order contributes to the totals, and the difference between two contributions.
//! Pure: no I/O.
//!
//! Every order event carries the order's whole state, so an order's contribution depends
//! only on its latest state. The view keeps, per order, the version it applied and that
//! version's contribution; a newer event applies the difference, an older or repeated one
//! nothing. Any delivery order and any number of duplicates therefore end at the totals of
//! an in-order, exactly-once run.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Units and revenue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Amount {
    pub units: i64,
    pub revenue_cents: i64,
}

/// One order's share of the totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contribution {
    /// The UTC day the order was placed: it counts on that day.
    pub day: String,
    pub orders: i64,
    pub total: Amount,
    pub skus: BTreeMap<String, Amount>,
}

/// What sales reads of an order's public state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    pub status: String,
    pub lines: Vec<Line>,
    pub placed_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub sku: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// The day part of an RFC 3339 UTC timestamp.
pub fn day_of(timestamp: &str) -> Option<String> {
    let day = timestamp.get(..10)?;
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(day.to_string())
}

/// What an order in this state contributes. A cancelled order contributes nothing.
pub fn contribution(state: &OrderState, day: String) -> Contribution {
    let mut c = Contribution {
        day,
        ..Contribution::default()
    };
    if state.status == "CANCELLED" {
        return c;
    }
    c.orders = 1;
    for line in &state.lines {
        let amount = c.skus.entry(line.sku.clone()).or_default();
        amount.units += line.quantity;
        amount.revenue_cents += line.quantity * line.unit_price_cents;
        c.total.units += line.quantity;
        c.total.revenue_cents += line.quantity * line.unit_price_cents;
    }
    c
}

/// A change to one counter item: a day's totals (`sku` is `None`) or a day's sku.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    pub day: String,
    pub sku: Option<String>,
    pub orders: i64,
    pub amount: Amount,
}

/// The changes that turn `old`'s share of the totals into `new`'s. Zero changes are left out.
pub fn difference(old: &Contribution, new: &Contribution) -> Vec<Delta> {
    let mut deltas: BTreeMap<(String, Option<String>), Delta> = BTreeMap::new();
    for (sign, c) in [(-1, old), (1, new)] {
        let mut add = |sku: Option<String>, orders: i64, amount: Amount| {
            let d = deltas
                .entry((c.day.clone(), sku.clone()))
                .or_insert_with(|| Delta {
                    day: c.day.clone(),
                    sku,
                    orders: 0,
                    amount: Amount::default(),
                });
            d.orders += sign * orders;
            d.amount.units += sign * amount.units;
            d.amount.revenue_cents += sign * amount.revenue_cents;
        };
        add(None, c.orders, c.total);
        for (sku, amount) in &c.skus {
            add(Some(sku.clone()), 0, *amount);
        }
    }
    deltas
        .into_values()
        .filter(|d| d.orders != 0 || d.amount != Amount::default())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: &str, lines: &[(&str, i64, i64)]) -> OrderState {
        OrderState {
            status: status.into(),
            lines: lines
                .iter()
                .map(|&(sku, q, p)| Line {
                    sku: sku.into(),
                    quantity: q,
                    unit_price_cents: p,
                })
                .collect(),
            placed_at: "2026-11-22T10:00:00.000Z".into(),
        }
    }

    fn day() -> String {
        "2026-11-22".into()
    }

    #[test]
    fn given_a_placed_order_then_it_counts_once_with_its_lines() {
        let c = contribution(&state("PLACED", &[("A", 2, 100), ("B", 1, 50)]), day());
        assert_eq!(
            (c.orders, c.total.units, c.total.revenue_cents),
            (1, 3, 250)
        );
        assert_eq!(
            c.skus["A"],
            Amount {
                units: 2,
                revenue_cents: 200
            }
        );
    }

    #[test]
    fn given_a_cancellation_then_the_contribution_is_taken_back() {
        let placed = contribution(&state("PLACED", &[("A", 2, 100)]), day());
        let cancelled = contribution(&state("CANCELLED", &[("A", 2, 100)]), day());
        let d = difference(&placed, &cancelled);
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0],
            Delta {
                day: day(),
                sku: None,
                orders: -1,
                amount: Amount {
                    units: -2,
                    revenue_cents: -200
                }
            }
        );
    }

    #[test]
    fn given_a_line_added_then_only_that_sku_and_the_day_change() {
        let before = contribution(&state("PLACED", &[("A", 2, 100)]), day());
        let after = contribution(&state("PLACED", &[("A", 2, 100), ("B", 1, 50)]), day());
        let d = difference(&before, &after);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].orders, 0);
        assert_eq!(d[1].sku.as_deref(), Some("B"));
    }

    #[test]
    fn given_a_bad_timestamp_then_there_is_no_day() {
        assert_eq!(
            day_of("2026-11-22T10:00:00Z").as_deref(),
            Some("2026-11-22")
        );
        assert_eq!(day_of("yesterday"), None);
        assert_eq!(day_of("2026-13-40T00:00:00Z"), None);
    }
}
