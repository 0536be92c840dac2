//! Fulfillment: the warehouse's work queue, orders by status with what to pick and pack,
//! kept in the service's own table from order events alone.
#![forbid(unsafe_code)]

pub mod api;
pub mod view;

use bulkhead::host::Host;
use bulkhead::listener::{Listener, listen};
use bulkhead::store::coalesced;
use std::time::Duration;

pub const SERVICE: &str = "fulfillment";

/// The `fulfillment-api` function.
pub fn api(host: &dyn Host) -> bulkhead::Result<axum::Router> {
    let max_wait =
        Duration::from_millis(host.env_or("MIN_VERSION_MAX_WAIT_MS", api::DEFAULT_MAX_WAIT_MS)?);
    Ok(api::router(host.table_from_env("TABLE_NAME")?, max_wait))
}

/// The `fulfillment-listener` function. Its upserts of a large batch (a backlog) go as
/// transactions of up to 100 (`coalesced`), so it applies 3 transactions' worth of messages
/// together: they open no more connections than 3 requests do.
pub fn listener(host: &dyn Host) -> bulkhead::Result<Listener> {
    Ok(
        listen(coalesced::coalesce(host.table_from_env("TABLE_NAME")?))
            .on(view::ORDER_EVENTS, view::apply)
            .listener()
            .with_in_flight(3 * coalesced::MAX_WRITES),
    )
}
