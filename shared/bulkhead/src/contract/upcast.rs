//! Upcasters: where consumers read events, an event of an older `schemaVersion` is raised,
//! one version at a time, to the newest one its producer has published, so that a
//! consumer's reader handles only the newest shape. The archive keeps every old event, and a
//! replay delivers them as they were: they are raised here, on the way in.
//!
//! A producer that publishes a new version of an event adds its upcaster to [`UPCASTERS`] in
//! the same change; the contract tests fail while a committed older version has none.

use crate::event::PublicEvent;
use crate::{Error, Result};
use serde_json::{Map, Value, json};

/// Raises events of `types` from `source` from version `from` to `from + 1`.
#[derive(Clone, Copy, Debug)]
pub struct Upcaster {
    pub source: &'static str,
    pub types: &'static [&'static str],
    pub from: u32,
    /// Rewrites the event's `change` and `state`; the version is raised by [`upcast`].
    pub apply: fn(&mut PublicEvent) -> Result<()>,
}

/// Every upcaster, by producer.
pub const UPCASTERS: &[Upcaster] = &[Upcaster {
    source: "bulkhead.orders",
    types: &[
        "OrderPlaced",
        "OrderLineAdded",
        "OrderLineRemoved",
        "OrderCancelled",
        "OrderShipped",
        "OrderDelivered",
    ],
    from: 1,
    apply: orders_money_v2,
}];

/// The upcaster that raises this event type from `version`, if any.
pub fn upcaster(source: &str, event_type: &str, version: u32) -> Option<&'static Upcaster> {
    UPCASTERS
        .iter()
        .find(|u| u.source == source && u.from == version && u.types.contains(&event_type))
}

/// Raises `event` through every upcaster that applies, to the newest version they reach.
pub fn upcast(source: &str, event: &mut PublicEvent) -> Result<()> {
    while let Some(upcaster) = upcaster(source, &event.event_type, event.schema_version) {
        (upcaster.apply)(event)?;
        event.schema_version += 1;
    }
    Ok(())
}

/// Orders v1 → v2: money as `{amountCents, currency}` instead of bare cents. Version 1 had
/// one currency, US dollars.
fn orders_money_v2(event: &mut PublicEvent) -> Result<()> {
    fn money(object: &mut Map<String, Value>, cents: &str, to: &str) -> Result<()> {
        let amount = object
            .remove(cents)
            .filter(Value::is_i64)
            .ok_or_else(|| Error::Malformed(format!("v1 order money without {cents}")))?;
        object.insert(
            to.into(),
            json!({ "amountCents": amount, "currency": "USD" }),
        );
        Ok(())
    }
    fn line(line: &mut Value) -> Result<()> {
        let object = line
            .as_object_mut()
            .ok_or_else(|| Error::Malformed("a v1 order line that is not an object".into()))?;
        money(object, "unitPriceCents", "unitPrice")
    }
    fn lines(value: &mut Value) -> Result<()> {
        match value.get_mut("lines").and_then(Value::as_array_mut) {
            Some(lines) => lines.iter_mut().try_for_each(line),
            None => Err(Error::Malformed("v1 order without lines".into())),
        }
    }
    let state = event
        .state
        .as_object_mut()
        .ok_or_else(|| Error::Malformed("v1 order event without a state".into()))?;
    money(state, "totalCents", "total")?;
    lines(&mut event.state)?;
    match event.event_type.as_str() {
        "OrderPlaced" => lines(&mut event.change)?,
        "OrderLineAdded" | "OrderLineRemoved" => match event.change.get_mut("line") {
            Some(changed) => line(changed)?,
            None => return Err(Error::Malformed("v1 line change without a line".into())),
        },
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AggregateRef;

    fn event(event_type: &str, version: u32, change: Value, state: Value) -> PublicEvent {
        let aggregate = AggregateRef {
            kind: "order".into(),
            id: "o-1".into(),
            version: 2,
        };
        let mut event = PublicEvent::new(event_type, aggregate, "t".into());
        event.schema_version = version;
        event.change = change;
        event.state = state;
        event
    }

    fn state_v1() -> Value {
        json!({ "id": "o-1", "totalCents": 300, "lines": [{ "sku": "A1", "quantity": 3, "unitPriceCents": 100 }] })
    }

    #[test]
    fn a_v1_order_event_is_raised_to_v2_and_a_v2_one_is_left_alone() {
        let mut added = event(
            "OrderLineAdded",
            1,
            json!({ "line": { "sku": "A1", "quantity": 1, "unitPriceCents": 100 } }),
            state_v1(),
        );
        upcast("bulkhead.orders", &mut added).unwrap();
        assert_eq!(added.schema_version, 2);
        assert_eq!(
            added.state,
            json!({ "id": "o-1", "total": { "amountCents": 300, "currency": "USD" },
                    "lines": [{ "sku": "A1", "quantity": 3, "unitPrice": { "amountCents": 100, "currency": "USD" } }] })
        );
        assert_eq!(
            added.change["line"]["unitPrice"],
            json!({ "amountCents": 100, "currency": "USD" })
        );
        let raised = added.clone();
        upcast("bulkhead.orders", &mut added).unwrap();
        assert_eq!(added, raised, "v2 is the newest");
        let mut product = event("ProductCreated", 1, json!({}), json!({}));
        upcast("bulkhead.catalog", &mut product).unwrap();
        assert_eq!(product.schema_version, 1);
    }

    #[test]
    fn a_v1_order_event_without_its_money_fails() {
        let mut shipped = event(
            "OrderShipped",
            1,
            json!({}),
            json!({ "id": "o-1", "lines": [] }),
        );
        assert!(upcast("bulkhead.orders", &mut shipped).is_err());
    }
}
