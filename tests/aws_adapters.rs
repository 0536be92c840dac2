//! The AWS adapters on their own, through the AWS SDK on the wire, against moto.

use async_trait::async_trait;
use bulkhead::batch::Batch;
use bulkhead::bus::{Bus, BusEntry, EntryFailure};
use bulkhead::embedded::Database;
use bulkhead::event::{AggregateRef, EventToPublish, PublicEvent};
use bulkhead::store::{AttributeValue, Condition, Key, Query, Write, to_item};
use bulkhead::trigger::{Change, Trigger};
use bulkhead::{Error, Result};
use devstack::infra::Infra;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use system_tests::Moto;

async fn infra(moto: &Moto) -> devstack::aws::AwsInfra {
    let template = devstack::template::Template::load(&system_tests::template_path()).unwrap();
    devstack::aws::AwsInfra::provision(
        &template,
        &moto.url,
        "adapters",
        Database::open_in_memory().unwrap(),
    )
    .await
    .unwrap()
}

fn item(pk: &str, version: u64) -> bulkhead::store::Item {
    to_item(&json!({"pk": pk, "sk": "#", "version": version, "gsi1pk": "C", "gsi1sk": pk})).unwrap()
}

#[tokio::test]
async fn conditional_writes_map_to_conflicts_with_the_failing_write() {
    let moto = Moto::start();
    let table = infra(&moto).await.table("TrackingTable").unwrap();
    table
        .write(vec![Write::put(item("a", 1), Condition::NotExists)])
        .await
        .unwrap();
    let again = table
        .write(vec![Write::put(item("a", 1), Condition::NotExists)])
        .await;
    assert!(
        matches!(again, Err(Error::ConditionFailed { index: 0 })),
        "{again:?}"
    );
    let stale = table
        .write(vec![Write::put(item("a", 2), Condition::VersionIs(7))])
        .await;
    assert!(
        matches!(stale, Err(Error::ConditionFailed { index: 0 })),
        "{stale:?}"
    );
    table
        .write(vec![Write::put(item("a", 2), Condition::VersionIs(1))])
        .await
        .unwrap();
    assert!(matches!(
        table
            .write(vec![Write::put(item("a", 2), Condition::OlderThan(2))])
            .await,
        Err(Error::ConditionFailed { index: 0 })
    ));

    // TransactionCanceledException names the write that failed; nothing is applied.
    let group = vec![
        Write::put(item("b", 1), Condition::NotExists),
        Write::put(item("a", 9), Condition::VersionIs(1)),
    ];
    let cancelled = table.write(group).await;
    assert!(
        matches!(cancelled, Err(Error::ConditionFailed { index: 1 })),
        "{cancelled:?}"
    );
    assert!(table.get(&Key::new("b", "#")).await.unwrap().is_none());

    let add = |n| Write::Add {
        key: Key::new("n", "#"),
        set_if_absent: to_item(&json!({"label": "counter"})).unwrap(),
        add: vec![("count".into(), n)],
    };
    table
        .write(vec![add(5), Write::put(item("c", 1), Condition::NotExists)])
        .await
        .unwrap();
    table.write(vec![add(-2)]).await.unwrap();
    let counter = table.get(&Key::new("n", "#")).await.unwrap().unwrap();
    assert_eq!(counter.get("count"), Some(&AttributeValue::N("3".into())));
    assert_eq!(
        counter.get("label"),
        Some(&AttributeValue::S("counter".into()))
    );
}

#[tokio::test]
async fn many_items_read_in_batches_in_the_order_asked_with_repeats_and_gaps() {
    let moto = Moto::start();
    let table = infra(&moto).await.table("TrackingTable").unwrap();
    for i in (0..150).step_by(2) {
        table
            .write(vec![Write::put(
                item(&format!("p{i}"), i),
                Condition::Always,
            )])
            .await
            .unwrap();
    }
    // 150 distinct keys (two BatchGetItem requests), one of them asked twice.
    let mut keys: Vec<Key> = (0..150).map(|i| Key::new(format!("p{i}"), "#")).collect();
    keys.push(Key::new("p4", "#"));
    let items = table.get_many(&keys).await.unwrap();
    assert_eq!(items.len(), keys.len());
    for (key, found) in keys.iter().zip(&items) {
        let i: u64 = key.pk[1..].parse().unwrap();
        match found {
            Some(item) => {
                assert_eq!(i % 2, 0, "{key:?} was never written");
                assert_eq!(Key::of(item).unwrap(), *key);
                assert_eq!(bulkhead::store::version_of(item), Some(i));
            }
            None => assert_eq!(i % 2, 1, "{key:?} was written but not found"),
        }
    }
}

#[tokio::test]
async fn index_queries_page_with_cursors_bound_to_their_partition() {
    let moto = Moto::start();
    let table = infra(&moto).await.table("TrackingTable").unwrap();
    for pk in ["a", "b", "c", "d", "e"] {
        table
            .write(vec![Write::put(item(pk, 1), Condition::Always)])
            .await
            .unwrap();
    }
    let mut query = Query {
        index: Some("gsi1".into()),
        partition: "C".into(),
        descending: true,
        limit: 2,
        ..Query::default()
    };
    let mut seen = vec![];
    loop {
        let page = table.query(&query).await.unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|i| bulkhead::store::string_attr(i, "pk").unwrap()),
        );
        match page.cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
        let foreign = Query {
            partition: "OTHER".into(),
            ..query.clone()
        };
        assert!(matches!(
            table.query(&foreign).await,
            Err(Error::InvalidCursor)
        ));
    }
    assert_eq!(seen, ["e", "d", "c", "b", "a"]);
}

/// Injects failures: the first time it sees a chosen entry, it corrupts the entry's detail so
/// that EventBridge itself rejects it, and reports the rejection as throttling.
struct Flaky {
    inner: Arc<dyn Bus>,
    unlucky: HashSet<String>,
    seen: Mutex<HashSet<String>>,
    attempts: Mutex<BTreeMap<String, u32>>,
}

#[async_trait]
impl Bus for Flaky {
    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> Result<Vec<std::result::Result<(), EntryFailure>>> {
        let mut injected = vec![];
        let sent: Vec<BusEntry> = entries
            .iter()
            .map(|e| {
                let id = serde_json::from_str::<serde_json::Value>(&e.detail).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                *self.attempts.lock().unwrap().entry(id.clone()).or_default() += 1;
                let first_time = self.seen.lock().unwrap().insert(id.clone());
                let corrupt = first_time && self.unlucky.contains(&id);
                injected.push(corrupt);
                if corrupt {
                    BusEntry {
                        detail: "not json".into(),
                        ..e.clone()
                    }
                } else {
                    e.clone()
                }
            })
            .collect();
        let outcomes = self.inner.put_events(&sent).await?;
        Ok(outcomes
            .into_iter()
            .zip(injected)
            .map(|(outcome, injected)| match (outcome, injected) {
                (Err(_), true) => Err(EntryFailure {
                    code: "ThrottlingException".into(),
                    message: "injected".into(),
                }),
                (other, _) => other,
            })
            .collect())
    }
}

fn acl(change: Change) -> Result<Option<EventToPublish>> {
    let pk = change.pk().to_string();
    let mut event = PublicEvent::new(
        "Tested",
        AggregateRef {
            kind: "thing".into(),
            id: pk,
            version: 1,
        },
        "2026-11-22T10:00:00.000Z".into(),
    );
    event.state = json!({});
    Ok(Some(event.to_publish()?))
}

#[tokio::test]
async fn rejected_entries_are_retried_alone_until_nothing_is_lost_or_sent_twice() {
    let moto = Moto::start();
    let infra = infra(&moto).await;
    let unlucky: HashSet<String> = (0..25)
        .filter(|n| n % 3 == 0)
        .map(|n| format!("thing:k{n}:1"))
        .collect();
    let flaky = Arc::new(Flaky {
        inner: infra.bus("BulkheadBus").unwrap(),
        unlucky: unlucky.clone(),
        seen: Mutex::default(),
        attempts: Mutex::default(),
    });
    let publishes = bulkhead::event::EventSet {
        source: "bulkhead.orders",
        types: &["Tested"],
    };
    let trigger = Trigger::new(flaky.clone(), publishes, acl);
    let records: Vec<_> = (0..25)
        .map(|n| {
            json!({"eventID": n.to_string(), "eventName": "INSERT", "awsRegion": "us-east-1", "dynamodb": {
                "Keys": {"pk": {"S": format!("k{n}")}, "sk": {"S": "#"}},
                "NewImage": {"pk": {"S": format!("k{n}")}, "sk": {"S": "#"}},
                "SequenceNumber": format!("{n:03}"), "SizeBytes": 1 }})
        })
        .collect();
    let event = Batch::from_json(json!({ "Records": records }).to_string()).unwrap();
    let response = trigger
        .handle_batch(event, Some(Instant::now() + Duration::from_secs(20)))
        .await;
    assert!(response.batch_item_failures.is_empty());

    let attempts = flaky.attempts.lock().unwrap().clone();
    for (id, n) in &attempts {
        assert_eq!(
            *n,
            if unlucky.contains(id) { 2 } else { 1 },
            "{id} was sent {n} times"
        );
    }
    let mut delivered: Vec<String> = vec![];
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered.len() < 25 && Instant::now() < deadline {
        delivered = infra
            .archived()
            .await
            .unwrap()
            .iter()
            .map(|e| e["detail"]["id"].as_str().unwrap().to_string())
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let distinct: HashSet<&String> = delivered.iter().collect();
    assert_eq!(
        (delivered.len(), distinct.len()),
        (25, 25),
        "every event arrived exactly once"
    );
    let times: HashSet<String> = infra
        .archived()
        .await
        .unwrap()
        .iter()
        .map(|e| e["time"].to_string())
        .collect();
    assert_eq!(
        times,
        HashSet::from([r#""2026-11-22T10:00:00Z""#.to_string()]),
        "each event's time is the time it occurred"
    );
}

#[tokio::test]
async fn the_ses_mailer_sends_from_a_verified_identity_and_fails_clearly_otherwise() {
    use bulkhead::mail::ses::SesMailer;
    use bulkhead::mail::{Mail, Mailer};
    let moto = Moto::start();
    let config = bulkhead::sdk::defaults()
        .endpoint_url(&moto.url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .load()
        .await;
    let client = aws_sdk_sesv2::Client::new(&config);
    let mailer = SesMailer::new(
        client.clone(),
        "notifications@example.com",
        "{customer}@example.com",
    )
    .unwrap();
    assert_eq!(mailer.address("alice"), "alice@example.com");
    let mail = Mail {
        id: "MESSAGE#1".into(),
        to: "alice".into(),
        subject: "Your order o-1 was shipped".into(),
        text: "Order o-1".into(),
    };
    let unverified = mailer.send(&mail).await;
    assert!(
        matches!(&unverified, Err(Error::Mail(m)) if m.contains("MESSAGE#1")),
        "{unverified:?}"
    );
    client
        .create_email_identity()
        .email_identity("notifications@example.com")
        .send()
        .await
        .unwrap();
    mailer.send(&mail).await.unwrap();
    assert!(SesMailer::new(client.clone(), "nobody", "{customer}@example.com").is_err());
    assert!(SesMailer::new(client, "a@example.com", "fixed@example.com").is_err());
}
