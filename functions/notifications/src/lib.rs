//! Notifications: each customer's inbox, one message per order and status, kept in the
//! service's own table from order events alone. The events carry the order's state, so a
//! message names the order's lines although it listens only to status changes.
#![forbid(unsafe_code)]

pub mod api;
pub mod inbox;

use bulkhead::host::Host;
use bulkhead::listener::{Listener, listen};
use bulkhead::mail::Mailer;
use std::sync::Arc;

pub const SERVICE: &str = "notifications";

/// The `notifications-api` function.
pub fn api(host: &dyn Host) -> bulkhead::Result<axum::Router> {
    Ok(api::router(host.table_from_env("TABLE_NAME")?))
}

/// The `notifications-listener` function, with the host's mail adapter.
pub fn listener(host: &dyn Host) -> bulkhead::Result<Listener> {
    listener_with(host, host.mailer()?)
}

/// The `notifications-listener` function, sending mail through `mailer`.
pub fn listener_with(host: &dyn Host, mailer: Arc<dyn Mailer>) -> bulkhead::Result<Listener> {
    let inbox = inbox::Inbox {
        table: host.table_from_env("TABLE_NAME")?,
        mailer,
    };
    Ok(listen(inbox)
        .on(inbox::ORDER_EVENTS, inbox::apply)
        .listener())
}
