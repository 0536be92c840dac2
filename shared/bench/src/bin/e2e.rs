//! End to end in the devstack: commands at a fixed rate, and the time from each command's
//! 2xx until every view (tracking, fulfillment, sales) has applied its version.
//!
//! `cargo run --release -p bench --bin e2e -- [RATE] [SECONDS]` (default 200 per second, 10 s).
//!
//! The devstack runs in this process on the embedded backend. The views are watched through
//! a second connection to its database, every millisecond, so that watching costs the API
//! nothing.

use bulkhead::embedded::Database;
use bulkhead::store::{Key, version_of};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let mut config = devstack::Config::new(template, dir.path().to_path_buf());
    config.bind = "127.0.0.1:0".parse().unwrap();
    let running = devstack::start(config.clone()).await.unwrap();
    let url = running.url.clone();
    let template = devstack::template::Template::load(&config.template).unwrap();
    let auth = devstack::auth::Auth::new(
        &config.jwt_secret,
        &template.jwt_issuer,
        &template.jwt_audience,
    );
    let client = reqwest::Client::new();
    let merchandiser = auth.token("mia", &["merchandiser".into()], 3600).unwrap();
    client
        .put(format!("{url}/products/A1"))
        .bearer_auth(&merchandiser)
        .header("content-type", "application/json")
        .body(r#"{"name": "Anchor", "priceCents": 1250}"#)
        .send()
        .await
        .unwrap();
    let customers: Vec<String> = (0..100)
        .map(|c| {
            auth.token(&format!("c{c}"), &["customer".into()], 3600)
                .unwrap()
        })
        .collect();
    // Wait until orders' cache has the product.
    loop {
        let r = client
            .post(format!("{url}/orders"))
            .bearer_auth(&customers[0])
            .header("content-type", "application/json")
            .body(json!({"lines": [{"sku": "A1", "quantity": 1}]}).to_string())
            .send()
            .await
            .unwrap();
        if r.status() == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let db = Database::open(&config.database_path()).unwrap();
    let pending: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let visible: Arc<Mutex<Vec<f64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (pending, visible, stop) = (pending.clone(), visible.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst)
                || !pending.lock().unwrap().is_empty()
            {
                let ids: Vec<(String, Instant)> = pending
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                for (id, accepted) in ids {
                    let key = Key::new(format!("ORDER#{id}"), "#");
                    let seen = ["TrackingTable", "FulfillmentTable", "SalesTable"]
                        .iter()
                        .all(|table| {
                            db.get(table, &key)
                                .ok()
                                .flatten()
                                .as_ref()
                                .and_then(version_of)
                                >= Some(1)
                        });
                    if seen {
                        pending.lock().unwrap().remove(&id);
                        visible
                            .lock()
                            .unwrap()
                            .push(accepted.elapsed().as_secs_f64() * 1000.0);
                    } else if accepted.elapsed() > Duration::from_secs(10) {
                        pending.lock().unwrap().remove(&id);
                        eprintln!("order {id} never reached every view");
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let commands: Arc<Mutex<Vec<f64>>> = Arc::default();
    let rejected = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0u64;
    let mut tasks = vec![];
    while started.elapsed() < Duration::from_secs(seconds) {
        ticker.tick().await;
        let request = client
            .post(format!("{url}/orders"))
            .bearer_auth(&customers[(sent % 100) as usize])
            .header("content-type", "application/json")
            .body(json!({"lines": [{"sku": "A1", "quantity": 1 + sent % 5}]}).to_string());
        sent += 1;
        let (pending, commands, rejected) = (pending.clone(), commands.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let response = request.send().await.unwrap();
            let elapsed = t0.elapsed().as_secs_f64() * 1000.0;
            if response.status() == 201 {
                let body: serde_json::Value = response.json().await.unwrap();
                pending
                    .lock()
                    .unwrap()
                    .insert(body["id"].as_str().unwrap().to_string(), Instant::now());
                commands.lock().unwrap().push(elapsed);
            } else {
                rejected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let sending = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    watcher.await.unwrap();
    running.stop().await;

    let mut commands = commands.lock().unwrap().clone();
    let mut visible = visible.lock().unwrap().clone();
    commands.sort_by(f64::total_cmp);
    visible.sort_by(f64::total_cmp);
    println!(
        "commands: {sent} sent in {sending:.1} s ({:.0}/s), {} accepted, {} rejected",
        sent as f64 / sending,
        commands.len(),
        rejected.load(std::sync::atomic::Ordering::SeqCst)
    );
    println!(
        "command latency (ms): p50 {:.1}, p99 {:.1}, max {:.1}",
        percentile(&commands, 0.5),
        percentile(&commands, 0.99),
        commands.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "2xx to every view (ms), {} orders: p50 {:.1}, p99 {:.1}, max {:.1}",
        visible.len(),
        percentile(&visible, 0.5),
        percentile(&visible, 0.99),
        visible.last().copied().unwrap_or(f64::NAN)
    );
}
