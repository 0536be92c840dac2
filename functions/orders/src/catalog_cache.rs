//! The orders service's own copy of the catalog, fed by catalog events alone.

use crate::domain::Offer;
use bulkhead::listener::Delivered;
use bulkhead::store::{Key, Table, get_as, to_item, upsert_if_newer};
use serde::{Deserialize, Serialize};

pub const PRODUCT_PREFIX: &str = "PRODUCT#";

/// A cached product, as the catalog last published it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedProduct {
    pub pk: String,
    pub sk: String,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub status: String,
    pub version: u64,
}

impl CachedProduct {
    pub fn offer(&self) -> Offer {
        Offer {
            price_cents: self.price_cents,
            discontinued: self.status == "DISCONTINUED",
        }
    }
}

/// The catalog's public product state: what this service reads of it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductState {
    sku: String,
    name: String,
    price_cents: i64,
    status: String,
}

pub fn key(sku: &str) -> Key {
    Key::new(format!("{PRODUCT_PREFIX}{sku}"), "#")
}

pub async fn offer(table: &dyn Table, sku: &str) -> bulkhead::Result<Option<Offer>> {
    Ok(get_as::<CachedProduct>(table, &key(sku))
        .await?
        .map(|p| p.offer()))
}

/// Applies a catalog event to the cache; events about other things are ignored.
pub async fn apply(table: &dyn Table, delivered: &Delivered) -> bulkhead::Result<()> {
    if delivered.source != "bulkhead.catalog" || delivered.detail.aggregate.kind != "product" {
        return Ok(());
    }
    let state: ProductState = delivered.detail.state_as()?;
    let version = delivered.detail.aggregate.version;
    let key = key(&state.sku);
    let product = CachedProduct {
        pk: key.pk,
        sk: key.sk,
        sku: state.sku,
        name: state.name,
        price_cents: state.price_cents,
        status: state.status,
        version,
    };
    upsert_if_newer(table, to_item(&product)?, version).await?;
    Ok(())
}
