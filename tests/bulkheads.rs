//! The bulkheads, read off `template.yaml`: each function may touch its own service's
//! tables and queues, triggers may put events on the bus, and nothing else. This test
//! fails when someone adds a coupling between services.

use serde_yaml_ng::Value;
use std::path::Path;

fn template_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).unwrap()
}

/// The logical id an intrinsic function refers to (`!Ref X`, `!GetAtt X.Arn`, `!Sub "${X}"`).
fn referenced(value: &Value) -> Vec<String> {
    match value {
        Value::Tagged(tagged) => match (tagged.tag.to_string().as_str(), &tagged.value) {
            ("!Ref", Value::String(name)) => vec![name.clone()],
            ("!GetAtt", Value::String(path)) => vec![path.split('.').next().unwrap().to_string()],
            ("!Sub", Value::String(text)) => text
                .split("${")
                .skip(1)
                .filter_map(|part| part.split(['}', '.']).next())
                .filter(|name| !name.starts_with("AWS::"))
                .map(String::from)
                .collect(),
            (_, inner) => referenced(inner),
        },
        Value::Mapping(map) => map.values().flat_map(referenced).collect(),
        Value::Sequence(items) => items.iter().flat_map(referenced).collect(),
        _ => vec![],
    }
}

fn capitalized(service: &str) -> String {
    let mut chars = service.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Every way a function reaches beyond its own service.
fn violations(text: &str) -> Vec<String> {
    let doc: Value = serde_yaml_ng::from_str(text).unwrap();
    let resources = doc["Resources"].as_mapping().unwrap();
    let services: Vec<String> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::Serverless::Function")
        .filter_map(|r| r["Properties"]["CodeUri"].as_str())
        .map(|uri| capitalized(uri.rsplit('/').next().unwrap()))
        .collect();
    let mut found = vec![];
    for (name, resource) in resources {
        let name = name.as_str().unwrap();
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let props = &resource["Properties"];
        let own = capitalized(
            props["CodeUri"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap(),
        );
        if !name.starts_with(&own) {
            found.push(format!("{name} does not start with its service {own}"));
        }
        let is_trigger = props["Events"]
            .as_mapping()
            .is_some_and(|events| events.values().any(|e| e["Type"] == "DynamoDB"));
        let mine = |id: &str| id.starts_with(&own);
        let shared = |id: &str| id.starts_with("Bulkhead");
        for policy in props["Policies"].as_sequence().into_iter().flatten() {
            let Some(map) = policy.as_mapping() else {
                found.push(format!(
                    "{name} has a policy that is not a scoped SAM template: {policy:?}"
                ));
                continue;
            };
            for (kind, args) in map {
                let kind = kind.as_str().unwrap_or_default();
                let targets = referenced(args);
                let ok = match kind {
                    "DynamoDBCrudPolicy" | "DynamoDBReadPolicy" | "DynamoDBWritePolicy" => {
                        !targets.is_empty()
                            && targets.iter().all(|t| mine(t) && t.ends_with("Table"))
                    }
                    "EventBridgePutEventsPolicy" => {
                        is_trigger && !targets.is_empty() && targets.iter().all(|t| shared(t))
                    }
                    "SQSSendMessagePolicy" | "SQSPollerPolicy" => {
                        !targets.is_empty() && targets.iter().all(|t| mine(t))
                    }
                    _ => false,
                };
                if !ok {
                    found.push(format!("{name}: policy {kind} on {targets:?}"));
                }
            }
        }
        for (var, value) in props["Environment"]["Variables"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            for target in referenced(value) {
                let allowed = mine(&target)
                    || (shared(&target) && is_trigger)
                    || doc["Parameters"][target.as_str()].is_mapping();
                if !allowed {
                    found.push(format!("{name}: environment {var:?} names {target}"));
                }
            }
            if let Some(text) = value.as_str() {
                for other in services.iter().filter(|s| **s != own) {
                    if text.contains(other.as_str())
                        || text
                            .to_lowercase()
                            .contains(&format!("/{}", other.to_lowercase()))
                    {
                        found.push(format!("{name}: environment {var:?} names {other}"));
                    }
                }
            }
        }
        for (event, e) in props["Events"].as_mapping().into_iter().flatten() {
            let targets = referenced(&e["Properties"]);
            let ok = match e["Type"].as_str().unwrap_or_default() {
                "HttpApi" => targets.iter().all(|t| shared(t)),
                _ => targets.iter().all(|t| mine(t)),
            };
            if !ok {
                found.push(format!("{name}: event {event:?} reads {targets:?}"));
            }
        }
    }
    found
}

#[test]
fn every_function_reaches_only_its_own_service() {
    let found = violations(&template_text());
    assert!(found.is_empty(), "couplings: {found:#?}");
}

#[test]
fn a_coupling_is_caught() {
    let text = template_text();
    let read = "        - DynamoDBReadPolicy:\n            TableName: !Ref TrackingTable\n";
    assert_eq!(
        text.matches(read).count(),
        1,
        "only tracking's API reads its table"
    );
    let cases = [
        // Tracking's API reads the orders table.
        text.replace(read, &read.replace("TrackingTable", "OrdersTable")),
        // Sales learns the name of the orders table.
        text.replace("          TABLE_NAME: !Ref SalesTable", "          TABLE_NAME: !Ref SalesTable\n          ORDERS: !Ref OrdersTable"),
        // Fulfillment calls the orders API.
        text.replace(
            "          TABLE_NAME: !Ref FulfillmentTable",
            "          TABLE_NAME: !Ref FulfillmentTable\n          ORDERS_URL: https://api.example.com/orders",
        ),
        // Tracking's listener consumes the fulfillment queue.
        text.replacen("            Queue: !GetAtt TrackingQueue.Arn", "            Queue: !GetAtt FulfillmentQueue.Arn", 1),
        // An API may not publish events.
        text.replace(read, &format!("{read}        - EventBridgePutEventsPolicy:\n            EventBusName: !Ref BulkheadBus\n")),
        // No unscoped policies.
        text.replace(read, &format!("{read}        - AmazonDynamoDBFullAccess\n")),
    ];
    for (n, case) in cases.iter().enumerate() {
        assert_ne!(case, &text, "case {n} changed nothing");
        assert!(!violations(case).is_empty(), "case {n} was not caught");
    }
}
