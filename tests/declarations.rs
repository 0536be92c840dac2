//! What the functions declare, held against the template that deploys them.
//!
//! Every producer's sample events go through the template's own bus rules, on the embedded
//! backend, and each listener's queue must receive exactly the events its declaration takes:
//! a rule that delivers an event the listener ignores fails, and so does a listener that
//! expects an event its rule does not deliver, or one that no producer publishes. Then every
//! function of the template must get a Lambda fixture that it answers as expected.

use bulkhead::bus::BusEntry;
use devstack::infra::Infra;
use devstack::registry::Functions;
use devstack::template::Template;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

type Published = BTreeMap<(String, String), BusEntry>;

/// One sample entry of every event some trigger publishes, by source and type.
fn published(functions: &Functions) -> Published {
    let mut published = Published::new();
    for (function, trigger) in &functions.triggers {
        let declared = trigger.publishes();
        assert_eq!(
            declared.source,
            bulkhead::event::source_of(&function.service),
            "{} publishes under its service's source",
            function.name
        );
        let samples = trigger.sample_events().unwrap();
        for event_type in declared.types {
            assert!(
                samples.iter().any(|e| e.event_type == *event_type),
                "{} declares {event_type} but its samples never make one",
                function.name
            );
        }
        for event in samples {
            let entry = BusEntry {
                source: declared.source.into(),
                detail_type: event.event_type.clone(),
                detail: serde_json::to_string(&event).unwrap(),
                time: event.occurred_at.clone(),
            };
            published.insert((entry.source.clone(), entry.detail_type.clone()), entry);
        }
    }
    published
}

#[tokio::test]
async fn every_rule_delivers_exactly_what_its_listener_declares() {
    let dir = tempfile::tempdir().unwrap();
    let (template, infra, functions) = system_tests::embedded_system(dir.path());
    let published = published(&functions);
    assert!(
        !functions.listeners.is_empty(),
        "the template has listeners"
    );
    for bus in &template.buses {
        let entries: Vec<BusEntry> = published.values().cloned().collect();
        for chunk in entries.chunks(10) {
            let outcomes = infra.bus(bus).unwrap().put_events(chunk).await.unwrap();
            assert!(outcomes.iter().all(Result::is_ok));
        }
    }
    for (function, listener) in &functions.listeners {
        for set in listener.subscriptions() {
            for event_type in set.types {
                assert!(
                    published.contains_key(&(set.source.to_string(), event_type.to_string())),
                    "{} declares {event_type} from {}, which no producer publishes",
                    function.name,
                    set.source
                );
            }
        }
        let expected: BTreeSet<(String, String)> = published
            .keys()
            .filter(|(source, event_type)| listener.takes(source, event_type))
            .cloned()
            .collect();
        assert!(!function.queues.is_empty(), "{} has a queue", function.name);
        for mapping in &function.queues {
            let delivered: BTreeSet<(String, String)> = infra
                .peek(&mapping.queue)
                .await
                .unwrap()
                .iter()
                .map(|body| {
                    let event: Value = serde_json::from_str(body).unwrap();
                    let field = |name: &str| event[name].as_str().unwrap().to_string();
                    (field("source"), field("detail-type"))
                })
                .collect();
            let ignored: Vec<_> = delivered.difference(&expected).collect();
            let missed: Vec<_> = expected.difference(&delivered).collect();
            assert!(
                ignored.is_empty() && missed.is_empty(),
                "{}: the rules on {} deliver {ignored:?}, which it does not take, and miss \
                 {missed:?}, which it declares",
                function.name,
                mapping.queue
            );
        }
    }
}

#[tokio::test]
async fn every_function_gets_a_fixture_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let template = Template::load(&system_tests::template_path()).unwrap();
    let fixtures = devstack::fixtures::generate(&template, dir.path())
        .await
        .unwrap();
    let functions: BTreeSet<&String> = template.functions.iter().map(|f| &f.name).collect();
    assert_eq!(fixtures.keys().collect::<BTreeSet<_>>(), functions);
    for (function, fixture) in &fixtures {
        let failures = &fixture.expect["batchItemFailures"];
        if let Some(records) = fixture.event["Records"].as_array() {
            assert!(records.len() > 1, "{function}: samples besides the poison");
            assert_eq!(failures.as_array().map(Vec::len), Some(1), "{function}");
        } else {
            assert!(fixture.expect["statusCode"].as_u64().unwrap() < 500);
        }
    }
}
