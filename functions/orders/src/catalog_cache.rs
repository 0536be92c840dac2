//! The orders service's own copy of the catalog, fed by catalog events alone.

use crate::domain::Offer;
use bulkhead::event::EventSet;
use bulkhead::listener::Delivered;
use bulkhead::listener::snapshot::{self, Row, keep_newest};
use bulkhead::store::{Key, Table};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

pub const PRODUCT_PREFIX: &str = "PRODUCT#";

/// A cached product, as the catalog last published it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedProduct {
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
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductState {
    sku: String,
    name: String,
    price_cents: i64,
    status: String,
}

/// Every product event: each carries the product's price and status.
pub const PRODUCT_EVENTS: EventSet = EventSet {
    source: "bulkhead.catalog",
    types: &["ProductCreated", "ProductUpdated", "ProductDiscontinued"],
};

pub fn key(sku: &str) -> Key {
    Key::new(format!("{PRODUCT_PREFIX}{sku}"), "#")
}

/// The offers of the products among `skus` that the cache holds, read in one round trip.
pub async fn offers(table: &dyn Table, skus: &[&str]) -> bulkhead::Result<HashMap<String, Offer>> {
    let keys: Vec<Key> = skus.iter().map(|sku| key(sku)).collect();
    let products = snapshot::read_many::<CachedProduct>(table, &keys).await?;
    Ok(skus
        .iter()
        .zip(products)
        .filter_map(|(sku, product)| Some((sku.to_string(), product?.offer())))
        .collect())
}

/// Keeps the product as the catalog last published it.
pub async fn apply(
    table: Arc<dyn Table>,
    event: Delivered,
    product: ProductState,
) -> bulkhead::Result<()> {
    let version = event.detail.aggregate.version;
    let row = Row::new(
        key(&product.sku),
        CachedProduct {
            sku: product.sku,
            name: product.name,
            price_cents: product.price_cents,
            status: product.status,
            version,
        },
    );
    keep_newest(table.as_ref(), &row, version).await?;
    Ok(())
}
