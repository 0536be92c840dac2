//! Fuzzing the decoding of stream records and queue messages: the orders trigger and every
//! listener of the template, built as the devstack builds them on the embedded backend, get
//! batches that mix good records with malformed DynamoDB images and message bodies. A
//! listener's good messages are the producers' samples of the events it declares, and of
//! events it does not take, which it ignores. Nothing panics, every bad record is a batch
//! item failure, and no good one is.
//!
//! `BULKHEAD_FUZZ_CASES` sets the number of batches per property (default 512).

use bulkhead::batch::Batch;
use devstack::registry::Functions;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How a record is broken.
#[derive(Clone, Debug)]
enum Breakage {
    /// An attribute value with a type DynamoDB does not have.
    UnknownType(String),
    /// `version` as a string.
    VersionIsText(String),
    /// `lines` is not a list of maps.
    LinesAreText(String),
    /// A numeric attribute whose number does not parse.
    BadNumber(String),
    /// A required attribute left out.
    Missing(&'static str),
    /// An event name streams do not have.
    EventName(String),
    /// No images at all.
    NoImages,
    /// The image is not a map.
    ImageIsText(String),
}

impl Breakage {
    /// Whether the record is bad. The orders ACL publishes nothing for a REMOVE (orders are
    /// never deleted; only expired idempotency records are), so it does not read what a
    /// REMOVE's image holds: an image is read only by an ACL that needs it. Only a record
    /// that does not decode at all is bad there.
    fn matters(&self, removal: bool) -> bool {
        !removal
            || matches!(
                self,
                Breakage::EventName(_) | Breakage::NoImages | Breakage::ImageIsText(_)
            )
    }
}

fn breakage() -> impl Strategy<Value = Breakage> {
    prop_oneof![
        "[A-Z]{1,3}"
            .prop_filter("a real type", |t| ![
                "S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"
            ]
            .contains(&t.as_str()))
            .prop_map(Breakage::UnknownType),
        "\\PC{0,12}".prop_map(Breakage::VersionIsText),
        "\\PC{0,12}".prop_map(Breakage::LinesAreText),
        prop_oneof![
            Just("1e99999".to_string()),
            Just("".to_string()),
            "[a-z ]{1,8}".prop_map(String::from),
            Just("99999999999999999999999999".to_string()),
        ]
        .prop_map(Breakage::BadNumber),
        prop::sample::select(vec!["status", "customerId", "version", "lines", "id"])
            .prop_map(Breakage::Missing),
        "[A-Za-z]{0,8}"
            .prop_filter("a real name", |n| !["INSERT", "MODIFY", "REMOVE"]
                .contains(&n.as_str()))
            .prop_map(Breakage::EventName),
        Just(Breakage::NoImages),
        "\\PC{0,12}".prop_map(Breakage::ImageIsText),
    ]
}

fn break_record(record: &mut Value, breakage: &Breakage) {
    let change = &mut record["dynamodb"];
    let image = if change.get("NewImage").is_some() {
        "NewImage"
    } else {
        "OldImage"
    };
    match breakage {
        Breakage::UnknownType(t) => change[image]["status"] = json!({ t.clone(): "x" }),
        Breakage::VersionIsText(text) => change[image]["version"] = json!({ "S": text }),
        Breakage::LinesAreText(text) => change[image]["lines"] = json!({ "S": text }),
        Breakage::BadNumber(n) => change[image]["totalCents"] = json!({ "N": n }),
        Breakage::Missing(attribute) => {
            change[image].as_object_mut().unwrap().remove(*attribute);
        }
        Breakage::EventName(name) => record["eventName"] = json!(name),
        Breakage::NoImages => {
            let change = change.as_object_mut().unwrap();
            change.remove("NewImage");
            change.remove("OldImage");
        }
        Breakage::ImageIsText(text) => change[image] = json!(text),
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

fn cases() -> u32 {
    std::env::var("BULKHEAD_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512)
}

/// Every function of the template, on a fresh embedded database, and one routed sample of
/// every event some producer publishes.
fn build() -> (tempfile::TempDir, Functions, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, functions) = system_tests::embedded_system(dir.path());
    let mut samples = vec![];
    for (_, trigger) in &functions.triggers {
        for event in trigger.sample_events().unwrap() {
            samples.push(json!({
                "version": "0", "id": "routed", "detail-type": event.event_type,
                "source": trigger.publishes().source, "account": "000000000000",
                "time": event.occurred_at, "region": "us-east-1", "resources": [],
                "detail": event,
            }));
        }
    }
    (dir, functions, samples)
}

#[test]
fn a_malformed_stream_record_is_the_batch_item_failure_at_its_place() {
    let (_dir, functions, _) = build();
    let (_, trigger) = functions
        .triggers
        .into_iter()
        .find(|(f, _)| f.service == "orders")
        .expect("the orders trigger, whose records the workload generator makes");
    let trigger = Arc::new(trigger);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = runner();
    let batch = (
        any::<u64>(),
        prop::collection::vec(prop::option::weighted(0.3, breakage()), 1..12),
    );
    runner
        .run(&batch, |(seed, breakages)| {
            let mut records = bench::stream_records(breakages.len(), seed);
            let removals: Vec<bool> = records.iter().map(|r| r["eventName"] == "REMOVE").collect();
            for (record, breakage) in records.iter_mut().zip(&breakages) {
                if let Some(breakage) = breakage {
                    break_record(record, breakage);
                }
            }
            let first_bad = breakages
                .iter()
                .zip(&removals)
                .position(|(b, removal)| b.as_ref().is_some_and(|b| b.matters(*removal)))
                .map(|i| {
                    records[i]["dynamodb"]["SequenceNumber"]
                        .as_str()
                        .unwrap()
                        .to_string()
                });
            // As the Lambda main hands it the payload: read in one pass where it can be.
            let text = json!({ "Records": records }).to_string();
            let trigger = trigger.clone();
            let response = runtime
                .block_on(async move {
                    tokio::spawn(async move { trigger.handle_payload(text.as_bytes(), None).await })
                        .await
                })
                .expect("the trigger does not panic")
                .expect("a batch decodes whatever its records");
            let failed: Vec<Option<String>> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            prop_assert_eq!(failed, first_bad.into_iter().map(Some).collect::<Vec<_>>());
            Ok(())
        })
        .unwrap();
}

/// How a message is broken.
#[derive(Clone, Debug)]
enum BadMessage {
    NotJson(String),
    NotAnObject(Value),
    NoDetail,
    VersionIsText(String),
    /// The public state is not an object: no tolerant reader can read it.
    StateIsNot(Value),
    /// The entry's detail-type names another event than its detail.
    Mislabelled,
    /// The SQS record itself does not decode: its body is not a string.
    BodyIsNumber(i64),
    NoBody,
}

fn bad_message() -> impl Strategy<Value = BadMessage> {
    prop_oneof![
        "\\PC{0,40}"
            .prop_filter("not JSON", |s| serde_json::from_str::<Value>(s).is_err())
            .prop_map(BadMessage::NotJson),
        prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            Just(json!([])),
            Just(json!(null)),
            "\\PC{0,10}".prop_map(|s| json!(s)),
        ]
        .prop_map(BadMessage::NotAnObject),
        Just(BadMessage::NoDetail),
        "\\PC{0,12}".prop_map(BadMessage::VersionIsText),
        prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            Just(json!([1, 2])),
            "\\PC{0,10}".prop_map(|s| json!(s)),
        ]
        .prop_map(BadMessage::StateIsNot),
        Just(BadMessage::Mislabelled),
        any::<i64>().prop_map(BadMessage::BodyIsNumber),
        Just(BadMessage::NoBody),
    ]
}

/// A message carrying `event` as a fresh aggregate, broken as `bad` says.
fn message(index: usize, fresh: u64, event: &Value, bad: Option<&BadMessage>) -> Value {
    let mut event = event.clone();
    let id = format!("fuzz-{fresh}");
    event["detail"]["aggregate"]["id"] = json!(id);
    if event["detail"]["state"].get("id").is_some() {
        event["detail"]["state"]["id"] = json!(id);
    }
    let mut body = Some(event.to_string());
    let mut raw_body = None;
    match bad {
        None => {}
        Some(BadMessage::NotJson(text)) => body = Some(text.clone()),
        Some(BadMessage::NotAnObject(value)) => body = Some(value.to_string()),
        Some(BadMessage::NoDetail) => {
            event.as_object_mut().unwrap().remove("detail");
            body = Some(event.to_string());
        }
        Some(BadMessage::VersionIsText(text)) => {
            event["detail"]["aggregate"]["version"] = json!(text);
            body = Some(event.to_string());
        }
        Some(BadMessage::StateIsNot(value)) => {
            event["detail"]["state"] = value.clone();
            body = Some(event.to_string());
        }
        Some(BadMessage::Mislabelled) => {
            event["detail"]["type"] = json!("SomethingElseHappened");
            body = Some(event.to_string());
        }
        Some(BadMessage::BodyIsNumber(n)) => raw_body = Some(json!(n)),
        Some(BadMessage::NoBody) => body = None,
    }
    json!({
        "messageId": format!("m-{index}"),
        "receiptHandle": format!("r-{index}"),
        "body": raw_body.unwrap_or(json!(body)),
        "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": "1795255200000" },
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:FuzzQueue",
        "awsRegion": "us-east-1",
    })
}

/// Every listener of the template gets batches of the events it takes, some broken, and
/// events it does not take: each broken one fails alone, and nothing else fails.
#[test]
fn every_malformed_message_fails_alone_in_every_listener() {
    let (_dir, functions, samples) = build();
    assert!(!functions.listeners.is_empty());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (function, listener) in functions.listeners {
        let (taken, foreign): (Vec<Value>, Vec<Value>) = samples.iter().cloned().partition(|e| {
            listener.takes(
                e["source"].as_str().unwrap(),
                e["detail-type"].as_str().unwrap(),
            )
        });
        assert!(
            !taken.is_empty(),
            "{} takes some published event",
            function.name
        );
        let listener = Arc::new(listener);
        let mut runner = runner();
        let batch = (
            any::<u32>(),
            prop::collection::vec(
                (
                    any::<prop::sample::Index>(),
                    any::<bool>(),
                    prop::option::weighted(0.3, bad_message()),
                ),
                1..10,
            ),
        );
        runner
            .run(&batch, |(base, messages)| {
                // Fresh aggregates in each case, so that every good message is news to the view.
                let base = u64::from(base) * 16;
                let mut bad_ids = BTreeSet::new();
                let records: Vec<Value> = messages
                    .iter()
                    .enumerate()
                    .map(|(i, (pick, other, bad))| {
                        // An event it does not take is never a failure, unless broken.
                        let pool = if *other && !foreign.is_empty() {
                            &foreign
                        } else {
                            &taken
                        };
                        let breaks = bad.as_ref().filter(|b| {
                            std::ptr::eq(pool, &taken) || !matches!(b, BadMessage::StateIsNot(_))
                        });
                        if breaks.is_some() {
                            bad_ids.insert(format!("m-{i}"));
                        }
                        message(i, base + i as u64, &pool[pick.index(pool.len())], breaks)
                    })
                    .collect();
                let text = json!({ "Records": records }).to_string();
                let batch = Batch::from_json(&text).expect("a batch decodes whatever its records");
                let listener = listener.clone();
                let response = runtime
                    .block_on(async move {
                        tokio::spawn(async move { listener.handle_batch(batch).await }).await
                    })
                    .expect("the listener does not panic");
                let failed: BTreeSet<String> = response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.clone())
                    .collect();
                prop_assert_eq!(&failed, &bad_ids, "{}", function.name);
                Ok(())
            })
            .unwrap();
    }
}
