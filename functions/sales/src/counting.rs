//! What an order contributes to the totals. Pure: no I/O.
//!
//! Every order event carries the order's whole state, so an order's contribution depends
//! only on its latest state; the view counts it once per order with the kit's exact
//! counters (`bulkhead::listener::counter`).

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    pub status: String,
    pub lines: Vec<Line>,
    pub placed_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub sku: String,
    pub quantity: i64,
    /// Read from `unitPrice.amountCents`: orders publish one currency.
    #[serde(rename = "unitPrice", with = "amount")]
    #[schemars(with = "amount::Price")]
    pub unit_price_cents: i64,
}

/// An amount of money as orders publish it, `{amountCents, currency}`, read as its cents.
mod amount {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Price {
        pub amount_cents: i64,
    }

    pub fn serialize<S: Serializer>(cents: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        Price {
            amount_cents: *cents,
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        Ok(Price::deserialize(deserializer)?.amount_cents)
    }
}

/// The day part of an RFC 3339 UTC timestamp.
pub fn day_of(timestamp: &str) -> Option<String> {
    let day = timestamp.get(..10)?;
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(day.to_string())
}

/// What an order in this state contributes. A cancelled order contributes nothing. `None`
/// when a figure overflows, which the orders service's limits rule out for orders it
/// accepted.
pub fn contribution(state: &OrderState, day: String) -> Option<Contribution> {
    let mut c = Contribution {
        day,
        ..Contribution::default()
    };
    if state.status == "CANCELLED" {
        return Some(c);
    }
    c.orders = 1;
    for line in &state.lines {
        let revenue = line.quantity.checked_mul(line.unit_price_cents)?;
        for amount in [c.skus.entry(line.sku.clone()).or_default(), &mut c.total] {
            amount.units = amount.units.checked_add(line.quantity)?;
            amount.revenue_cents = amount.revenue_cents.checked_add(revenue)?;
        }
    }
    Some(c)
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
        let c = contribution(&state("PLACED", &[("A", 2, 100), ("B", 1, 50)]), day()).unwrap();
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
    fn given_figures_that_overflow_then_there_is_no_contribution() {
        assert_eq!(
            contribution(&state("PLACED", &[("A", 2, i64::MAX)]), day()),
            None
        );
        let halves = [("A", 1, i64::MAX / 2 + 1), ("B", 1, i64::MAX / 2 + 1)];
        assert_eq!(contribution(&state("PLACED", &halves), day()), None);
        assert!(contribution(&state("CANCELLED", &halves), day()).is_some());
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
