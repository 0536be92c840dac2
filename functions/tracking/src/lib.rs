//! Tracking: each customer's order history, with product names joined in, kept in the
//! service's own table from order and catalog events alone.
#![forbid(unsafe_code)]

pub mod api;
pub mod view;

use bulkhead::host::Host;
use bulkhead::listener::{Listener, listen};
use std::time::Duration;

pub const SERVICE: &str = "tracking";

/// The `tracking-api` function.
pub fn api(host: &dyn Host) -> bulkhead::Result<axum::Router> {
    let max_wait =
        Duration::from_millis(host.env_or("MIN_VERSION_MAX_WAIT_MS", api::DEFAULT_MAX_WAIT_MS)?);
    Ok(api::router(host.table_from_env("TABLE_NAME")?, max_wait))
}

/// The `tracking-listener` function.
pub fn listener(host: &dyn Host) -> bulkhead::Result<Listener> {
    Ok(listen(host.table_from_env("TABLE_NAME")?)
        .on_newest(view::ORDER_EVENTS, view::apply_order)
        .on_newest(view::PRODUCT_EVENTS, view::apply_product)
        .listener())
}
