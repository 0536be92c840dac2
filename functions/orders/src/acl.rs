//! The orders service's anti-corruption layer: the only place that decides what is published.

use crate::domain::{Line, Order, OrderStatus};
use crate::events::{LineChange, OrderChange, Placed, PublicLine, PublicOrder, StatusChange};
use bulkhead::command::Versioned;
use bulkhead::event::{EventSet, EventToPublish};
use bulkhead::trigger::{Change, ChangeKind, History, ImageTypes};

pub const ORDER_PREFIX: &str = "ORDER#";

/// What [`acl`] reads the images of its items as: the trigger reads them so as it reads
/// each batch.
pub const IMAGES: ImageTypes<Versioned<Order>, Before> = ImageTypes::under(ORDER_PREFIX);

/// Every event this service publishes: the trigger publishes nothing else.
pub const PUBLISHES: EventSet = EventSet {
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

/// Maps a change of the orders table to its public event, if it has one. Catalog cache
/// entries and idempotency records are internal and map to none.
pub fn acl(change: Change) -> bulkhead::Result<Option<EventToPublish>> {
    if change.kind == ChangeKind::Remove || !change.pk().starts_with(ORDER_PREFIX) {
        return Ok(None);
    }
    let Some(new) = change.new_as::<Versioned<Order>>()? else {
        return Ok(None);
    };
    let old = change.old_as::<Before>()?;
    let Some((event_type, what_changed)) = describe(old.as_ref(), &new.state) else {
        return Ok(None);
    };
    let state = PublicOrder::from(&new.state);
    let mut event = new.event(event_type, "order", &new.state.id, &what_changed, &state)?;
    event.schema_version = crate::events::VERSION;
    Ok(Some(event))
}

/// Two orders' histories that make every event this service publishes: what consumers'
/// tests and the Lambda fixtures start from.
pub fn samples() -> bulkhead::Result<Vec<History>> {
    use crate::domain::{self, Offer};
    let at = "2026-11-22T10:00:00.000Z";
    let offer = |_: &str| {
        Some(Offer {
            price_cents: 1250,
            discontinued: false,
        })
    };
    let rule = |e: domain::OrderError| bulkhead::Error::Malformed(e.to_string());
    let placed = domain::place("o-sample-1", "alice", at, [("A1", 2)], offer).map_err(rule)?;
    let more = domain::add_line(&placed, "B2", 1, offer("B2").as_ref()).map_err(rule)?;
    let fewer = domain::remove_line(&more, "B2").map_err(rule)?;
    let shipped = domain::ship(&fewer).map_err(rule)?;
    let delivered = domain::deliver(&shipped).map_err(rule)?;
    let other = domain::place("o-sample-2", "bob", at, [("A1", 1)], offer).map_err(rule)?;
    let cancelled = domain::cancel(&other).map_err(rule)?;
    [
        vec![placed, more, fewer, shipped, delivered],
        vec![other, cancelled],
    ]
    .into_iter()
    .map(|history| {
        let pk = format!("{ORDER_PREFIX}{}", history[0].id);
        Versioned::history(&pk, at, history)
    })
    .collect()
}

/// What `describe` reads of the order before a change: the rest of its image is passed
/// over, not read into strings (half the records are changes, with two images each).
#[derive(serde::Deserialize)]
pub struct Before {
    status: OrderStatus,
    lines: Vec<Line>,
}

/// The event type and change between two states of an order. Each command changes one thing.
fn describe(old: Option<&Before>, new: &Order) -> Option<(&'static str, OrderChange)> {
    let Some(old) = old else {
        let lines = new.lines.iter().map(PublicLine::from).collect();
        return Some(("OrderPlaced", OrderChange::Placed(Placed { lines })));
    };
    if old.status != new.status {
        let event_type = match new.status {
            OrderStatus::Cancelled => "OrderCancelled",
            OrderStatus::Shipped => "OrderShipped",
            OrderStatus::Delivered => "OrderDelivered",
            OrderStatus::Placed => return None,
        };
        let change = StatusChange {
            status: new.status,
            previous_status: old.status,
        };
        return Some((event_type, OrderChange::Status(change)));
    }
    let quantity = |lines: &[Line], sku: &str| {
        lines
            .iter()
            .find(|l| l.sku == sku)
            .map_or(0, |l| l.quantity)
    };
    if let Some(added) = new
        .lines
        .iter()
        .find(|l| l.quantity > quantity(&old.lines, &l.sku))
    {
        let line = Line {
            quantity: added.quantity - quantity(&old.lines, &added.sku),
            ..added.clone()
        };
        let line = PublicLine::from(&line);
        return Some(("OrderLineAdded", OrderChange::Line(LineChange { line })));
    }
    if let Some(removed) = old.lines.iter().find(|l| quantity(&new.lines, &l.sku) == 0) {
        let line = PublicLine::from(removed);
        return Some(("OrderLineRemoved", OrderChange::Line(LineChange { line })));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{self, Offer};
    use bulkhead::event::PublicEvent;
    use bulkhead::store::{Item, Key, to_item};
    use bulkhead::trigger::Image;

    /// The ACL's event, as listeners read it.
    fn acl(change: Change) -> bulkhead::Result<Option<PublicEvent>> {
        super::acl(change)?.map(|event| event.parsed()).transpose()
    }

    fn record(version: u64, order: &Order) -> Item {
        to_item(&Versioned {
            pk: format!("ORDER#{}", order.id),
            sk: "#".into(),
            version,
            updated_at: "2026-11-22T10:00:00.000Z".into(),
            correlation_id: Some("corr".into()),
            causation_id: Some("req".into()),
            state: order.clone(),
        })
        .unwrap()
    }

    fn image(item: &Item) -> Image {
        Image::of(item).unwrap()
    }

    fn offer(_: &str) -> Option<Offer> {
        Some(Offer {
            price_cents: 100,
            discontinued: false,
        })
    }

    fn published(old: Option<(u64, &Order)>, new: (u64, &Order)) -> PublicEvent {
        let change = Change {
            kind: if old.is_some() {
                ChangeKind::Modify
            } else {
                ChangeKind::Insert
            },
            key: Key::new("ORDER#o-1", "#"),
            old: old.map(|(v, o)| image(&record(v, o))),
            new: Some(image(&record(new.0, new.1))),
        };
        acl(change).unwrap().expect("an event")
    }

    #[test]
    fn every_command_becomes_its_event_with_state_and_change() {
        let placed = domain::place("o-1", "alice", "t", [("A1", 2)], offer).unwrap();
        let event = published(None, (1, &placed));
        assert_eq!(
            (event.event_type.as_str(), event.aggregate.version),
            ("OrderPlaced", 1)
        );
        assert_eq!(event.state["customerId"], "alice");
        assert_eq!(event.schema_version, 2);
        assert_eq!(event.state["total"]["amountCents"], 200);
        assert_eq!(event.state["total"]["currency"], "USD");

        let more = domain::add_line(&placed, "A1", 3, offer("A1").as_ref()).unwrap();
        let event = published(Some((1, &placed)), (2, &more));
        assert_eq!(event.event_type, "OrderLineAdded");
        assert_eq!(event.change["line"]["quantity"], 3);

        let fewer = domain::remove_line(&more, "A1").unwrap();
        assert_eq!(
            published(Some((2, &more)), (3, &fewer)).event_type,
            "OrderLineRemoved"
        );

        let shipped = domain::ship(&placed).unwrap();
        assert_eq!(
            published(Some((1, &placed)), (2, &shipped)).event_type,
            "OrderShipped"
        );
        let delivered = domain::deliver(&shipped).unwrap();
        assert_eq!(
            published(Some((2, &shipped)), (3, &delivered)).event_type,
            "OrderDelivered"
        );
        let cancelled = domain::cancel(&placed).unwrap();
        let event = published(Some((1, &placed)), (2, &cancelled));
        assert_eq!(event.event_type, "OrderCancelled");
        assert_eq!(event.id, "order:o-1:2");
    }

    #[test]
    fn cache_entries_and_idempotency_records_are_never_published() {
        for pk in ["PRODUCT#A1", "IDEMPOTENCY#alice#k"] {
            let mut item = Key::new(pk, "#").to_item();
            item.insert(
                "version".into(),
                bulkhead::store::AttributeValue::N("1".into()),
            );
            let change = Change {
                kind: ChangeKind::Insert,
                key: Key::new(pk, "#"),
                old: None,
                new: Some(image(&item)),
            };
            assert!(acl(change).unwrap().is_none(), "{pk} was published");
        }
    }

    #[test]
    fn a_malformed_order_image_is_an_error_not_an_event() {
        let mut item = Key::new("ORDER#o-1", "#").to_item();
        item.insert(
            "version".into(),
            bulkhead::store::AttributeValue::S("not a number".into()),
        );
        let change = Change {
            kind: ChangeKind::Insert,
            key: Key::new("ORDER#o-1", "#"),
            old: None,
            new: Some(image(&item)),
        };
        assert!(acl(change).is_err());
    }
}
