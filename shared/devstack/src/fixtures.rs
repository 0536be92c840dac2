//! Invocation fixtures for every function of the template, derived from the template and
//! the functions' declarations: what `tests/run lambda` sends each bootstrap, with the answer
//! it must give. Nothing here is written by hand per function, so a new service has its
//! fixtures as soon as it is in the template and the registry.
//!
//! They are made by running the system in process on a fresh embedded database, the way
//! Lambda would see it on fresh tables:
//! - a trigger gets the stream records that writing its producer's sample histories leaves,
//!   then one record that does not decode; only that one fails;
//! - a listener gets what the bus routed to its queue from every producer's samples, then
//!   one message that is not an event; only that one fails;
//! - an API function gets a request for one of its routes (a `GET` without path
//!   parameters where it has one) from a caller with every role, and must answer as it
//!   answers here on an empty table.

use crate::infra::{ACCOUNT, EmbeddedInfra, Infra, REGION, sqs_event};
use crate::registry::Functions;
use crate::template::{FunctionSpec, Template};
use bulkhead::batch::Batch;
use bulkhead::store::{Condition, Write};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The roles a fixture's caller has: every role the API knows.
pub const ROLES: [&str; 4] = ["customer", "staff", "merchandiser", "marketing"];

/// One function's invocation and the answer it must give.
#[derive(Clone, Debug, Serialize)]
pub struct Fixture {
    pub event: Value,
    pub expect: Value,
}

fn problem(what: impl std::fmt::Display) -> crate::Error {
    crate::Error::Registry(format!("fixtures: {what}"))
}

/// A fixture for every function of the template, by logical id. `dir` holds the scratch
/// database.
pub async fn generate(template: &Template, dir: &Path) -> crate::Result<BTreeMap<String, Fixture>> {
    let infra = EmbeddedInfra::open(template, &dir.join("fixtures.db"))?;
    let functions = Functions::on(template, &infra)?;
    let mut fixtures = BTreeMap::new();
    for (function, trigger) in &functions.triggers {
        let mapping = function
            .streams
            .first()
            .ok_or_else(|| problem(&function.name))?;
        for history in trigger.sample_histories()? {
            for item in history {
                infra
                    .table(&mapping.table)?
                    .write(vec![Write::put(item, Condition::Always)])
                    .await?;
            }
        }
        let mut feed = infra.change_feed(&format!("fixtures/{}", function.name), &mapping.table)?;
        let mut records: Vec<Value> = feed
            .read(1000)
            .await?
            .into_iter()
            .map(|r| r.record)
            .collect();
        let poison = format!("{}", u64::MAX);
        records.push(
            json!({ "eventID": "poison", "eventName": "INSERT", "awsRegion": REGION,
            "dynamodb": { "Keys": {}, "NewImage": { "pk": { "NOT-A-TYPE": "x" } },
                          "SequenceNumber": poison, "SizeBytes": 1 } }),
        );
        let event = json!({ "Records": records });
        let response = trigger
            .handle_payload(event.to_string().as_bytes(), None)
            .await?;
        let expect = json!({ "batchItemFailures": [{ "itemIdentifier": poison }] });
        fixtures.insert(
            function.name.clone(),
            checked(function, event, expect, &response)?,
        );
    }
    for (function, listener) in &functions.listeners {
        let mapping = function
            .queues
            .first()
            .ok_or_else(|| problem(&function.name))?;
        let queue = infra.queue(&template.queues[&mapping.queue])?;
        let mut messages = queue.receive(1000, 60_000).await?;
        if messages.is_empty() {
            return Err(problem(format!(
                "no sample event reaches {}",
                function.name
            )));
        }
        let mut poison = messages[0].clone();
        poison.id = "not-an-event".into();
        poison.body = "not an event".into();
        messages.push(poison);
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", mapping.queue);
        let event = sqs_event(&queue_arn, &messages).and_then(serde_json::to_value);
        let event = event.map_err(problem)?;
        let response = listener
            .handle_batch(Batch::from_json(event.to_string())?)
            .await;
        let expect = json!({ "batchItemFailures": [{ "itemIdentifier": "not-an-event" }] });
        fixtures.insert(
            function.name.clone(),
            checked(function, event, expect, &response)?,
        );
    }
    for (function, router) in &functions.http {
        let event = api_request(function)?;
        let response = crate::gateway::invoke(router.clone(), event.clone()).await;
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(problem)?;
        let body: Value = serde_json::from_slice(&body).map_err(problem)?;
        if status >= 500 {
            return Err(problem(format!(
                "{} answered {status}: {body}",
                function.name
            )));
        }
        let expect = json!({ "statusCode": status, "body": body });
        fixtures.insert(function.name.clone(), Fixture { event, expect });
    }
    Ok(fixtures)
}

/// The fixture, once the in-process answer is the expected one.
fn checked(
    function: &FunctionSpec,
    event: Value,
    expect: Value,
    response: &impl Serialize,
) -> crate::Result<Fixture> {
    let answer = serde_json::to_value(response).map_err(problem)?;
    if answer != expect {
        return Err(problem(format!(
            "{} answered {answer} in process, not {expect}",
            function.name
        )));
    }
    Ok(Fixture { event, expect })
}

/// The API Gateway (HTTP API, payload 2.0) event for one of the function's routes.
fn api_request(function: &FunctionSpec) -> crate::Result<Value> {
    let route = function
        .routes
        .iter()
        .find(|r| r.method == "GET" && !r.path.contains('{'))
        .or_else(|| function.routes.iter().find(|r| r.method == "GET"))
        .or_else(|| function.routes.first())
        .ok_or_else(|| problem(format!("{} has no route", function.name)))?;
    let path: Vec<String> = route
        .path
        .split('/')
        .map(|segment| match segment.starts_with('{') {
            true => "fixture-1".to_string(),
            false => segment.to_string(),
        })
        .collect();
    let path = path.join("/");
    let route_key = format!("{} {}", route.method, route.path);
    Ok(json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": { "accept": "application/json", "host": "fixture.execute-api.us-east-1.amazonaws.com" },
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "fixture",
            "authorizer": { "jwt": { "claims": {
                "sub": "fixture-caller",
                "cognito:groups": format!("[{}]", ROLES.join(" ")),
                "iss": "https://devstack.bulkhead.local",
                "aud": "bulkhead",
                "exp": "1893456000",
                "iat": "1700000000",
            }, "scopes": null } },
            "domainName": "fixture.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "fixture",
            "http": { "method": route.method, "path": path, "protocol": "HTTP/1.1",
                      "sourceIp": "192.0.2.1", "userAgent": "fixture" },
            "requestId": "fixture-request",
            "routeKey": route_key,
            "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795255200000u64,
        },
        "isBase64Encoded": false,
    }))
}
