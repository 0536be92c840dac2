//! Sales: revenue and units per day, and per day and product, precomputed so that a read
//! is O(1) per day. Counting is exact under at-least-once, unordered delivery.
#![forbid(unsafe_code)]

pub mod api;
pub mod counting;
pub mod view;

use bulkhead::host::Host;
use bulkhead::listener::{Listener, listen};

pub const SERVICE: &str = "sales";

/// The `sales-api` function.
pub fn api(host: &dyn Host) -> bulkhead::Result<axum::Router> {
    Ok(api::router(host.table_from_env("TABLE_NAME")?))
}

/// The `sales-listener` function. Its reads are not grouped (`store::coalesced`): a batch's
/// messages would then read the same bookkeeping at once and race to write it, and in
/// the embedded store, where a message otherwise reads and writes in one go, the losers
/// ran out of retries (`tests/load.rs`).
pub fn listener(host: &dyn Host) -> bulkhead::Result<Listener> {
    Ok(listen(host.table_from_env("TABLE_NAME")?)
        .on_newest(view::ORDER_EVENTS, view::apply)
        .listener())
}
