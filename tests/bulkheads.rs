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
        if !props["Policies"].is_null() {
            found.push(format!(
                "{name} has SAM policies; its role says what it may do"
            ));
        }
        let role = referenced(&props["Role"]);
        match role.as_slice() {
            [role] if mine(role) => found.extend(role_violations(
                &resources[role.as_str()],
                role,
                is_trigger,
                &mine,
            )),
            other => found.push(format!(
                "{name} must use a role of its own service, not {other:?}"
            )),
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

/// What a role grants beyond its function's own service.
fn role_violations(
    role: &Value,
    name: &str,
    is_trigger: bool,
    mine: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut found = vec![];
    let props = &role["Properties"];
    for managed in props["ManagedPolicyArns"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let text = referenced(managed).join("") + &format!("{managed:?}");
        if !text.contains("AWSLambdaBasicExecutionRole") {
            found.push(format!("{name}: managed policy {managed:?}"));
        }
    }
    for policy in props["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["PolicyDocument"]["Statement"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let actions: Vec<String> = match &statement["Action"] {
                Value::String(a) => vec![a.clone()],
                other => other
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(String::from))
                    .collect(),
            };
            let resources = &statement["Resource"];
            let everything = resources.as_str() == Some("*")
                || resources
                    .as_sequence()
                    .is_some_and(|r| r.iter().any(|r| r.as_str() == Some("*")));
            if everything && actions.iter().any(|a| a != "dynamodb:ListStreams") {
                found.push(format!("{name}: {actions:?} on *"));
            }
            for target in referenced(resources) {
                let shared_bus = target == "BulkheadBus"
                    && is_trigger
                    && actions.iter().all(|a| a == "events:PutEvents");
                if !mine(&target) && !shared_bus {
                    found.push(format!("{name}: {actions:?} on {target}"));
                }
            }
            if actions.iter().any(|a| a.starts_with("events:")) && !is_trigger {
                found.push(format!("{name}: only triggers may put events"));
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
    let role = text.find("  TrackingApiRole:").unwrap();
    let (before, after) = text.split_at(role);
    let in_role = |from: &str, to: &str| format!("{before}{}", after.replacen(from, to, 1));
    let statement = "            Statement:\n";
    let cases = [
        // Tracking's API reads the orders table.
        in_role("!GetAtt TrackingTable.Arn", "!GetAtt OrdersTable.Arn"),
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
        in_role(statement, &format!("{statement}              - Effect: Allow\n                Action: events:PutEvents\n                Resource: !GetAtt BulkheadBus.Arn\n")),
        // Nothing on every resource.
        in_role(statement, &format!("{statement}              - Effect: Allow\n                Action: dynamodb:*\n                Resource: \"*\"\n")),
        // No AWS-managed grants beyond logs.
        in_role("      ManagedPolicyArns:\n", "      ManagedPolicyArns:\n        - arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess\n"),
        // A function may not borrow another service's role.
        text.replace("      Role: !GetAtt SalesApiRole.Arn", "      Role: !GetAtt OrdersApiRole.Arn"),
    ];
    for (n, case) in cases.iter().enumerate() {
        assert_ne!(case, &text, "case {n} changed nothing");
        assert!(!violations(case).is_empty(), "case {n} was not caught");
    }
}
