//! Fulfillment: the warehouse's work queue, orders by status with what to pick and pack,
//! kept in the service's own table from order events alone.
#![forbid(unsafe_code)]

pub mod api;
pub mod view;

use bulkhead::host::Host;
use bulkhead::listener::{Listener, listen};
use std::time::Duration;

pub const SERVICE: &str = "fulfillment";

/// The `fulfillment-api` function.
pub fn api(host: &dyn Host) -> bulkhead::Result<axum::Router> {
    let max_wait =
        Duration::from_millis(host.env_or("MIN_VERSION_MAX_WAIT_MS", api::DEFAULT_MAX_WAIT_MS)?);
    Ok(api::router(host.table_from_env("TABLE_NAME")?, max_wait))
}

/// The `fulfillment-listener` function.
pub fn listener(host: &dyn Host) -> bulkhead::Result<Listener> {
    Ok(listen(host.table_from_env("TABLE_NAME")?)
        .on_newest(view::ORDER_EVENTS, view::apply)
        .listener())
}
