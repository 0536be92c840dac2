//! Every function the template may name, by its binary, with the constructor that its
//! Lambda main calls (and, for an API, its part of the OpenAPI document). A template
//! function missing here stops the devstack at startup.

use bulkhead::host::Host;
use bulkhead::listener::Listener;
use bulkhead::openapi::Fragment;
use bulkhead::trigger::Trigger;
use std::collections::HashMap;

type Build<T> = fn(&dyn Host) -> bulkhead::Result<T>;

pub enum Handler {
    Http(Build<axum::Router>, fn() -> Fragment),
    Stream(Build<Trigger>),
    Queue(Build<Listener>),
}

pub fn registry() -> HashMap<&'static str, Handler> {
    HashMap::from([
        (
            "catalog-api",
            Handler::Http(catalog::api, catalog::api::openapi),
        ),
        ("catalog-trigger", Handler::Stream(catalog::trigger)),
        (
            "orders-api",
            Handler::Http(orders::api, orders::api::openapi),
        ),
        ("orders-trigger", Handler::Stream(orders::trigger)),
        (
            "orders-catalog-listener",
            Handler::Queue(orders::catalog_listener),
        ),
        (
            "tracking-api",
            Handler::Http(tracking::api, tracking::api::openapi),
        ),
        ("tracking-listener", Handler::Queue(tracking::listener)),
        (
            "fulfillment-api",
            Handler::Http(fulfillment::api, fulfillment::api::openapi),
        ),
        (
            "fulfillment-listener",
            Handler::Queue(fulfillment::listener),
        ),
        ("sales-api", Handler::Http(sales::api, sales::api::openapi)),
        ("sales-listener", Handler::Queue(sales::listener)),
    ])
}
