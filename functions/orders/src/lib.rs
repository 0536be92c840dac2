//! Orders: customers place and change orders, staff ship and deliver them. Prices come
//! from the service's own cache of catalog events, so orders never calls catalog.
#![forbid(unsafe_code)]

pub mod acl;
pub mod api;
pub mod catalog_cache;
pub mod domain;
pub mod events;

use bulkhead::host::Host;
use bulkhead::listener::{Listener, listen};

pub const SERVICE: &str = "orders";

/// The `orders-api` function.
pub fn api(host: &dyn Host) -> bulkhead::Result<axum::Router> {
    Ok(api::router(host.table_from_env("TABLE_NAME")?))
}

/// The `orders-trigger` function.
pub fn trigger(host: &dyn Host) -> bulkhead::Result<bulkhead::trigger::Trigger> {
    let bus = host.bus_from_env("BUS_NAME")?;
    Ok(
        bulkhead::trigger::Trigger::new(bus, acl::PUBLISHES, acl::acl)
            .reading(acl::IMAGES)
            .with_samples(acl::samples),
    )
}

/// The `orders-catalog-listener` function: keeps the catalog cache.
pub fn catalog_listener(host: &dyn Host) -> bulkhead::Result<Listener> {
    Ok(listen(host.table_from_env("TABLE_NAME")?)
        .on_newest(catalog_cache::PRODUCT_EVENTS, catalog_cache::apply)
        .listener())
}
