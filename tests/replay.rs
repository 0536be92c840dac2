//! Replay: the archive listed and filtered, archived events replayed to one service's rules
//! only, a new service bootstrapped from the archive, and a side effect (mail) never repeated.
//! On both backends; what moto's EventBridge lacks is in `eventbridge_replay_on_moto`.

use bulkhead::listener::Delivered;
use bulkhead::listener::snapshot;
use bulkhead::store::Query;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use system_tests::*;

const CUSTOMERS: [&str; 3] = ["alice", "bob", "carol"];

/// Orders for three customers, then shipped, delivered or cancelled: every kind of message.
async fn traffic(stack: &Stack) {
    stack.product("A1", "Anchor", 1250).await;
    stack.product("B2", "Buoy", 300).await;
    let staff = stack.token("sam", &["staff"]);
    for (n, customer) in CUSTOMERS.iter().enumerate() {
        let token = stack.token(customer, &["customer"]);
        let shipped = stack
            .order(customer, json!([{"sku": "A1", "quantity": n + 1}]))
            .await;
        let cancelled = stack
            .order(customer, json!([{"sku": "B2", "quantity": 2}]))
            .await;
        stack
            .post(&format!("/orders/{shipped}/ship"), &staff, json!({}))
            .await
            .expect(200);
        if n != 1 {
            stack
                .post(&format!("/orders/{shipped}/deliver"), &staff, json!({}))
                .await
                .expect(200);
        }
        stack
            .post(&format!("/orders/{cancelled}/cancel"), &token, json!({}))
            .await
            .expect(200);
    }
    stack.drain().await;
}

async fn admin(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> Reply {
    stack
        .send(method, &format!("/_devstack/{path}"), None, body, &[])
        .await
}

async fn inboxes(stack: &Stack) -> BTreeMap<String, Vec<Value>> {
    let mut all = BTreeMap::new();
    for customer in CUSTOMERS {
        let token = stack.token(customer, &["customer"]);
        let page = stack
            .get("/notifications?limit=100", &token)
            .await
            .expect(200);
        all.insert(
            customer.to_string(),
            page["notifications"].as_array().unwrap().clone(),
        );
    }
    all
}

async fn outbox(stack: &Stack) -> Vec<Value> {
    admin(stack, Method::GET, "outbox", None)
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .clone()
}

fn whole_archive() -> Value {
    let now = chrono_now();
    json!({"from": "2000-01-01T00:00:00Z", "to": now})
}

/// Now, to the second, as RFC 3339: a window may end here.
fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Starts a replay of the whole archive to `service` and waits until it is over.
async fn replay(stack: &Stack, service: &str) -> Value {
    // The window ends now, at a whole second: let the last event's second pass.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut body = whole_archive();
    body["service"] = json!(service);
    let started = admin(stack, Method::POST, "replays", Some(body))
        .await
        .expect(201);
    wait(stack, started["name"].as_str().unwrap()).await
}

async fn wait(stack: &Stack, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = admin(stack, Method::GET, &format!("replays/{name}"), None)
            .await
            .expect(200);
        if ["COMPLETED", "CANCELLED", "FAILED"].contains(&status["state"].as_str().unwrap()) {
            return status;
        }
        assert!(Instant::now() < deadline, "replay did not end: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_message(event: &Value) -> bool {
    event["source"] == "bulkhead.orders"
        && ["OrderShipped", "OrderDelivered", "OrderCancelled"]
            .contains(&event["detail-type"].as_str().unwrap())
}

#[tokio::test]
async fn the_archive_is_listed_by_event_time_filtered_and_paged() {
    let stack = Stack::start().await;
    traffic(&stack).await;
    let archived = stack.archived().await;
    let mut paged = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "archives/BulkheadArchive/page?limit=4".to_string(),
            Some(c) => format!("archives/BulkheadArchive/page?limit=4&cursor={c}"),
        };
        let page = admin(&stack, Method::GET, &path, None).await.expect(200);
        paged.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let ids = |events: &[Value]| {
        let mut ids: Vec<String> = events
            .iter()
            .map(|e| e["detail"]["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let events: Vec<Value> = paged.iter().map(|e| e["event"].clone()).collect();
    assert_eq!(ids(&events), ids(&archived), "pages cover the archive once");
    let times: Vec<i64> = paged
        .iter()
        .map(|e| e["timeMillis"].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "ordered by event time"
    );

    let order = archived
        .iter()
        .find(|e| e["detail-type"] == "OrderShipped")
        .unwrap();
    let id = order["detail"]["aggregate"]["id"].as_str().unwrap();
    let page = admin(
        &stack,
        Method::GET,
        &format!("archives/BulkheadArchive/page?aggregateId={id}&source=bulkhead.orders"),
        None,
    )
    .await
    .expect(200);
    let versions: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["event"]["detail"]["aggregate"]["version"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let expected: Vec<i64> = (1..=versions.len() as i64).collect();
    assert!(versions.len() >= 2);
    assert_eq!(versions, expected, "one order's history, in order");
    let shipped = admin(
        &stack,
        Method::GET,
        "archives/BulkheadArchive/page?type=OrderShipped&limit=100",
        None,
    )
    .await
    .expect(200);
    assert_eq!(shipped["events"].as_array().unwrap().len(), CUSTOMERS.len());
    let (first, last) = (times[0], times[times.len() - 1]);
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let window = admin(
        &stack,
        Method::GET,
        &format!(
            "archives/BulkheadArchive/page?from={}&to={}&limit=1000",
            at(first + 1),
            at(last)
        ),
        None,
    )
    .await
    .expect(200);
    let inside = times.iter().filter(|t| **t > first && **t < last).count();
    assert_eq!(window["events"].as_array().unwrap().len(), inside);
    for bad in [
        "limit=0",
        "limit=1001",
        "from=yesterday",
        "colour=red",
        "cursor=x",
    ] {
        admin(
            &stack,
            Method::GET,
            &format!("archives/BulkheadArchive/page?{bad}"),
            None,
        )
        .await
        .client_problem();
    }
    admin(&stack, Method::GET, "archives/Nope/page", None)
        .await
        .problem(404, Some("unknown-archive"));
}

#[tokio::test]
async fn a_replay_reaches_one_service_only_marked_as_a_replay() {
    let stack = Stack::start().await;
    traffic(&stack).await;
    let archived = stack.archived().await;
    let messages = archived.iter().filter(|e| is_message(e)).count();
    let before = inboxes(&stack).await;
    let sent = outbox(&stack).await;
    assert_eq!(sent.len(), messages, "one mail per message, live");
    // Every listener stops consuming, so that their queues show what the replay sent.
    stack
        .set_down(&[
            "orders",
            "tracking",
            "fulfillment",
            "sales",
            "notifications",
        ])
        .await;
    let done = replay(&stack, "notifications").await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(done["rules"], json!(["NotificationsRule"]));
    assert_eq!(done["inWindow"], messages);
    assert_eq!(done["replayed"], messages);
    let status = stack.status().await;
    for (queue, depth) in status["queues"].as_object().unwrap() {
        let expected = if queue == "NotificationsQueue" {
            messages
        } else {
            0
        };
        assert_eq!(depth["visible"], expected, "{queue}: {depth}");
    }
    if !on_moto() {
        for body in stack.queue("NotificationsQueue").await {
            let delivered: Delivered = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(delivered.replay_name.as_deref(), done["name"].as_str());
            assert!(delivered.is_replay());
            let original = archived
                .iter()
                .find(|e| e["detail"]["id"] == body["detail"]["id"])
                .unwrap();
            assert_ne!(
                original["id"], body["id"],
                "a replayed event has an id of its own"
            );
            assert_eq!(original["time"], body["time"], "and keeps its event time");
        }
    }
    stack.set_down(&[]).await;
    stack.drain().await;
    assert_eq!(
        inboxes(&stack).await,
        before,
        "the view is exact under replay"
    );
    assert_eq!(outbox(&stack).await, sent, "and nothing is mailed again");
    assert_eq!(
        stack.archived().await.len(),
        archived.len(),
        "replays are not archived again"
    );
}

#[tokio::test]
async fn replaying_the_whole_archive_twice_mails_each_message_exactly_once() {
    let stack = Stack::start().await;
    traffic(&stack).await;
    let messages: usize = inboxes(&stack).await.values().map(Vec::len).sum();
    assert_eq!(messages, 8);
    for _ in 0..2 {
        let done = replay(&stack, "notifications").await;
        assert_eq!(done["state"], "COMPLETED", "{done}");
        stack.drain().await;
    }
    let sent = outbox(&stack).await;
    let mut ids: Vec<&str> = sent.iter().map(|m| m["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (sent.len(), ids.len()),
        (messages, messages),
        "sends: exactly one per message"
    );
    let total: usize = inboxes(&stack).await.values().map(Vec::len).sum();
    assert_eq!(total, messages);
}

#[tokio::test]
async fn bad_replays_are_refused_and_change_nothing() {
    let stack = Stack::start().await;
    traffic(&stack).await;
    let sent = outbox(&stack).await;
    let start = |body: Value| admin(&stack, Method::POST, "replays", Some(body));
    let now = chrono_now();
    let cases = [
        (
            json!({"service": "nobody", "from": "2026-01-01T00:00:00Z", "to": now}),
            404,
            "unknown-service",
        ),
        (
            json!({"service": "catalog", "from": "2026-01-01T00:00:00Z", "to": now}),
            404,
            "unknown-service",
        ),
        (
            json!({"service": "notifications", "rule": "TrackingRule", "from": "2026-01-01T00:00:00Z", "to": now}),
            404,
            "unknown-rule",
        ),
        (
            json!({"service": "notifications", "archive": "OtherArchive", "from": "2026-01-01T00:00:00Z", "to": now}),
            404,
            "unknown-archive",
        ),
        (
            json!({"service": "notifications", "from": now, "to": "2026-01-01T00:00:00Z"}),
            422,
            "invalid-window",
        ),
        (
            json!({"service": "notifications", "from": now, "to": now}),
            422,
            "invalid-window",
        ),
        (
            json!({"service": "notifications", "from": "2026-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z"}),
            422,
            "invalid-window",
        ),
        (
            json!({"service": "notifications", "from": "last week", "to": now}),
            422,
            "invalid-window",
        ),
    ];
    for (body, status, code) in cases {
        start(body.clone()).await.problem(status, Some(code));
    }
    start(json!({"service": "notifications"}))
        .await
        .client_problem();
    assert_eq!(
        admin(&stack, Method::GET, "replays", None)
            .await
            .expect(200),
        json!([]),
        "nothing started"
    );
    // A down bus holds a replay RUNNING: a second one for the service is refused.
    stack.set_down(&["bus"]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut body = whole_archive();
    body["service"] = json!("notifications");
    let running = start(body.clone()).await.expect(201);
    let name = running["name"].as_str().unwrap().to_string();
    start(body.clone())
        .await
        .problem(409, Some("replay-running"));
    let mut other = body.clone();
    other["service"] = json!("tracking");
    let tracking = start(other).await.expect(201);
    let cancelled = admin(
        &stack,
        Method::POST,
        &format!("replays/{name}/cancel"),
        None,
    )
    .await
    .expect(200);
    assert!(["CANCELLING", "CANCELLED"].contains(&cancelled["state"].as_str().unwrap()));
    let over = wait(&stack, &name).await;
    assert_eq!(over["state"], "CANCELLED");
    assert_eq!(over["replayed"], 0, "cancelled before the bus came back");
    admin(
        &stack,
        Method::POST,
        &format!("replays/{name}/cancel"),
        None,
    )
    .await
    .problem(409, Some("replay-finished"));
    admin(&stack, Method::GET, "replays/nope", None)
        .await
        .problem(404, Some("unknown-replay"));
    admin(
        &stack,
        Method::POST,
        &format!("replays/{}/cancel", tracking["name"].as_str().unwrap()),
        None,
    )
    .await
    .expect(200);
    stack.set_down(&[]).await;
    let status = stack.status().await;
    for (queue, depth) in status["queues"].as_object().unwrap() {
        assert_eq!(depth["visible"], 0, "{queue}: {depth}");
    }
    assert_eq!(outbox(&stack).await, sent);
}

/// The repository's template without one service's resources (its logical ids start with
/// its name) and outputs.
fn template_without(service: &str) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(template_path()).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let prefix = {
        let mut c = service.chars();
        c.next()
            .unwrap()
            .to_uppercase()
            .chain(c)
            .collect::<String>()
    };
    for section in ["Resources", "Outputs"] {
        let map = doc[section].as_mapping_mut().unwrap();
        map.retain(|k, _| !k.as_str().unwrap().starts_with(&prefix));
    }
    let dir = tempfile::tempdir().unwrap();
    // The devstack finds the event contracts beside its template.
    let shared = template_path().parent().unwrap().join("shared");
    std::os::unix::fs::symlink(shared, dir.path().join("shared")).unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    (dir, path)
}

/// What notifications' view holds had it run from the start: the same listener, given the
/// archived events as they were published, in that order, on a fresh table.
async fn as_if_from_the_start(archived: &[Value]) -> (BTreeMap<String, Vec<Value>>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (template, infra, functions) = embedded_system(dir.path());
    let (_, listener) = functions
        .listeners
        .iter()
        .find(|(f, _)| f.service == "notifications")
        .unwrap();
    for event in archived {
        let delivered: Delivered = serde_json::from_value(event.clone()).unwrap();
        if listener.takes(&delivered.source, &delivered.detail_type) {
            listener.apply(delivered).await.unwrap();
        }
    }
    let table = {
        use devstack::infra::Infra;
        let name = template
            .tables
            .keys()
            .find(|t| t.starts_with("Notifications"))
            .unwrap();
        infra.table(name).unwrap()
    };
    let mut all = BTreeMap::new();
    for customer in CUSTOMERS {
        let query = Query {
            partition: notifications_partition(customer),
            descending: true,
            limit: 100,
            ..Query::default()
        };
        let (rows, _) = snapshot::list::<Value>(table.as_ref(), &query)
            .await
            .unwrap();
        all.insert(customer.to_string(), rows);
    }
    let mut mails: Vec<String> = {
        use devstack::infra::Infra;
        infra.outbox().unwrap().into_iter().map(|m| m.id).collect()
    };
    mails.sort();
    (all, mails)
}

fn notifications_partition(customer: &str) -> String {
    format!("CUSTOMER#{customer}")
}

#[tokio::test]
async fn a_new_service_bootstraps_from_the_archive_as_if_it_had_run_from_the_start() {
    let (_dir, without) = template_without("notifications");
    let stack = Stack::start_from(without).await;
    traffic(&stack).await;
    assert!(
        !stack.status().await["queues"]
            .as_object()
            .unwrap()
            .contains_key("NotificationsQueue"),
        "notifications is not there"
    );
    let archived = stack.archived().await;
    let stack = stack.restart_from(template_path()).await;
    let empty: usize = inboxes(&stack).await.values().map(Vec::len).sum();
    assert_eq!(empty, 0, "a new service starts empty");
    let done = replay(&stack, "notifications").await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    stack.drain().await;
    let (expected, expected_mails) = as_if_from_the_start(&archived).await;
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 8);
    assert_eq!(inboxes(&stack).await, expected, "item for item");
    let mut mails: Vec<String> = outbox(&stack)
        .await
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    mails.sort();
    assert_eq!(mails, expected_mails, "each message mailed once");
}

/// EventBridge's own replay, as `devstack replay --aws-endpoint` runs it, on moto: the
/// archive at the endpoint, `StartReplay` with the service's rule ARNs as `FilterArns`,
/// `DescribeReplay` and `CancelReplay`. moto 5.2.5 replays every archived event (it ignores
/// the window) to every rule of the bus (it ignores `FilterArns`), synchronously within
/// `StartReplay` (so a replay is never seen RUNNING, and "already running" cannot be shown
/// there); the views stay exact all the same.
#[cfg(feature = "moto")]
#[tokio::test]
async fn eventbridge_replay_on_moto() {
    use devstack::replay::eventbridge::{EventBridgeReplays, Names};
    use devstack::replay::{Refused, Request};
    let stack = Stack::start().await;
    traffic(&stack).await;
    let before = inboxes(&stack).await;
    let sent = outbox(&stack).await;
    let replays = EventBridgeReplays::connect(
        &template_path(),
        stack.aws_endpoint().as_deref(),
        Names::Prefix("bulkhead".into()),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let request = |service: &str, from: &str, to: &str| Request {
        service: service.into(),
        from: from.into(),
        to: to.into(),
        rule: None,
        archive: None,
    };
    let now = chrono_now();
    for (bad, refused) in [
        (
            request("nobody", "2026-01-01T00:00:00Z", &now),
            "UnknownService",
        ),
        (
            request("notifications", &now, "2026-01-01T00:00:00Z"),
            "BadWindow",
        ),
        (
            request(
                "notifications",
                "2026-01-01T00:00:00Z",
                "2999-01-01T00:00:00Z",
            ),
            "BadWindow",
        ),
    ] {
        let e = replays.start(&bad).await.unwrap_err();
        assert!(
            matches!(e, devstack::Error::Replay(ref r) if format!("{r:?}").starts_with(refused)),
            "{e}"
        );
    }
    let mut unknown_rule = request("notifications", "2026-01-01T00:00:00Z", &now);
    unknown_rule.rule = Some("SalesRule".into());
    assert!(matches!(
        replays.start(&unknown_rule).await,
        Err(devstack::Error::Replay(Refused::UnknownRule { .. }))
    ));
    let messages = stack
        .archived()
        .await
        .iter()
        .filter(|e| is_message(e))
        .count();
    stack
        .set_down(&[
            "orders",
            "tracking",
            "fulfillment",
            "sales",
            "notifications",
        ])
        .await;
    let started = replays
        .start(&request("notifications", "2026-01-01T00:00:00Z", &now))
        .await
        .unwrap();
    assert!(started.name.starts_with("notifications-"));
    let described = replays.describe(&started.name).await.unwrap();
    assert_eq!(described.state, "COMPLETED", "{described:?}");
    let depth = |status: &Value, queue: &str| status["queues"][queue]["visible"].as_u64().unwrap();
    let status = stack.status().await;
    assert_eq!(depth(&status, "NotificationsQueue"), messages as u64);
    // moto's gap, pinned: FilterArns named only NotificationsRule, yet tracking got them too.
    assert!(
        depth(&status, "TrackingQueue") > 0,
        "moto honours FilterArns now: {status}"
    );
    stack.set_down(&[]).await;
    replays.cancel(&started.name).await.unwrap();
    assert!(matches!(
        replays.describe("nope").await,
        Err(devstack::Error::Replay(Refused::UnknownReplay(_)))
    ));
    stack.drain().await;
    assert_eq!(
        inboxes(&stack).await,
        before,
        "the view is exact under replay"
    );
    assert_eq!(outbox(&stack).await, sent, "and nothing is mailed again");
}
