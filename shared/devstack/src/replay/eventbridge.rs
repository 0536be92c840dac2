//! Replay on AWS (or an AWS-compatible endpoint): EventBridge `StartReplay` from the
//! template's archive to the bus, with `Destination.FilterArns` naming the service's rules
//! only; `DescribeReplay` to watch it, `CancelReplay` to stop it.
//!
//! Physical names: on an endpoint the devstack provisioned, `<prefix>-<logical id>`; in a
//! stack SAM deployed (`--stack-name`), the bus is named as the template names it and each
//! rule is `<stack>-<logical id>-<suffix>`, as CloudFormation names what the template does
//! not name.

use super::{Refused, service_rules, window};
use crate::template::Template;
use crate::{Error, Result};
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState};
use chrono::Utc;

fn aws(e: impl std::fmt::Display) -> Error {
    Error::Aws(e.to_string())
}

/// Where the template's resources are.
pub enum Names {
    /// Provisioned by the devstack under this prefix.
    Prefix(String),
    /// Deployed by SAM as this stack.
    Stack(String),
}

/// A replay on EventBridge, as `DescribeReplay` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    pub name: String,
    pub state: String,
    pub reason: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub last_replayed: Option<String>,
}

impl Described {
    pub fn is_over(&self) -> bool {
        matches!(self.state.as_str(), "COMPLETED" | "CANCELLED" | "FAILED")
    }
}

/// EventBridge replays of one template's archive.
pub struct EventBridgeReplays {
    client: aws_sdk_eventbridge::Client,
    template: Template,
    template_text: String,
    names: Names,
}

fn time(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp_millis(t.to_millis().ok()?))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

impl EventBridgeReplays {
    /// Clients for `endpoint`, or for the account of the default credentials when `None`.
    pub async fn connect(
        template_path: &std::path::Path,
        endpoint: Option<&str>,
        names: Names,
    ) -> Result<Self> {
        let mut loader = bulkhead::sdk::defaults();
        if let Some(endpoint) = endpoint {
            loader = loader
                .endpoint_url(endpoint)
                .region(aws_config::Region::new(crate::infra::REGION));
            if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
                loader =
                    loader.credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
                        "devstack", "devstack", None, None, "devstack",
                    ));
            }
        }
        let config = loader.load().await;
        Ok(EventBridgeReplays {
            client: aws_sdk_eventbridge::Client::new(&config),
            template: Template::load(template_path)?,
            template_text: std::fs::read_to_string(template_path)?,
            names,
        })
    }

    /// The physical name of a resource the template names `logical` (not for rules).
    fn physical(&self, logical: &str) -> Result<String> {
        match &self.names {
            Names::Prefix(prefix) => Ok(format!("{prefix}-{logical}")),
            Names::Stack(stack) => {
                let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&self.template_text)
                    .map_err(|e| Error::Template(e.to_string()))?;
                let name = &doc["Resources"][logical]["Properties"]["Name"];
                let text = match name {
                    serde_yaml_ng::Value::Tagged(t) => t.value.as_str().map(String::from),
                    other => other.as_str().map(String::from),
                };
                text.map(|t| t.replace("${AWS::StackName}", stack))
                    .ok_or_else(|| Error::Template(format!("{logical} has no Name to find it by")))
            }
        }
    }

    fn rule_prefix(&self, logical: &str) -> String {
        match &self.names {
            Names::Prefix(base) | Names::Stack(base) => format!("{base}-{logical}"),
        }
    }

    /// Checks the request, finds the bus, the archive and the service's rules, and starts
    /// the replay. Nothing is started when anything is unknown or wrong.
    pub async fn start(&self, request: &super::Request) -> Result<Described> {
        let services = service_rules(&self.template);
        let rules = services
            .get(&request.service)
            .ok_or_else(|| Refused::UnknownService(request.service.clone()))?;
        let rules: Vec<String> = match &request.rule {
            None => rules.iter().map(|r| r.name.clone()).collect(),
            Some(rule) if rules.iter().any(|r| &r.name == rule) => vec![rule.clone()],
            Some(rule) => {
                return Err(Refused::UnknownRule {
                    service: request.service.clone(),
                    rule: rule.clone(),
                    known: rules.iter().map(|r| r.name.clone()).collect(),
                }
                .into());
            }
        };
        let archive = request
            .archive
            .clone()
            .unwrap_or_else(|| crate::infra::ARCHIVE.into());
        let Some((_, bus)) = self.template.archives.iter().find(|(a, _)| *a == archive) else {
            return Err(Refused::UnknownArchive(archive).into());
        };
        let (from, to) = window(&request.from, &request.to, Utc::now())?;

        let bus_arn = self
            .client
            .describe_event_bus()
            .name(self.physical(bus)?)
            .send()
            .await
            .map_err(|e| aws(e.into_service_error()))?
            .arn
            .ok_or_else(|| aws(format!("{bus} has no ARN")))?;
        let archive_arn = self.archive_arn(&archive, &bus_arn).await?;
        let mut filter_arns = vec![];
        for rule in &rules {
            filter_arns.push(self.rule_arn(&self.physical(bus)?, rule).await?);
        }
        let prefix = format!("{}-", request.service);
        let running = self
            .client
            .list_replays()
            .name_prefix(&prefix)
            .send()
            .await
            .map_err(|e| aws(e.into_service_error()))?;
        if let Some(replay) = running.replays().iter().find(|r| {
            matches!(
                r.state(),
                Some(ReplayState::Starting | ReplayState::Running | ReplayState::Cancelling)
            )
        }) {
            return Err(Refused::AlreadyRunning {
                service: request.service.clone(),
                running: replay.replay_name().unwrap_or_default().into(),
                state: super::State::Running,
            }
            .into());
        }
        let name = format!("{prefix}{}", Utc::now().format("%Y%m%dT%H%M%S%3fZ"));
        let destination = ReplayDestination::builder()
            .arn(&bus_arn)
            .set_filter_arns(Some(filter_arns))
            .build()
            .map_err(aws)?;
        self.client
            .start_replay()
            .replay_name(&name)
            .description(format!("{} to {}", request.service, rules.join(", ")))
            .event_source_arn(archive_arn)
            .event_start_time(DateTime::from_millis(from.timestamp_millis()))
            .event_end_time(DateTime::from_millis(to.timestamp_millis()))
            .destination(destination)
            .send()
            .await
            .map_err(|e| aws(e.into_service_error()))?;
        self.describe(&name).await
    }

    async fn archive_arn(&self, archive: &str, bus_arn: &str) -> Result<String> {
        if let Names::Prefix(_) = self.names {
            let described = self
                .client
                .describe_archive()
                .archive_name(self.physical(archive)?)
                .send()
                .await;
            return match described {
                Ok(out) => out.archive_arn.ok_or_else(|| aws("an archive without ARN")),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    Err(Refused::UnknownArchive(archive.into()).into())
                }
                Err(e) => Err(aws(e.into_service_error())),
            };
        }
        // SAM names the archive itself: the bus's archive.
        let listed = self
            .client
            .list_archives()
            .event_source_arn(bus_arn)
            .send()
            .await
            .map_err(|e| aws(e.into_service_error()))?;
        let archives = listed.archives();
        let chosen = match archives {
            [one] => Some(one),
            many => many
                .iter()
                .find(|a| a.archive_name().is_some_and(|n| n.contains(archive))),
        };
        let name = chosen
            .and_then(|a| a.archive_name())
            .ok_or_else(|| Refused::UnknownArchive(archive.into()))?;
        let out = self
            .client
            .describe_archive()
            .archive_name(name)
            .send()
            .await
            .map_err(|e| aws(e.into_service_error()))?;
        out.archive_arn.ok_or_else(|| aws("an archive without ARN"))
    }

    async fn rule_arn(&self, bus: &str, rule: &str) -> Result<String> {
        let prefix = self.rule_prefix(rule);
        let listed = self
            .client
            .list_rules()
            .event_bus_name(bus)
            .name_prefix(&prefix)
            .send()
            .await
            .map_err(|e| aws(e.into_service_error()))?;
        listed
            .rules()
            .iter()
            .find(|r| {
                r.name()
                    .is_some_and(|n| n == prefix || n.starts_with(&format!("{prefix}-")))
            })
            .and_then(|r| r.arn())
            .map(String::from)
            .ok_or_else(|| {
                Error::Aws(format!(
                    "no rule {prefix} on bus {bus}: is the stack deployed with this template?"
                ))
            })
    }

    pub async fn describe(&self, name: &str) -> Result<Described> {
        let out = self
            .client
            .describe_replay()
            .replay_name(name)
            .send()
            .await
            .map_err(|e| match e.into_service_error() {
                e if e.is_resource_not_found_exception() => {
                    Error::Replay(Refused::UnknownReplay(name.into()))
                }
                e => aws(e),
            })?;
        Ok(Described {
            name: name.into(),
            state: out
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            reason: out.state_reason().map(String::from),
            from: time(out.event_start_time()),
            to: time(out.event_end_time()),
            last_replayed: time(out.event_last_replayed_time()),
        })
    }

    pub async fn cancel(&self, name: &str) -> Result<Described> {
        self.client
            .cancel_replay()
            .replay_name(name)
            .send()
            .await
            .map_err(|e| match e.into_service_error() {
                e if e.is_resource_not_found_exception() => {
                    Error::Replay(Refused::UnknownReplay(name.into()))
                }
                e => aws(e),
            })?;
        self.describe(name).await
    }
}
