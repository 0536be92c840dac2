//! `devstack replay`: start, watch and cancel a replay, in a running devstack (through its
//! `/_devstack/replays` endpoints) or on EventBridge (`--aws-endpoint`, or `--stack-name`
//! with the account's credentials). Watching prints one line a second; Ctrl-C cancels.

use super::{Request, Status};
use crate::{Error, Result};
use serde_json::Value;
use std::time::Duration;

/// What the command was asked.
pub enum Action {
    Start { request: Request, detach: bool },
    Watch(String),
    Cancel(String),
}

/// A running devstack's replays, over HTTP.
pub struct Devstack {
    pub url: String,
    pub client: reqwest::Client,
}

impl Devstack {
    pub fn new(url: &str) -> Self {
        Devstack {
            url: url.trim_end_matches('/').into(),
            client: reqwest::Client::new(),
        }
    }

    /// Calls one of its endpoints; a problem answer becomes the error, with its code.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T> {
        let response = request
            .send()
            .await
            .map_err(|e| Error::Http(format!("no devstack answers at {} ({e})", self.url)))?;
        let ok = response.status().is_success();
        let body: Value = response
            .json()
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        if !ok {
            return Err(Error::Http(format!(
                "{}: {}",
                body["code"].as_str().unwrap_or("error"),
                body["detail"].as_str().unwrap_or_default()
            )));
        }
        serde_json::from_value(body).map_err(|e| Error::Http(e.to_string()))
    }

    pub async fn start(&self, request: &Request) -> Result<Status> {
        let body = serde_json::json!({
            "service": request.service, "from": request.from, "to": request.to,
            "rule": request.rule, "archive": request.archive,
        });
        self.call(
            self.client
                .post(format!("{}/_devstack/replays", self.url))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn status(&self, name: &str) -> Result<Status> {
        self.call(
            self.client
                .get(format!("{}/_devstack/replays/{name}", self.url)),
        )
        .await
    }

    pub async fn cancel(&self, name: &str) -> Result<Status> {
        self.call(
            self.client
                .post(format!("{}/_devstack/replays/{name}/cancel", self.url)),
        )
        .await
    }
}

fn line(s: &Status) -> String {
    format!(
        "{} {} {}/{} events ({} to {}, rules {})",
        s.name,
        s.state,
        s.replayed,
        s.in_window,
        s.from,
        s.to,
        s.rules.join(", ")
    ) + &s
        .error
        .as_ref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

/// Runs the action against a devstack; answers the replay's last status.
pub async fn on_devstack(devstack: &Devstack, action: Action) -> Result<Status> {
    let (name, detach) = match action {
        Action::Start { request, detach } => {
            let started = devstack.start(&request).await?;
            println!("{}", line(&started));
            (started.name, detach)
        }
        Action::Watch(name) => (name, false),
        Action::Cancel(name) => {
            let status = devstack.cancel(&name).await?;
            println!("{}", line(&status));
            (name, false)
        }
    };
    let mut status = devstack.status(&name).await?;
    if detach || status.state.is_over() {
        println!("{}", line(&status));
    }
    while !detach && !status.state.is_over() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => {
                println!("cancelling {name}");
                devstack.cancel(&name).await?;
            }
        }
        status = devstack.status(&name).await?;
        println!("{}", line(&status));
    }
    Ok(status)
}

#[cfg(feature = "aws")]
pub use aws::on_eventbridge;

#[cfg(feature = "aws")]
mod aws {
    use super::*;
    use crate::replay::eventbridge::{Described, EventBridgeReplays};

    fn line(d: &Described) -> String {
        format!(
            "{} {} replayed up to {} ({} to {}){}",
            d.name,
            d.state,
            d.last_replayed.as_deref().unwrap_or("-"),
            d.from.as_deref().unwrap_or("?"),
            d.to.as_deref().unwrap_or("?"),
            d.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )
    }

    /// Runs the action on EventBridge; answers the replay as last described.
    pub async fn on_eventbridge(replays: &EventBridgeReplays, action: Action) -> Result<Described> {
        let (name, detach) = match action {
            Action::Start { request, detach } => {
                let started = replays.start(&request).await?;
                println!("{}", line(&started));
                (started.name, detach)
            }
            Action::Watch(name) => (name, false),
            Action::Cancel(name) => {
                let described = replays.cancel(&name).await?;
                println!("{}", line(&described));
                (name, false)
            }
        };
        let mut described = replays.describe(&name).await?;
        if detach || described.is_over() {
            println!("{}", line(&described));
        }
        while !detach && !described.is_over() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tokio::signal::ctrl_c() => {
                    println!("cancelling {name}");
                    replays.cancel(&name).await?;
                }
            }
            described = replays.describe(&name).await?;
            println!("{}", line(&described));
        }
        Ok(described)
    }
}
