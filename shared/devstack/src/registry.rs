//! Every function the template may name, by its binary, with the constructor that its
//! Lambda main calls. A template function missing here stops the devstack at startup.

use bulkhead::host::Host;
use bulkhead::listener::Listener;
use bulkhead::trigger::Trigger;
use std::collections::HashMap;

type Build<T> = fn(&dyn Host) -> bulkhead::Result<T>;

pub enum Handler {
    Http(Build<axum::Router>),
    Stream(Build<Trigger>),
    Queue(Build<Listener>),
}

pub fn registry() -> HashMap<&'static str, Handler> {
    HashMap::from([
        ("catalog-api", Handler::Http(catalog::api)),
        ("catalog-trigger", Handler::Stream(catalog::trigger)),
        ("orders-api", Handler::Http(orders::api)),
        ("orders-trigger", Handler::Stream(orders::trigger)),
        (
            "orders-catalog-listener",
            Handler::Queue(orders::catalog_listener),
        ),
        ("tracking-api", Handler::Http(tracking::api)),
        ("tracking-listener", Handler::Queue(tracking::listener)),
        ("fulfillment-api", Handler::Http(fulfillment::api)),
        (
            "fulfillment-listener",
            Handler::Queue(fulfillment::listener),
        ),
        ("sales-api", Handler::Http(sales::api)),
        ("sales-listener", Handler::Queue(sales::listener)),
        ("notifications-api", Handler::Http(notifications::api)),
        (
            "notifications-listener",
            Handler::Queue(notifications::listener),
        ),
    ])
}
