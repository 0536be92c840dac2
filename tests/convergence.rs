//! Convergence: random command histories run through the whole system under random,
//! seeded fault schedules. Once the faults stop and the system drains, every view equals
//! what an in-order, exactly-once run computes from the write model, no counter is counted
//! twice, and every event the trigger had to publish was published, once, under one id.
//!
//! `BULKHEAD_CONVERGENCE_CASES` sets how many histories run (default 8; 2 on moto).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use system_tests::*;

const SKUS: [(&str, i64); 3] = [("P1", 250), ("P2", 1_000), ("P3", 7)];
const CUSTOMERS: [&str; 3] = ["cora", "dev", "eli"];

#[derive(Clone, Debug)]
enum Command {
    Place {
        customer: usize,
        lines: Vec<(usize, i64)>,
    },
    AddLine {
        order: usize,
        sku: usize,
        quantity: i64,
    },
    RemoveLine {
        order: usize,
        sku: usize,
    },
    Cancel {
        order: usize,
    },
    Ship {
        order: usize,
    },
    Deliver {
        order: usize,
    },
}

fn command() -> impl Strategy<Value = Command> {
    let order = 0usize..8;
    prop_oneof![
        3 => (0..CUSTOMERS.len(), prop::collection::vec((0..SKUS.len(), 1i64..5), 1..3))
            .prop_map(|(customer, lines)| Command::Place { customer, lines }),
        3 => (order.clone(), 0..SKUS.len(), 1i64..5)
            .prop_map(|(order, sku, quantity)| Command::AddLine { order, sku, quantity }),
        1 => (order.clone(), 0..SKUS.len()).prop_map(|(order, sku)| Command::RemoveLine { order, sku }),
        1 => order.clone().prop_map(|order| Command::Cancel { order }),
        1 => order.clone().prop_map(|order| Command::Ship { order }),
        1 => order.prop_map(|order| Command::Deliver { order }),
    ]
}

/// A fault plan, as `POST /_devstack/faults` takes it.
fn plan() -> impl Strategy<Value = Value> {
    (
        any::<u64>(),
        prop_oneof![Just(0.0), 0.0..0.3],
        prop_oneof![Just(0u64), 0u64..800],
        prop_oneof![Just(0.0), 0.0..0.2],
        prop_oneof![Just(0.0), 0.0..0.1],
        prop_oneof![Just(0.0), 0.0..0.3],
        prop_oneof![Just(0.0), 0.0..0.3],
        prop::sample::subsequence(vec!["tracking", "fulfillment", "sales"], 0..=2),
    )
        .prop_map(
            |(seed, put, outage, error, panic, duplicate, reorder, down)| {
                json!({
                    "seed": seed,
                    "putEventsFailureRate": put,
                    "busOutageMs": outage,
                    "listenerErrorRate": error,
                    "listenerPanicRate": panic,
                    "duplicateRate": duplicate,
                    "reorderRate": reorder,
                    "down": down,
                })
            },
        )
}

fn cases() -> u32 {
    std::env::var("BULKHEAD_CONVERGENCE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if on_moto() { 2 } else { 8 })
}

#[test]
fn views_converge_to_an_in_order_exactly_once_run_under_any_fault_schedule() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let history = (
        prop::collection::vec(command(), 10..40),
        plan(),
        plan(),
        0usize..40,
    );
    let totals = std::sync::Mutex::new(Totals::default());
    runner
        .run(&history, |(commands, first, second, switch_at)| {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let case = runtime.block_on(run(commands, first, second, switch_at));
            totals.lock().unwrap().add(&case);
            Ok(())
        })
        .unwrap();
    let t = totals.into_inner().unwrap();
    eprintln!(
        "convergence: {} histories, {} commands ({} accepted), {} events, {} redriven from DLQs; faults injected {:?}; lost writes 0, lost events 0, double counts 0",
        t.histories, t.commands, t.accepted, t.events, t.redriven, t.injected
    );
}

#[derive(Default)]
struct Totals {
    histories: usize,
    commands: usize,
    accepted: usize,
    events: usize,
    redriven: u64,
    injected: BTreeMap<String, u64>,
}

impl Totals {
    fn add(&mut self, case: &Totals) {
        self.histories += 1;
        self.commands += case.commands;
        self.accepted += case.accepted;
        self.events += case.events;
        self.redriven += case.redriven;
        for (kind, n) in &case.injected {
            *self.injected.entry(kind.clone()).or_default() += n;
        }
    }
}

async fn run(commands: Vec<Command>, first: Value, second: Value, switch_at: usize) -> Totals {
    let stack = Stack::start().await;
    for (sku, price) in SKUS {
        stack.product(sku, &format!("Product {sku}"), price).await;
    }
    let staff = stack.token("sam", &["staff"]);
    let tokens: Vec<String> = CUSTOMERS
        .iter()
        .map(|c| stack.token(c, &["customer"]))
        .collect();
    let mut orders: Vec<(String, usize)> = vec![];
    let mut accepted = 0;
    stack.set_faults(first).await;
    for (i, command) in commands.iter().enumerate() {
        if i == switch_at {
            stack.set_faults(second.clone()).await;
        }
        let pick = |n: usize| (!orders.is_empty()).then(|| orders[n % orders.len()].clone());
        let reply = match command {
            Command::Place { customer, lines } => {
                let lines: Vec<Value> = lines
                    .iter()
                    .map(|(s, q)| json!({"sku": SKUS[*s].0, "quantity": q}))
                    .collect();
                let reply = stack
                    .post("/orders", &tokens[*customer], json!({ "lines": lines }))
                    .await;
                if reply.status.as_u16() == 201 {
                    orders.push((reply.body["id"].as_str().unwrap().into(), *customer));
                }
                reply
            }
            Command::AddLine {
                order,
                sku,
                quantity,
            } => {
                let Some((id, owner)) = pick(*order) else {
                    continue;
                };
                stack
                    .post(
                        &format!("/orders/{id}/lines"),
                        &tokens[owner],
                        json!({"sku": SKUS[*sku].0, "quantity": quantity}),
                    )
                    .await
            }
            Command::RemoveLine { order, sku } => {
                let Some((id, owner)) = pick(*order) else {
                    continue;
                };
                let path = format!("/orders/{id}/lines/{}", SKUS[*sku].0);
                stack
                    .send(Method::DELETE, &path, Some(&tokens[owner]), None, &[])
                    .await
            }
            Command::Cancel { order } => {
                let Some((id, owner)) = pick(*order) else {
                    continue;
                };
                stack
                    .post(&format!("/orders/{id}/cancel"), &tokens[owner], json!({}))
                    .await
            }
            Command::Ship { order } | Command::Deliver { order } => {
                let Some((id, _)) = pick(*order) else {
                    continue;
                };
                let verb = if matches!(command, Command::Ship { .. }) {
                    "ship"
                } else {
                    "deliver"
                };
                stack
                    .post(&format!("/orders/{id}/{verb}"), &staff, json!({}))
                    .await
            }
        };
        let status = reply.status.as_u16();
        assert!(
            status < 500,
            "{command:?} answered {status}: {:?}",
            reply.body
        );
        if reply.status.is_success() {
            accepted += 1;
        } else {
            reply.client_problem();
        }
    }

    // The faults stop; what was given up on is redriven, as an operator would.
    stack.set_faults(json!({})).await;
    let injected: BTreeMap<String, u64> =
        serde_json::from_value(stack.status().await["injected"].clone()).unwrap();
    stack.drain().await;
    let mut redriven = 0;
    for queue in stack.status().await["queues"].as_object().unwrap().keys() {
        let moved = stack
            .send(
                Method::POST,
                &format!("/_devstack/queues/{queue}/redrive"),
                None,
                None,
                &[],
            )
            .await;
        if moved.status.is_success() {
            redriven += moved.body["moved"].as_u64().unwrap();
        }
    }
    stack.drain().await;
    for dlq in stream_dead_letter_queues() {
        assert_eq!(stack.queue(&dlq).await, Vec::<Value>::new(), "{dlq}");
    }

    let events = check_views(&stack, &orders, &tokens, &staff).await;
    Totals {
        histories: 1,
        commands: commands.len(),
        accepted,
        events,
        redriven,
        injected,
    }
}

/// Compares every view with the write model; answers how many order events were archived.
async fn check_views(
    stack: &Stack,
    orders: &[(String, usize)],
    tokens: &[String],
    staff: &str,
) -> usize {
    let marketing = stack.token("meg", &["marketing"]);
    let archived: Vec<Value> = stack
        .archived()
        .await
        .into_iter()
        .filter(|e| e["source"] == "bulkhead.orders")
        .collect();
    let mut published: BTreeMap<(String, u64), BTreeSet<String>> = BTreeMap::new();
    for event in &archived {
        let aggregate = &event["detail"]["aggregate"];
        published
            .entry((
                aggregate["id"].as_str().unwrap().into(),
                aggregate["version"].as_u64().unwrap(),
            ))
            .or_default()
            .insert(event["detail"]["id"].as_str().unwrap().into());
    }
    // day -> (orders, units, revenue), and (day, sku) -> (units, revenue)
    let mut days: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    let mut skus: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for (id, owner) in orders {
        let truth = stack
            .get(&format!("/orders/{id}"), &tokens[*owner])
            .await
            .expect(200);
        let version = truth["version"].as_u64().unwrap();
        for v in 1..=version {
            let ids = published.get(&(id.clone(), v));
            assert_eq!(
                ids.map(|s| s.iter().cloned().collect::<Vec<_>>()),
                Some(vec![format!("order:{id}:{v}")]),
                "version {v} of order {id} was published once, under one id"
            );
        }
        let lines: Vec<Value> = truth["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json!([l["sku"], l["quantity"], l["unitPriceCents"]]))
            .collect();
        let status = truth["status"].clone();

        let tracked = stack
            .get(&format!("/tracking/orders/{id}"), &tokens[*owner])
            .await
            .expect(200);
        assert_eq!(tracked["version"], version, "tracking {tracked}");
        assert_eq!(tracked["status"], status, "tracking {tracked}");
        assert_eq!(tracked["totalCents"], truth["totalCents"], "tracking");
        let tracked_lines: Vec<Value> = tracked["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json!([l["sku"], l["quantity"], l["unitPriceCents"]]))
            .collect();
        assert_eq!(tracked_lines, lines, "tracking lines of {id}");

        let work = stack
            .get(&format!("/fulfillment/orders/{id}"), staff)
            .await
            .expect(200);
        assert_eq!(work["version"], version, "fulfillment {work}");
        assert_eq!(work["status"], status, "fulfillment {work}");
        let work_lines: Vec<Value> = work["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json!([l["sku"], l["quantity"]]))
            .collect();
        let want: Vec<Value> = lines.iter().map(|l| json!([l[0], l[1]])).collect();
        assert_eq!(work_lines, want, "fulfillment lines of {id}");

        let day = truth["placedAt"].as_str().unwrap()[..10].to_string();
        let row = days.entry(day.clone()).or_default();
        if status != "CANCELLED" {
            row.0 += 1;
            for line in &lines {
                let (quantity, price) = (line[1].as_i64().unwrap(), line[2].as_i64().unwrap());
                row.1 += quantity;
                row.2 += quantity * price;
                let sku = skus
                    .entry((day.clone(), line[0].as_str().unwrap().into()))
                    .or_default();
                sku.0 += quantity;
                sku.1 += quantity * price;
            }
        }
    }
    let unexpected: Vec<_> = published
        .keys()
        .filter(|(id, _)| !orders.iter().any(|(o, _)| o == id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "events of unknown orders: {unexpected:?}"
    );

    for (day, (count, units, revenue)) in &days {
        let daily = stack
            .get(&format!("/sales/daily?from={day}&to={day}"), &marketing)
            .await
            .expect(200);
        assert_eq!(
            daily["days"][0],
            json!({"day": day, "orders": count, "units": units, "revenueCents": revenue}),
            "sales of {day}: counted once each"
        );
        let top = stack
            .get(&format!("/sales/products?day={day}&limit=100"), &marketing)
            .await
            .expect(200);
        let want: BTreeMap<String, (i64, i64)> = skus
            .iter()
            .filter(|((d, _), amount)| d == day && **amount != (0, 0))
            .map(|((_, sku), amount)| (sku.clone(), *amount))
            .collect();
        let got: BTreeMap<String, (i64, i64)> = top["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["sku"].as_str().unwrap().into(),
                    (
                        p["units"].as_i64().unwrap(),
                        p["revenueCents"].as_i64().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(got, want, "sales by product on {day}");
    }
    archived.len()
}
