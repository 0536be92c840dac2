//! Sales: revenue and units per day, and per day and product, precomputed so that a read
//! is O(1) per day. Counting is exact under at-least-once, unordered delivery.
#![forbid(unsafe_code)]

pub mod api;
pub mod counting;
pub mod view;

use bulkhead::host::Host;
use bulkhead::listener::{Listener, listen};
use bulkhead::store::coalesced;

pub const SERVICE: &str = "sales";

/// The `sales-api` function.
pub fn api(host: &dyn Host) -> bulkhead::Result<axum::Router> {
    Ok(api::router(host.table_from_env("TABLE_NAME")?))
}

/// The `sales-listener` function. The bookkeeping that a batch's messages read goes as
/// one request (`coalesced`).
pub fn listener(host: &dyn Host) -> bulkhead::Result<Listener> {
    Ok(listen(coalesced::coalesce_reads(
        host.table_from_env("TABLE_NAME")?,
    ))
    .on(view::ORDER_EVENTS, view::apply)
    .listener())
}
