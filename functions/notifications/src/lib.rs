//! Notifications: each customer's inbox, one message per order and status, kept in the
//! service's own table from order events alone. The events carry the order's state, so a
//! message names the order's lines although it listens only to status changes.
#![forbid(unsafe_code)]

pub mod api;
pub mod inbox;

use bulkhead::host::Host;
use bulkhead::listener::{Listener, listen};

pub const SERVICE: &str = "notifications";

/// The `notifications-api` function.
pub fn api(host: &dyn Host) -> bulkhead::Result<axum::Router> {
    Ok(api::router(host.table_from_env("TABLE_NAME")?))
}

/// The `notifications-listener` function.
pub fn listener(host: &dyn Host) -> bulkhead::Result<Listener> {
    Ok(listen(host.table_from_env("TABLE_NAME")?)
        .on(inbox::ORDER_EVENTS, inbox::apply)
        .listener())
}
