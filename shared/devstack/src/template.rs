//! Reads `template.yaml`: the tables, queues, bus, rules and functions that the devstack runs.

use crate::{Error, Result};
use bulkhead::embedded::{Redrive, TableSpec};
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A queue and its redrive policy.
#[derive(Clone, Debug)]
pub struct QueueSpec {
    pub name: String,
    pub visibility_timeout_ms: i64,
    pub redrive: Option<Redrive>,
}

/// A bus rule with its pattern and target queues.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    pub name: String,
    pub bus: String,
    pub pattern: serde_json::Value,
    pub targets: Vec<String>,
}

/// A DynamoDB stream event source mapping.
#[derive(Clone, Debug)]
pub struct StreamMapping {
    pub table: String,
    pub batch_size: usize,
    /// Batches of one shard processed together, each holding its own set of keys, so
    /// that one key's records stay in order (`ParallelizationFactor`, 1 to 10).
    pub parallelization_factor: usize,
    pub bisect_on_error: bool,
    pub max_retries: u32,
    pub report_item_failures: bool,
    pub on_failure: Option<String>,
}

/// An SQS event source mapping.
#[derive(Clone, Debug)]
pub struct QueueMapping {
    pub queue: String,
    pub batch_size: usize,
    pub report_item_failures: bool,
}

/// An HTTP API route.
#[derive(Clone, Debug)]
pub struct Route {
    pub method: String,
    pub path: String,
}

/// A function, its environment and its events.
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: String,
    /// The owning service: the last folder of `CodeUri`.
    pub service: String,
    /// The function's `Timeout`: each invocation's deadline.
    pub timeout: std::time::Duration,
    pub env: HashMap<String, String>,
    pub routes: Vec<Route>,
    pub streams: Vec<StreamMapping>,
    pub queues: Vec<QueueMapping>,
}

/// The parts of the template that the devstack runs.
#[derive(Clone, Debug, Default)]
pub struct Template {
    pub parameters: HashMap<String, String>,
    pub tables: BTreeMap<String, (TableSpec, Option<String>)>,
    pub queues: BTreeMap<String, QueueSpec>,
    pub buses: Vec<String>,
    /// Archive name and the bus it archives.
    pub archives: Vec<(String, String)>,
    pub rules: Vec<RuleSpec>,
    pub functions: Vec<FunctionSpec>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// The committed event contracts: `shared/contracts/` beside the template.
    pub contracts: std::path::PathBuf,
}

fn err(msg: impl Into<String>) -> Error {
    Error::Template(msg.into())
}

impl Template {
    pub fn load(path: &Path) -> Result<Template> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let mut template = Template::parse(&text)?;
        template.contracts = path
            .parent()
            .unwrap_or(Path::new(""))
            .join("shared/contracts");
        Ok(template)
    }

    pub fn parse(text: &str) -> Result<Template> {
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut t = Template {
            contracts: "shared/contracts".into(),
            ..Template::default()
        };
        for (name, p) in mapping(&doc["Parameters"]) {
            if let Some(default) = scalar(&p["Default"]) {
                t.parameters.insert(name, default);
            }
        }
        let resources = mapping(&doc["Resources"]);
        let resolver = Resolver {
            parameters: &t.parameters,
        };
        let globals = &doc["Globals"]["Function"];
        for (name, r) in &resources {
            let props = &r["Properties"];
            match r["Type"].as_str().unwrap_or_default() {
                "AWS::DynamoDB::Table" => {
                    let key: Vec<String> = seq(&props["KeySchema"])
                        .iter()
                        .filter_map(|k| scalar(&k["AttributeName"]))
                        .collect();
                    if key != ["pk", "sk"] {
                        return Err(err(format!("{name}: tables are keyed by pk and sk")));
                    }
                    let mut indexes = vec![];
                    for index in seq(&props["GlobalSecondaryIndexes"]) {
                        let index_name = scalar(&index["IndexName"]).unwrap_or_default();
                        let keys: Vec<String> = seq(&index["KeySchema"])
                            .iter()
                            .filter_map(|k| scalar(&k["AttributeName"]))
                            .collect();
                        if keys != [format!("{index_name}pk"), format!("{index_name}sk")] {
                            return Err(err(format!(
                                "{name}: index {index_name} must be keyed by {index_name}pk and {index_name}sk"
                            )));
                        }
                        indexes.push(index_name);
                    }
                    let stream = props["StreamSpecification"]["StreamViewType"]
                        .as_str()
                        .is_some();
                    let ttl = (props["TimeToLiveSpecification"]["Enabled"].as_bool() == Some(true))
                        .then(|| scalar(&props["TimeToLiveSpecification"]["AttributeName"]))
                        .flatten();
                    t.tables.insert(
                        name.clone(),
                        (
                            TableSpec {
                                name: name.clone(),
                                indexes,
                                stream,
                            },
                            ttl,
                        ),
                    );
                }
                "AWS::SQS::Queue" => {
                    let visibility = scalar(&props["VisibilityTimeout"])
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(30i64);
                    let redrive = &props["RedrivePolicy"];
                    let redrive = resolver
                        .resolve(&redrive["deadLetterTargetArn"])
                        .map(|dlq| Redrive {
                            dead_letter_queue: dlq,
                            max_receive_count: scalar(&redrive["maxReceiveCount"])
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(3),
                        });
                    t.queues.insert(
                        name.clone(),
                        QueueSpec {
                            name: name.clone(),
                            visibility_timeout_ms: visibility * 1000,
                            redrive,
                        },
                    );
                }
                "AWS::Events::EventBus" => t.buses.push(name.clone()),
                "AWS::Events::Archive" => {
                    let bus = resolver
                        .resolve(&props["SourceArn"])
                        .ok_or_else(|| err(format!("{name}: no SourceArn")))?;
                    t.archives.push((name.clone(), bus));
                }
                "AWS::Events::Rule" => {
                    let bus = resolver
                        .resolve(&props["EventBusName"])
                        .ok_or_else(|| err(format!("{name}: no EventBusName")))?;
                    let pattern = to_json(&props["EventPattern"]);
                    let targets = seq(&props["Targets"])
                        .iter()
                        .filter_map(|t| resolver.resolve(&t["Arn"]))
                        .collect();
                    t.rules.push(RuleSpec {
                        name: name.clone(),
                        bus,
                        pattern,
                        targets,
                    });
                }
                "AWS::Serverless::HttpApi" => {
                    let authorizers = mapping(&props["Auth"]["Authorizers"]);
                    if let Some((_, jwt)) = authorizers.first() {
                        let config = &jwt["JwtConfiguration"];
                        t.jwt_issuer = resolver.resolve(&config["issuer"]).unwrap_or_default();
                        t.jwt_audience = seq(&config["audience"])
                            .first()
                            .and_then(|a| resolver.resolve(a))
                            .unwrap_or_default();
                    }
                }
                "AWS::Serverless::Function" => {
                    t.functions.push(function(name, r, globals, &resolver)?)
                }
                _ => {}
            }
        }
        // A stream nobody reads costs nothing in DynamoDB; locally it would only grow.
        for (spec, _) in t.tables.values_mut() {
            spec.stream &= t
                .functions
                .iter()
                .any(|f| f.streams.iter().any(|s| s.table == spec.name));
        }
        t.check()?;
        Ok(t)
    }

    /// Every reference between resources names a resource of the right kind.
    fn check(&self) -> Result<()> {
        let queue = |q: &str, what: &str| {
            if self.queues.contains_key(q) {
                Ok(())
            } else {
                Err(err(format!("{what} names {q}, which is not a queue")))
            }
        };
        for q in self.queues.values() {
            if let Some(r) = &q.redrive {
                queue(
                    &r.dead_letter_queue,
                    &format!("{}'s redrive policy", q.name),
                )?;
            }
        }
        for rule in &self.rules {
            for target in &rule.targets {
                queue(target, &format!("rule {}", rule.name))?;
            }
        }
        for f in &self.functions {
            for s in &f.streams {
                if !self
                    .tables
                    .get(&s.table)
                    .is_some_and(|(spec, _)| spec.stream)
                {
                    return Err(err(format!(
                        "{} reads the stream of {}, which has none",
                        f.name, s.table
                    )));
                }
                if let Some(d) = &s.on_failure {
                    queue(d, &format!("{}'s on-failure destination", f.name))?;
                }
            }
            for q in &f.queues {
                queue(&q.queue, &f.name)?;
            }
        }
        Ok(())
    }
}

fn function(name: &str, r: &Value, globals: &Value, resolver: &Resolver) -> Result<FunctionSpec> {
    let props = &r["Properties"];
    let binary = scalar(&r["Metadata"]["BuildProperties"]["Binary"])
        .ok_or_else(|| err(format!("{name}: no Metadata.BuildProperties.Binary")))?;
    let code = scalar(&props["CodeUri"]).unwrap_or_default();
    let service = code
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut env = HashMap::new();
    for vars in [
        &globals["Environment"]["Variables"],
        &props["Environment"]["Variables"],
    ] {
        for (k, v) in mapping(vars) {
            if let Some(v) = resolver.resolve(&v) {
                env.insert(k, v);
            }
        }
    }
    let timeout = scalar(&props["Timeout"])
        .or_else(|| scalar(&globals["Timeout"]))
        .and_then(|t| t.parse().ok())
        .unwrap_or(3);
    let mut spec = FunctionSpec {
        name: name.into(),
        binary,
        service,
        timeout: std::time::Duration::from_secs(timeout),
        env,
        routes: vec![],
        streams: vec![],
        queues: vec![],
    };
    for (event, e) in mapping(&props["Events"]) {
        let p = &e["Properties"];
        let number = |key: &str, default: usize| {
            scalar(&p[key])
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let reports = seq(&p["FunctionResponseTypes"])
            .iter()
            .any(|t| t.as_str() == Some("ReportBatchItemFailures"));
        match e["Type"].as_str().unwrap_or_default() {
            "HttpApi" => spec.routes.push(Route {
                method: scalar(&p["Method"])
                    .unwrap_or_else(|| "ANY".into())
                    .to_uppercase(),
                path: scalar(&p["Path"]).ok_or_else(|| err(format!("{name}.{event}: no Path")))?,
            }),
            "DynamoDB" => spec.streams.push(StreamMapping {
                table: resolver
                    .resolve(&p["Stream"])
                    .ok_or_else(|| err(format!("{name}.{event}: no Stream")))?,
                batch_size: number("BatchSize", 100),
                parallelization_factor: number("ParallelizationFactor", 1).clamp(1, 10),
                bisect_on_error: p["BisectBatchOnFunctionError"].as_bool().unwrap_or(false),
                max_retries: number("MaximumRetryAttempts", 10_000) as u32,
                report_item_failures: reports,
                on_failure: resolver.resolve(&p["DestinationConfig"]["OnFailure"]["Destination"]),
            }),
            "SQS" => spec.queues.push(QueueMapping {
                queue: resolver
                    .resolve(&p["Queue"])
                    .ok_or_else(|| err(format!("{name}.{event}: no Queue")))?,
                batch_size: number("BatchSize", 10),
                report_item_failures: reports,
            }),
            other => {
                return Err(err(format!(
                    "{name}.{event}: event type {other} is not supported locally"
                )));
            }
        }
    }
    Ok(spec)
}

/// Resolves intrinsic functions to what the devstack names things by: a resource's logical id.
struct Resolver<'a> {
    parameters: &'a HashMap<String, String>,
}

impl Resolver<'_> {
    fn resolve(&self, v: &Value) -> Option<String> {
        match v {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let inner = &tagged.value;
                match tag.trim_start_matches('!') {
                    "Ref" => self.reference(inner.as_str()?),
                    "GetAtt" => Some(get_att(inner)),
                    "Sub" => Some(self.sub(inner.as_str()?)),
                    _ => None,
                }
            }
            Value::Mapping(m) if m.len() == 1 => {
                let (k, inner) = m.iter().next()?;
                match k.as_str()? {
                    "Ref" => self.reference(inner.as_str()?),
                    "Fn::GetAtt" => Some(get_att(inner)),
                    "Fn::Sub" => Some(self.sub(inner.as_str()?)),
                    _ => None,
                }
            }
            other => scalar(other),
        }
    }

    fn reference(&self, name: &str) -> Option<String> {
        Some(match name {
            "AWS::Region" => "us-east-1".into(),
            "AWS::AccountId" => "000000000000".into(),
            "AWS::StackName" => "devstack".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            name => self
                .parameters
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.to_string()),
        })
    }

    fn sub(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            let name = &rest[start + 2..start + end];
            out.push_str(
                &self
                    .reference(name.split('.').next().unwrap_or(name))
                    .unwrap_or_default(),
            );
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn get_att(v: &Value) -> String {
    match v {
        Value::String(s) => s.split('.').next().unwrap_or_default().to_string(),
        Value::Sequence(s) => s
            .first()
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

fn mapping(v: &Value) -> Vec<(String, Value)> {
    v.as_mapping()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone())))
                .collect()
        })
        .unwrap_or_default()
}

fn seq(v: &Value) -> Vec<Value> {
    v.as_sequence().cloned().unwrap_or_default()
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")).unwrap()
    }

    #[test]
    fn the_repository_template_describes_the_whole_slice() {
        let t = template();
        assert!(t.tables["OrdersTable"].0.stream);
        assert_eq!(t.tables["TrackingTable"].0.indexes, ["gsi1"]);
        assert_eq!(t.tables["OrdersTable"].1.as_deref(), Some("expiresAt"));
        assert_eq!(
            t.queues["TrackingQueue"]
                .redrive
                .as_ref()
                .unwrap()
                .dead_letter_queue,
            "TrackingDLQ"
        );
        let trigger = t
            .functions
            .iter()
            .find(|f| f.binary == "orders-trigger")
            .unwrap();
        assert_eq!(trigger.service, "orders");
        assert_eq!(trigger.env["BUS_NAME"], "BulkheadBus");
        assert_eq!(trigger.streams[0].table, "OrdersTable");
        assert_eq!(
            trigger.streams[0].on_failure.as_deref(),
            Some("OrdersStreamDLQ")
        );
        assert!(trigger.streams[0].report_item_failures && trigger.streams[0].bisect_on_error);
        let api = t
            .functions
            .iter()
            .find(|f| f.binary == "orders-api")
            .unwrap();
        assert!(
            api.routes
                .iter()
                .any(|r| r.method == "POST" && r.path == "/orders/{id}/lines")
        );
        assert_eq!(t.jwt_audience, "bulkhead");
        assert!(
            t.rules
                .iter()
                .any(|r| r.name == "TrackingRule" && r.targets == ["TrackingQueue"])
        );
    }

    #[test]
    fn a_reference_to_a_missing_queue_is_an_error() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"),
        )
        .unwrap();
        let broken = text.replace(
            "deadLetterTargetArn: !GetAtt TrackingDLQ.Arn",
            "deadLetterTargetArn: !GetAtt NoSuchDLQ.Arn",
        );
        assert!(Template::parse(&broken).is_err());
    }
}
