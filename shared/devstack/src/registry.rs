//! Every function the template may name, by its binary, with the constructor that its
//! Lambda main calls (and, for an API, its part of the OpenAPI document). A template
//! function missing here stops the devstack at startup.

use crate::host::DevHost;
use crate::template::{FunctionSpec, Template};
use bulkhead::bus::Bus;
use bulkhead::contract::{Contract, Contracts};
use bulkhead::host::Host;
use bulkhead::listener::Listener;
use bulkhead::openapi::Fragment;
use bulkhead::store::Table;
use bulkhead::trigger::Trigger;
use std::collections::HashMap;
use std::sync::Arc;

type Build<T> = fn(&dyn Host) -> bulkhead::Result<T>;

pub enum Handler {
    Http(Build<axum::Router>, fn() -> Fragment),
    /// A trigger, with its producer's contracts.
    Stream(Build<Trigger>, Contracts),
    Queue(Build<Listener>),
}

pub fn registry() -> HashMap<&'static str, Handler> {
    HashMap::from([
        (
            "catalog-api",
            Handler::Http(catalog::api, catalog::api::openapi),
        ),
        (
            "catalog-trigger",
            Handler::Stream(catalog::trigger, catalog::events::contracts),
        ),
        (
            "orders-api",
            Handler::Http(orders::api, orders::api::openapi),
        ),
        (
            "orders-trigger",
            Handler::Stream(orders::trigger, orders::events::contracts),
        ),
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
        (
            "notifications-api",
            Handler::Http(notifications::api, notifications::api::openapi),
        ),
        (
            "notifications-listener",
            Handler::Queue(notifications::listener),
        ),
    ])
}

/// Every contract a producer of the registry declares.
pub fn contracts() -> Vec<Contract> {
    let mut contracts: Vec<Contract> = registry()
        .into_values()
        .filter_map(|handler| match handler {
            Handler::Stream(_, contracts) => Some(contracts()),
            _ => None,
        })
        .flatten()
        .collect();
    contracts.sort_by_key(Contract::path);
    contracts
}

/// A listener function, built on the given host.
pub fn listener(function: &FunctionSpec, host: &DevHost) -> bulkhead::Result<Listener> {
    match registry().get(function.binary.as_str()) {
        Some(Handler::Queue(build)) => build(host),
        _ => Err(bulkhead::Error::Config(format!(
            "{} ({}) is not a listener of the registry",
            function.name, function.binary
        ))),
    }
}

/// Every function of a template, built from its registry entry on the given ports.
#[derive(Default)]
pub struct Functions {
    pub http: Vec<(FunctionSpec, axum::Router)>,
    pub triggers: Vec<(FunctionSpec, Trigger)>,
    pub listeners: Vec<(FunctionSpec, Listener)>,
}

impl Functions {
    /// Builds each function on the backend's own tables and buses, without faults.
    pub fn on(template: &Template, infra: &dyn crate::infra::Infra) -> crate::Result<Functions> {
        let mut tables = HashMap::new();
        for name in template.tables.keys() {
            tables.insert(name.clone(), infra.table(name)?);
        }
        let mut buses = HashMap::new();
        for bus in &template.buses {
            buses.insert(bus.clone(), infra.bus(bus)?);
        }
        Functions::build(template, &tables, &buses, infra.mailer())
    }

    /// Builds each function with its template environment. A function without a registry
    /// entry is an error, never a silent gap. Every event put on a bus is first checked
    /// against its committed contract (`template.contracts`).
    pub fn build(
        template: &Template,
        tables: &HashMap<String, Arc<dyn Table>>,
        buses: &HashMap<String, Arc<dyn Bus>>,
        mailer: Arc<dyn bulkhead::mail::Mailer>,
    ) -> crate::Result<Functions> {
        let contracts = Arc::new(crate::contracts::validate::Contracts::load(
            &template.contracts,
        )?);
        let buses: HashMap<String, Arc<dyn Bus>> = buses
            .iter()
            .map(|(name, bus)| {
                let checked =
                    crate::contracts::validate::ContractBus::new(bus.clone(), contracts.clone());
                (name.clone(), Arc::new(checked) as Arc<dyn Bus>)
            })
            .collect();
        let registry = registry();
        let mut functions = Functions::default();
        for function in &template.functions {
            let host = DevHost::new(
                function.env.clone(),
                tables.clone(),
                buses.clone(),
                mailer.clone(),
            );
            let handler = registry.get(function.binary.as_str()).ok_or_else(|| {
                crate::Error::Registry(format!(
                    "{} ({}) has no local handler",
                    function.name, function.binary
                ))
            })?;
            let spec = function.clone();
            match handler {
                Handler::Http(build, _) => functions.http.push((spec, build(&host)?)),
                Handler::Stream(build, _) => {
                    let trigger = build(&host)?.named(&function.name);
                    functions.triggers.push((spec, trigger))
                }
                Handler::Queue(build) => {
                    let listener = build(&host)?.named(&function.name);
                    functions.listeners.push((spec, listener))
                }
            }
        }
        Ok(functions)
    }
}
