//! The catalog's public events: what each one's `change` holds, and the contract of every
//! event type and version it publishes (`shared/contracts/catalog/`).

use crate::acl::PUBLISHES;
use crate::domain::{Product, ProductStatus};
use bulkhead::contract::Contract;
use serde::Serialize;

/// The `change` of a `ProductUpdated`: the fields that changed, and only those.
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
}

/// The `change` of a `ProductDiscontinued`.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct StatusChange {
    pub status: ProductStatus,
}

/// Every event type and version the catalog publishes; each carries the product's state.
/// A `ProductCreated`'s change is the whole product.
pub fn contracts() -> Vec<Contract> {
    vec![
        Contract::of::<Product, Product>(PUBLISHES, "ProductCreated", 1),
        Contract::of::<ProductChanges, Product>(PUBLISHES, "ProductUpdated", 1),
        Contract::of::<StatusChange, Product>(PUBLISHES, "ProductDiscontinued", 1),
    ]
}
