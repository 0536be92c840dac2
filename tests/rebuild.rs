//! Blue/green rebuild of views under a steady read and write load (README: Rebuilding a
//! view with no downtime): no read fails, the rebuilt generation equals one built quietly
//! from the archive item for item, and the sales totals are exact although every event
//! reaches the new generation twice. The AWS-API backend refuses, and says so.

use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use system_tests::*;

const PRICES: [(&str, i64); 2] = [("A1", 1250), ("B2", 300)];
/// The views rebuilt, and their tables.
const VIEWS: [(&str, &str); 2] = [("sales", "SalesTable"), ("tracking", "TrackingTable")];

async fn admin(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> Reply {
    stack
        .send(method, &format!("/_devstack/{path}"), None, body, &[])
        .await
}

/// What the test placed: per order, its units and revenue, unless it was cancelled.
#[derive(Default)]
struct Placed {
    orders: Vec<String>,
    totals: (i64, i64, i64),
}

/// Places order `n`, ships every second one and cancels every third.
async fn one_order(stack: &Stack, n: usize, placed: &tokio::sync::Mutex<Placed>) {
    let customer = ["alice", "bob", "carol"][n % 3];
    let (sku, price) = PRICES[n % 2];
    let quantity = (n % 4 + 1) as i64;
    let id = stack
        .order(customer, json!([{"sku": sku, "quantity": quantity}]))
        .await;
    let cancelled = n.is_multiple_of(3);
    if cancelled {
        let token = stack.token(customer, &["customer"]);
        stack
            .post(&format!("/orders/{id}/cancel"), &token, json!({}))
            .await
            .expect(200);
    } else if n.is_multiple_of(2) {
        let staff = stack.token("sam", &["staff"]);
        stack
            .post(&format!("/orders/{id}/ship"), &staff, json!({}))
            .await
            .expect(200);
    }
    let mut placed = placed.lock().await;
    placed.orders.push(id);
    if !cancelled {
        placed.totals.0 += 1;
        placed.totals.1 += quantity;
        placed.totals.2 += quantity * price;
    }
}

/// Sales over yesterday to tomorrow, so that midnight does not matter: orders, units, revenue.
async fn sales(stack: &Stack) -> (i64, i64, i64) {
    let marketing = stack.token("meg", &["marketing"]);
    let today = chrono::Utc::now().date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let daily = stack
        .get(
            &format!(
                "/sales/daily?from={}&to={}",
                day(today.pred_opt().unwrap()),
                day(today.succ_opt().unwrap())
            ),
            &marketing,
        )
        .await
        .expect(200);
    daily["days"]
        .as_array()
        .unwrap()
        .iter()
        .fold((0, 0, 0), |(o, u, r), d| {
            (
                o + d["orders"].as_i64().unwrap(),
                u + d["units"].as_i64().unwrap(),
                r + d["revenueCents"].as_i64().unwrap(),
            )
        })
}

/// Starts a rebuild and waits until it is over; answers its final status.
async fn rebuild(stack: &Stack, service: &str, keep_old: bool) -> Value {
    let started = admin(
        stack,
        Method::POST,
        "rebuilds",
        Some(json!({"service": service, "keepOld": keep_old})),
    )
    .await
    .expect(201);
    assert_eq!(started["state"], "REPLAYING", "{started}");
    wait(stack, started["name"].as_str().unwrap()).await
}

async fn wait(stack: &Stack, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = admin(stack, Method::GET, &format!("rebuilds/{name}"), None)
            .await
            .expect(200);
        match status["state"].as_str().unwrap() {
            "COMPLETED" => return status,
            "FAILED" => panic!("the rebuild failed: {status}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the rebuild hangs: {status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn items(stack: &Stack, table: &str, generation: u64) -> Vec<Value> {
    admin(
        stack,
        Method::GET,
        &format!("tables/{table}/generations/{generation}/items"),
        None,
    )
    .await
    .expect(200)
    .as_array()
    .unwrap()
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn views_are_rebuilt_under_load_with_no_failed_read_and_exact_totals() {
    let stack = Arc::new(Stack::start().await);
    if on_moto() {
        admin(
            &stack,
            Method::POST,
            "rebuilds",
            Some(json!({"service": "sales"})),
        )
        .await
        .problem(422, Some("rebuild-unsupported"));
        return;
    }
    for (sku, price) in PRICES {
        stack.product(sku, sku, price).await;
    }
    let placed = Arc::new(tokio::sync::Mutex::new(Placed::default()));
    for n in 0..12 {
        one_order(&stack, n, &placed).await;
    }
    stack.drain().await;
    let history = placed.lock().await.orders.clone();

    // A steady load: one writer, two readers of both views, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stack, placed, stop) = (stack.clone(), placed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 12;
            while !stop.load(Ordering::SeqCst) {
                one_order(&stack, n, &placed).await;
                n += 1;
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (stack, stop, history) = (stack.clone(), stop.clone(), history.clone());
            tokio::spawn(async move {
                let marketing = stack.token("meg", &["marketing"]);
                let products = format!("/sales/products?day={}", chrono::Utc::now().date_naive());
                let mut failed: Vec<String> = vec![];
                let mut reads = 0;
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let id = &history[(i + r) % history.len()];
                    let customer = ["alice", "bob", "carol"][(i + r) % history.len() % 3];
                    let token = stack.token(customer, &["customer"]);
                    for reply in [
                        stack.get(&format!("/tracking/orders/{id}"), &token).await,
                        stack.get("/tracking/orders?limit=5", &token).await,
                        stack.get(&products, &marketing).await,
                    ] {
                        reads += 1;
                        if !reply.status.is_success() {
                            failed.push(format!("{reply:?}"));
                        }
                    }
                }
                (reads, failed)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut names = vec![];
    for (service, _) in VIEWS {
        let started = admin(
            &stack,
            Method::POST,
            "rebuilds",
            Some(json!({"service": service})),
        )
        .await
        .expect(201);
        names.push(started["name"].as_str().unwrap().to_string());
        // One rebuild of a service at a time: asked again at once, it is still running.
        admin(
            &stack,
            Method::POST,
            "rebuilds",
            Some(json!({"service": service})),
        )
        .await
        .problem(409, Some("rebuild-running"));
    }
    let mut done = vec![];
    for name in &names {
        done.push(wait(&stack, name).await);
    }
    // Keep the load on past the switch, then stop it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let mut reads = 0;
    for reader in readers {
        let (n, failed) = reader.await.unwrap();
        assert!(
            failed.is_empty(),
            "reads failed during the rebuild: {failed:?}"
        );
        reads += n;
    }
    assert!(reads > 30, "too few reads to prove anything: {reads}");
    stack.drain().await;

    for ((_, table), status) in VIEWS.iter().zip(&done) {
        assert_eq!(
            status["tables"],
            json!([{"table": table, "from": 1, "to": 2}]),
            "{status}"
        );
        assert!(status["replayed"].as_u64().unwrap() > 0, "{status}");
        let old = items(&stack, table, 1).await;
        assert!(
            old.is_empty(),
            "{table}: the old generation is dropped: {old:?}"
        );
    }
    let placed = placed.lock().await;
    assert!(
        placed.orders.len() > history.len(),
        "the writer wrote nothing during the rebuild"
    );
    assert_eq!(
        sales(&stack).await,
        placed.totals,
        "sales counted each order once"
    );

    // The generation built under load equals one built quietly from the archive.
    let mut built: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (service, table) in VIEWS {
        let quiet = rebuild(&stack, service, true).await;
        assert_eq!(quiet["tables"][0]["to"], 3, "{quiet}");
        let under_load = items(&stack, table, 2).await;
        assert!(
            under_load.len() > history.len(),
            "{table}: {}",
            under_load.len()
        );
        let quietly = items(&stack, table, 3).await;
        let differ: Vec<(Option<&Value>, Option<&Value>)> =
            (0..under_load.len().max(quietly.len()))
                .map(|i| (under_load.get(i), quietly.get(i)))
                .filter(|(a, b)| a != b)
                .collect();
        assert!(
            differ.is_empty(),
            "{table}: built under load, and quietly: {differ:?}"
        );
        built.insert(table, under_load);
    }

    // A restart keeps the switch: the views still answer from generation 3.
    let stack = Arc::into_inner(stack).unwrap().restart(vec![]).await;
    assert_eq!(sales(&stack).await, placed.totals);
    let bob = stack.token("bob", &["customer"]);
    stack
        .get(&format!("/tracking/orders/{}", history[1]), &bob)
        .await
        .expect(200);
    for (table, items_before) in built {
        assert_eq!(items(&stack, table, 3).await, items_before, "{table}");
    }
}

#[tokio::test]
async fn a_rebuild_refused_changes_nothing() {
    let stack = Stack::start().await;
    if on_moto() {
        return;
    }
    for (service, status, code) in [
        ("nobody", 404, "unknown-service"),
        ("orders", 422, "not-a-view"),
        ("catalog", 422, "not-a-view"),
        // It mails: a new generation would mail again, or claim mails nobody sent.
        ("notifications", 422, "has-side-effects"),
    ] {
        admin(
            &stack,
            Method::POST,
            "rebuilds",
            Some(json!({"service": service})),
        )
        .await
        .problem(status, Some(code));
    }
    admin(
        &stack,
        Method::POST,
        "rebuilds",
        Some(json!({"service": "sales", "color": "blue"})),
    )
    .await
    .client_problem();
    admin(&stack, Method::GET, "rebuilds/sales-0", None)
        .await
        .problem(404, Some("unknown-rebuild"));
    assert_eq!(
        admin(&stack, Method::GET, "rebuilds", None)
            .await
            .expect(200),
        json!([])
    );
}

#[tokio::test]
async fn a_new_generation_that_fails_an_event_fails_the_rebuild_before_the_switch() {
    let stack = Stack::start().await;
    if on_moto() {
        return;
    }
    for (sku, price) in PRICES {
        stack.product(sku, sku, price).await;
    }
    let placed = tokio::sync::Mutex::new(Placed::default());
    for n in 0..4 {
        one_order(&stack, n, &placed).await;
    }
    stack.drain().await;
    let before = sales(&stack).await;
    let poison = placed.lock().await.orders[1].clone();
    // From now on every delivery of that order's events fails: only the replay brings any.
    stack.set_faults(json!({"listenerErrorOn": [poison]})).await;
    let started = admin(
        &stack,
        Method::POST,
        "rebuilds",
        Some(json!({"service": "sales"})),
    )
    .await
    .expect(201);
    let name = started["name"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let status = admin(&stack, Method::GET, &format!("rebuilds/{name}"), None)
            .await
            .expect(200);
        match status["state"].as_str().unwrap() {
            "FAILED" => break status,
            "COMPLETED" | "SWITCHED" => panic!("a generation missing an event went live: {status}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("SalesQueue~g2-dead"),
        "{failed}"
    );
    stack.set_faults(json!({})).await;
    // Reads never left the old generation, which is whole; the new one is gone.
    assert_eq!(sales(&stack).await, before);
    assert!(items(&stack, "SalesTable", 2).await.is_empty());
    // The next rebuild takes a fresh generation, and succeeds.
    let done = rebuild(&stack, "sales", false).await;
    assert_eq!(done["tables"][0]["to"], 3, "{done}");
    assert_eq!(sales(&stack).await, before);
}
