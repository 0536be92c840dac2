//! The catalog's anti-corruption layer: the only place that decides what is published.

use crate::domain::{Product, ProductStatus};
use crate::events::{ProductChanges, StatusChange};
use bulkhead::command::Versioned;
use bulkhead::event::{EventSet, EventToPublish};
use bulkhead::trigger::{Change, ChangeKind, History, ImageTypes};

pub const PRODUCT_PREFIX: &str = "PRODUCT#";

/// What [`acl`] reads the images of its items as: the trigger reads them so as it reads
/// each batch.
pub const IMAGES: ImageTypes<Versioned<Product>, Versioned<Product>> =
    ImageTypes::under(PRODUCT_PREFIX);

/// Every event this service publishes: the trigger publishes nothing else.
pub const PUBLISHES: EventSet = EventSet {
    source: "bulkhead.catalog",
    types: &["ProductCreated", "ProductUpdated", "ProductDiscontinued"],
};

/// Maps a change of the catalog table to its public event, if it has one.
pub fn acl(change: Change) -> bulkhead::Result<Option<EventToPublish>> {
    if change.kind == ChangeKind::Remove || !change.pk().starts_with(PRODUCT_PREFIX) {
        return Ok(None);
    }
    let (old, new) = change.images_as::<Versioned<Product>>()?;
    let Some(new) = new else {
        return Ok(None);
    };
    let (event_type, what_changed) = match old.map(|o| o.state) {
        None => (
            "ProductCreated",
            serde_json::value::to_raw_value(&new.state)?,
        ),
        Some(old)
            if old.status == ProductStatus::Active
                && new.state.status == ProductStatus::Discontinued =>
        {
            let change = StatusChange {
                status: new.state.status,
            };
            (
                "ProductDiscontinued",
                serde_json::value::to_raw_value(&change)?,
            )
        }
        Some(old) if old != new.state => {
            let change = ProductChanges {
                name: (old.name != new.state.name).then(|| new.state.name.clone()),
                price_cents: (old.price_cents != new.state.price_cents)
                    .then_some(new.state.price_cents),
            };
            ("ProductUpdated", serde_json::value::to_raw_value(&change)?)
        }
        Some(_) => return Ok(None),
    };
    let event = new.event(
        event_type,
        "product",
        &new.state.sku,
        &what_changed,
        &new.state,
    )?;
    Ok(Some(event))
}

/// A product's history that makes every event this service publishes: what consumers'
/// tests and the Lambda fixtures start from.
pub fn samples() -> bulkhead::Result<Vec<History>> {
    use crate::domain;
    let rule = |e: domain::CatalogError| bulkhead::Error::Malformed(e.to_string());
    let created = domain::put(None, "A1", "Anchor", 1250).map_err(rule)?;
    let updated = domain::put(created.as_ref(), "A1", "Anchor", 1500).map_err(rule)?;
    let discontinued = domain::discontinue(updated.as_ref()).map_err(rule)?;
    let history: Vec<_> = [created, updated, discontinued]
        .into_iter()
        .flatten()
        .collect();
    let pk = format!("{PRODUCT_PREFIX}A1");
    Ok(vec![Versioned::history(
        &pk,
        "2026-11-22T10:00:00.000Z",
        history,
    )?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead::event::PublicEvent;
    use bulkhead::store::to_item;
    use bulkhead::trigger::Image;
    use serde_json::json;

    /// The ACL's event, as listeners read it.
    fn acl(change: Change) -> bulkhead::Result<Option<PublicEvent>> {
        super::acl(change)?.map(|event| event.parsed()).transpose()
    }

    fn record(version: u64, price: i64, status: ProductStatus) -> bulkhead::store::Item {
        to_item(&Versioned {
            pk: "PRODUCT#A1".into(),
            sk: "#".into(),
            version,
            updated_at: "2026-11-22T10:00:00.000Z".into(),
            correlation_id: Some("corr".into()),
            causation_id: Some("req".into()),
            state: Product {
                sku: "A1".into(),
                name: "Anchor".into(),
                price_cents: price,
                status,
            },
        })
        .unwrap()
    }

    fn change(
        kind: ChangeKind,
        old: Option<bulkhead::store::Item>,
        new: Option<bulkhead::store::Item>,
    ) -> Change {
        let image = new.as_ref().or(old.as_ref()).unwrap();
        let key = bulkhead::store::Key::of(image).unwrap();
        let image = |item: Option<bulkhead::store::Item>| item.map(|i| Image::of(&i).unwrap());
        Change {
            kind,
            key,
            old: image(old),
            new: image(new),
        }
    }

    #[test]
    fn inserts_updates_and_discontinuations_become_their_events() {
        let created = acl(change(
            ChangeKind::Insert,
            None,
            Some(record(1, 100, ProductStatus::Active)),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(created.event_type, "ProductCreated");
        assert_eq!(created.aggregate.version, 1);
        assert_eq!(created.correlation_id.as_deref(), Some("corr"));
        let updated = acl(change(
            ChangeKind::Modify,
            Some(record(1, 100, ProductStatus::Active)),
            Some(record(2, 150, ProductStatus::Active)),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(updated.event_type, "ProductUpdated");
        assert_eq!(updated.change, json!({"priceCents": 150}));
        let gone = acl(change(
            ChangeKind::Modify,
            Some(record(2, 150, ProductStatus::Active)),
            Some(record(3, 150, ProductStatus::Discontinued)),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(gone.event_type, "ProductDiscontinued");
        assert_eq!(gone.state["status"], "DISCONTINUED");
    }

    #[test]
    fn internal_items_and_removals_are_never_published() {
        let mut idempotency = record(1, 100, ProductStatus::Active);
        idempotency.insert(
            "pk".into(),
            bulkhead::store::AttributeValue::S("IDEMPOTENCY#x".into()),
        );
        assert!(
            acl(change(ChangeKind::Insert, None, Some(idempotency)))
                .unwrap()
                .is_none()
        );
        assert!(
            acl(change(
                ChangeKind::Remove,
                Some(record(1, 100, ProductStatus::Active)),
                None
            ))
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn published_state_has_no_internal_fields() {
        let event = acl(change(
            ChangeKind::Insert,
            None,
            Some(record(1, 100, ProductStatus::Active)),
        ))
        .unwrap()
        .unwrap();
        let keys: Vec<_> = event.state.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["name", "priceCents", "sku", "status"]);
    }
}
