//! Crash durability: the devstack binary under steady command load, killed with SIGKILL again
//! and again (by this test at random moments, and by its own `killRate` fault between
//! handling a batch and acknowledging it), restarted on the same data each time, then
//! drained. Every command that got a 2xx is there, every view converges, and no event was
//! published under two ids.
//!
//! `BULKHEAD_CRASH_KILLS` sets how many times the test kills the process (default 10).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "crash-test";
const CLIENTS: usize = 6;
const SKUS: [(&str, i64); 2] = [("K1", 300), ("K2", 45)];

fn template() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../template.yaml")
        .display()
        .to_string()
}

/// Starts the binary on the data dir and answers with its API's URL. The `killRate` fault
/// can kill it before it prints the URL: then it starts again.
fn start(data_dir: &Path, faults: &Value) -> (Child, String) {
    for _ in 0..20 {
        if let Some(started) = try_start(data_dir, faults) {
            return started;
        }
    }
    panic!("the devstack died on every one of 20 starts");
}

fn try_start(data_dir: &Path, faults: &Value) -> Option<(Child, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args(["--port", "0", "--max-visibility-ms", "200", "--template"])
        .arg(template())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--faults")
        .arg(faults.to_string())
        .env("BULKHEAD_DEV_JWT_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let Some(url) = first.split_whitespace().find(|w| w.starts_with("http://")) else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    Some((child, url.to_string()))
}

fn token(sub: &str, role: &str) -> String {
    let template = devstack::template::Template::load(Path::new(&template())).unwrap();
    devstack::auth::Auth::new(SECRET, &template.jwt_issuer, &template.jwt_audience)
        .token(sub, &[role.to_string()], 3600)
        .unwrap()
}

fn kills() -> usize {
    std::env::var("BULKHEAD_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
}

/// Sends a command until it gets an answer, across crashes: its Idempotency-Key makes the
/// resends one command.
async fn command(
    client: &reqwest::Client,
    url: &Mutex<String>,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
    key: &str,
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last;
    loop {
        let base = url.lock().unwrap().clone();
        let sent = client
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.json::<Value>().await {
                    Ok(body) if status != 503 => return (status, body),
                    Ok(body) => last = format!("{status} {body}"),
                    Err(e) => last = format!("{status} {e}"),
                }
            }
            Err(e) => last = e.to_string(),
        }
        assert!(Instant::now() < deadline, "{path} never answered: {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get(client: &reqwest::Client, url: &str, path: &str, token: &str) -> Value {
    let response = client
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// Waits until streams and queues are quiet; answers the devstack's last status.
async fn drain(client: &reqwest::Client, url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet = 0;
    loop {
        let status: Value = client
            .get(format!("{url}/_devstack/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let streams = status["streams"]
            .as_object()
            .unwrap()
            .values()
            .all(|s| s["lag"] == 0);
        let queues = status["queues"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| !name.ends_with("DLQ"))
            .all(|(_, q)| q["visible"] == 0 && q["inFlight"] == 0);
        quiet = if streams && queues { quiet + 1 } else { 0 };
        if quiet == 3 {
            return status;
        }
        assert!(Instant::now() < deadline, "did not drain: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills the devstack when the test ends, however it ends: a failed assertion would
/// otherwise leave it running.
struct KillOnDrop(Arc<Mutex<Child>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let mut child = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// What a client's acknowledged commands add up to: order id -> (owner, quantity by sku).
type Expected = BTreeMap<String, (String, BTreeMap<String, i64>)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_command_survives_sigkill_and_views_converge() {
    let dir = tempfile::tempdir().unwrap();
    let faults = json!({"seed": 11, "killRate": 0.01});
    // The catalog is set up without faults: the killer below, which restarts the process,
    // is not running yet, and a killRate kill here would leave nothing to answer.
    let (child, url) = start(dir.path(), &json!({}));
    let child = Arc::new(Mutex::new(child));
    let _killed_at_the_end = KillOnDrop(child.clone());
    let url = Arc::new(Mutex::new(url));
    let client = reqwest::Client::new();
    let merchandiser = token("mia", "merchandiser");
    for (sku, price) in SKUS {
        let (status, body) = command(
            &client,
            &url,
            reqwest::Method::PUT,
            &format!("/products/{sku}"),
            &merchandiser,
            &json!({"name": sku, "priceCents": price}),
            &format!("product-{sku}"),
        )
        .await;
        assert!(status < 300, "{body}");
    }
    // The orders service prices from its cache of catalog events: it holds them all before
    // the process restarts with faults and the clients start.
    let base = url.lock().unwrap().clone();
    drain(&client, &base).await;
    {
        let mut guard = child.lock().unwrap();
        guard.kill().unwrap();
        guard.wait().unwrap();
        let (fresh, fresh_url) = start(dir.path(), &faults);
        *guard = fresh;
        *url.lock().unwrap() = fresh_url;
    }

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let owner = format!("crash-{c}");
                let customer = token(&owner, "customer");
                let mut expected = Expected::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    let (sku, _) = SKUS[n % SKUS.len()];
                    let key = format!("{owner}-{n}");
                    let open = expected.keys().last().cloned();
                    match open.filter(|_| n % 4 != 0) {
                        Some(id) => {
                            let (status, body) = command(
                                &client,
                                &url,
                                reqwest::Method::POST,
                                &format!("/orders/{id}/lines"),
                                &customer,
                                &json!({"sku": sku, "quantity": 1}),
                                &key,
                            )
                            .await;
                            assert_eq!(status, 200, "{body}");
                            *expected
                                .get_mut(&id)
                                .unwrap()
                                .1
                                .entry(sku.into())
                                .or_default() += 1;
                        }
                        None => {
                            let (status, body) = command(
                                &client,
                                &url,
                                reqwest::Method::POST,
                                "/orders",
                                &customer,
                                &json!({"lines": [{"sku": sku, "quantity": 2}]}),
                                &key,
                            )
                            .await;
                            assert_eq!(status, 201, "{body}");
                            let id = body["id"].as_str().unwrap().to_string();
                            expected.insert(
                                id,
                                (owner.clone(), BTreeMap::from([(sku.to_string(), 2)])),
                            );
                        }
                    }
                }
                (customer, expected, n)
            })
        })
        .collect();

    // The killer: SIGKILL at seeded moments; a restart whenever the process is gone,
    // whoever killed it.
    let mut killed = 0;
    let mut restarts = 0usize;
    let mut draw = 0x2545_f491_4f6c_dd1du64;
    let mut next_kill = Instant::now() + Duration::from_millis(700);
    while killed < kills() || !clients.iter().all(|c| c.is_finished()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if killed == kills() {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let mut guard = child.lock().unwrap();
        if killed < kills() && Instant::now() >= next_kill {
            guard.kill().unwrap();
            killed += 1;
            draw ^= draw << 13;
            draw ^= draw >> 7;
            draw ^= draw << 17;
            next_kill = Instant::now() + Duration::from_millis(300 + draw % 900);
        }
        if guard.try_wait().unwrap().is_some() {
            let _ = guard.wait();
            let (fresh, fresh_url) = start(dir.path(), &faults);
            *guard = fresh;
            *url.lock().unwrap() = fresh_url;
            restarts += 1;
        }
    }
    let mut expected = Expected::new();
    let mut tokens = BTreeMap::new();
    let mut commands = 0;
    for client in clients {
        let (customer, mine, n) = client.await.unwrap();
        commands += n;
        for (id, (owner, _)) in &mine {
            tokens.insert(id.clone(), (customer.clone(), owner.clone()));
        }
        expected.extend(mine);
    }

    // The last restart has no faults; the system drains and everything is checked.
    {
        let mut guard = child.lock().unwrap();
        guard.kill().unwrap();
        guard.wait().unwrap();
        let (fresh, fresh_url) = start(dir.path(), &json!({}));
        *guard = fresh;
        *url.lock().unwrap() = fresh_url;
    }
    let base = url.lock().unwrap().clone();
    let status = drain(&client, &base).await;
    // A message received `maxReceiveCount` times (each SIGKILL while it is in flight, each
    // batch slower than the 200 ms visibility) is dead-lettered, and its view then ends a
    // version behind: say so here rather than there.
    for (name, depth) in status["queues"].as_object().unwrap() {
        if name.ends_with("DLQ") {
            assert_eq!(depth["visible"], 0, "{name} holds messages: {status}");
        }
    }
    let staff = token("sam", "staff");
    let archive: Vec<Value> = client
        .get(format!("{base}/_devstack/archives/BulkheadArchive/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids_by_version: BTreeMap<(String, u64), BTreeSet<String>> = BTreeMap::new();
    for event in archive.iter().filter(|e| e["source"] == "bulkhead.orders") {
        let aggregate = &event["detail"]["aggregate"];
        ids_by_version
            .entry((
                aggregate["id"].as_str().unwrap().into(),
                aggregate["version"].as_u64().unwrap(),
            ))
            .or_default()
            .insert(event["detail"]["id"].as_str().unwrap().into());
    }
    let mut units = 0;
    for (id, (_, lines)) in &expected {
        let (customer, _) = &tokens[id];
        let order = get(&client, &base, &format!("/orders/{id}"), customer).await;
        let got: BTreeMap<String, i64> = order["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["sku"].as_str().unwrap().into(),
                    l["quantity"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(&got, lines, "order {id} holds every acknowledged command");
        units += lines.values().sum::<i64>();
        let version = order["version"].as_u64().unwrap();
        for v in 1..=version {
            assert_eq!(
                ids_by_version.get(&(id.clone(), v)),
                Some(&BTreeSet::from([format!("order:{id}:{v}")])),
                "version {v} of {id}: published, under one id"
            );
        }
        let tracked = get(&client, &base, &format!("/tracking/orders/{id}"), customer).await;
        assert_eq!(tracked["version"], version, "tracking of {id}");
        let work = get(&client, &base, &format!("/fulfillment/orders/{id}"), &staff).await;
        assert_eq!(work["version"], version, "fulfillment of {id}");
    }
    let days: BTreeSet<String> = archive
        .iter()
        .filter_map(|e| e["detail"]["state"]["placedAt"].as_str())
        .map(|t| t[..10].to_string())
        .collect();
    let marketing = token("meg", "marketing");
    let (mut orders, mut counted) = (0, 0);
    for day in &days {
        let daily = get(
            &client,
            &base,
            &format!("/sales/daily?from={day}&to={day}"),
            &marketing,
        )
        .await;
        orders += daily["days"][0]["orders"].as_i64().unwrap();
        counted += daily["days"][0]["units"].as_i64().unwrap();
    }
    assert_eq!(
        orders as usize,
        expected.len(),
        "sales counted each order once"
    );
    assert_eq!(counted, units, "sales counted each unit once");
    eprintln!(
        "crash: {commands} commands from {CLIENTS} clients, {killed} SIGKILLs by the test, {} by the killRate fault, {} orders; lost acknowledged writes 0, views converged, events under two ids 0",
        restarts.saturating_sub(killed),
        expected.len()
    );
}
