//! What a function is given by its host: environment, tables and the bus. In Lambda the
//! host is the process environment and the AWS adapters; in the devstack it is the
//! template's environment and the embedded adapters.

use crate::bus::Bus;
use crate::mail::Mailer;
use crate::store::Table;
use crate::{Error, Result};
use std::sync::Arc;

pub trait Host: Send + Sync {
    fn env(&self, name: &str) -> Option<String>;
    /// The table with this physical name.
    fn table(&self, name: &str) -> Result<Arc<dyn Table>>;
    /// The bus with this name.
    fn bus(&self, name: &str) -> Result<Arc<dyn Bus>>;
    /// The mail port, for the functions that send mail. Hosts without one refuse.
    fn mailer(&self) -> Result<Arc<dyn Mailer>> {
        Err(Error::Config("this host has no mail adapter".into()))
    }
}

impl dyn Host + '_ {
    pub fn require_env(&self, name: &str) -> Result<String> {
        self.env(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Config(format!("{name} is not set")))
    }

    /// The table named by an environment variable.
    pub fn table_from_env(&self, variable: &str) -> Result<Arc<dyn Table>> {
        self.table(&self.require_env(variable)?)
    }

    /// The bus named by an environment variable.
    pub fn bus_from_env(&self, variable: &str) -> Result<Arc<dyn Bus>> {
        self.bus(&self.require_env(variable)?)
    }

    /// A numeric setting with a default.
    pub fn env_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.env(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| Error::Config(format!("{name}={v:?} is not valid"))),
        }
    }
}

#[cfg(feature = "aws")]
pub use aws::AwsHost;

#[cfg(feature = "aws")]
mod aws {
    use super::*;
    use crate::bus::aws::EventBridgeBus;
    use crate::store::aws::DynamoTable;

    /// Makes the bus with the given name.
    type MakeBus = fn(&aws_types::SdkConfig, &str) -> Result<Arc<dyn Bus>>;

    /// The Lambda host: process environment and AWS SDK clients, built once at init.
    pub struct AwsHost {
        config: aws_types::SdkConfig,
        dynamodb: aws_sdk_dynamodb::Client,
        bus: Option<MakeBus>,
    }

    impl AwsHost {
        /// Fails when Lambda's region or credentials are missing ([`crate::sdk::from_lambda_env`]).
        pub fn from_env() -> Result<Self> {
            let config = crate::sdk::from_lambda_env()?;
            Ok(AwsHost {
                dynamodb: aws_sdk_dynamodb::Client::new(&config),
                config,
                bus: None,
            })
        }

        /// The host with EventBridge as its bus, for the functions that publish. Only a main
        /// that calls this links the EventBridge port (its endpoint rules and signing), which
        /// every other bootstrap is spared.
        pub fn with_eventbridge(mut self) -> Self {
            self.bus = Some(|config, name| Ok(Arc::new(EventBridgeBus::new(config, name)?)));
            self
        }
    }

    impl Host for AwsHost {
        fn env(&self, name: &str) -> Option<String> {
            std::env::var(name).ok()
        }

        fn table(&self, name: &str) -> Result<Arc<dyn Table>> {
            Ok(Arc::new(DynamoTable::new(self.dynamodb.clone(), name)))
        }

        fn bus(&self, name: &str) -> Result<Arc<dyn Bus>> {
            let make = self.bus.ok_or_else(|| {
                Error::Config("this host has no bus: build it `with_eventbridge`".into())
            })?;
            make(&self.config, name)
        }
    }
}
