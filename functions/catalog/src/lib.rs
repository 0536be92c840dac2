//! Catalog: products with a name, a price and a status. Merchandisers change them; the
//! trigger publishes `ProductCreated`, `ProductUpdated` and `ProductDiscontinued`.
#![forbid(unsafe_code)]

pub mod acl;
pub mod api;
pub mod domain;
pub mod events;

use bulkhead::host::Host;
use std::sync::Arc;

/// The service's name: its event source is `bulkhead.catalog`.
pub const SERVICE: &str = "catalog";

/// The `catalog-api` function.
pub fn api(host: &dyn Host) -> bulkhead::Result<axum::Router> {
    Ok(api::router(host.table_from_env("TABLE_NAME")?))
}

/// The `catalog-trigger` function.
pub fn trigger(host: &dyn Host) -> bulkhead::Result<bulkhead::trigger::Trigger> {
    let bus: Arc<dyn bulkhead::bus::Bus> = host.bus_from_env("BUS_NAME")?;
    Ok(
        bulkhead::trigger::Trigger::new(bus, acl::PUBLISHES, acl::acl)
            .reading(acl::IMAGES)
            .with_samples(acl::samples),
    )
}
