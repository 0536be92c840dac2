//! Seeing the flow: every trigger and listener line about an event carries the event's ids
//! and its correlation id, the API line carries the request id and the caller, and the
//! figures (`bulkhead::telemetry::figures`) count what each function did, in the devstack's
//! status. The functions that take an event are read off their declarations.

use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use system_tests::*;

/// The log lines written so far, as the JSON subscriber of Lambda writes them.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn parsed(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

/// The listener functions that take an event, by their declarations.
fn listeners_taking(source: &str, detail_type: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, functions) = embedded_system(dir.path());
    functions
        .listeners
        .iter()
        .filter(|(_, listener)| listener.takes(source, detail_type))
        .map(|(function, _)| function.name.clone())
        .collect()
}

fn figure(status: &Value, name: &str, labels: &str, stat: &str) -> f64 {
    status["metrics"][name][labels][stat]
        .as_f64()
        .unwrap_or_else(|| panic!("no {name} {{{labels}}} in {}", status["metrics"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_correlate_and_figures_count_a_command_s_whole_path() {
    let lines = Lines::default();
    let writer = lines.clone();
    bulkhead::telemetry::init_json("info", move || writer.clone());
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 1250).await;
    let alice = stack.token("alice", &["customer"]);
    let correlation = "corr-observability-1";
    let placed = stack
        .send(
            Method::POST,
            "/orders",
            Some(&alice),
            Some(json!({"lines": [{"sku": "A1", "quantity": 2}]})),
            &[("x-correlation-id", correlation)],
        )
        .await
        .expect(201);
    let order = placed["id"].as_str().unwrap().to_string();
    stack
        .post("/orders", &alice, json!({"lines": []}))
        .await
        .client_problem();
    stack.drain().await;

    let takers = listeners_taking("bulkhead.orders", "OrderPlaced");
    assert!(takers.len() >= 2, "{takers:?}");
    // A duplicate delivery to the first taker is ignored, and counted so.
    let placed_event = stack
        .archived()
        .await
        .into_iter()
        .find(|e| e["detail"]["aggregate"]["id"] == order.as_str())
        .expect("the order's event is archived");
    let template = devstack::template::Template::load(&template_path()).unwrap();
    let first = template
        .functions
        .iter()
        .find(|f| f.name == takers[0])
        .unwrap();
    stack
        .send(
            Method::POST,
            &format!("/_devstack/queues/{}/messages", first.queues[0].queue),
            None,
            Some(placed_event.clone()),
            &[],
        )
        .await
        .expect(202);
    stack.drain().await;

    let lines = lines.parsed();
    let about = |message: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["message"] == message && l["span"]["correlationId"] == correlation)
            .collect()
    };
    let api = about("request handled");
    assert_eq!(api.len(), 1, "{api:?}");
    let request = &api[0]["span"];
    assert_eq!(request["sub"], "alice");
    assert_eq!(request["route"], "/orders");
    assert_eq!(request["method"], "POST");
    assert!(!request["requestId"].as_str().unwrap().is_empty());
    assert_eq!(api[0]["status"], 201);
    assert!(api[0]["latencyMs"].as_f64().unwrap() > 0.0);

    let published = about("event to publish");
    assert_eq!(published.len(), 1, "{published:?}");
    let event = &published[0]["span"];
    assert_eq!(event["eventId"], placed_event["detail"]["id"]);
    assert_eq!(event["eventType"], "OrderPlaced");
    assert_eq!(event["version"], 1);
    assert!(event["aggregate"].as_str().unwrap().ends_with(&order));
    assert!(!event["causationId"].as_str().unwrap().is_empty());
    assert_eq!(published[0]["schemaVersion"], 2);

    let applied = about("message applied");
    assert_eq!(applied.len(), takers.len(), "{applied:?}");
    for line in &applied {
        assert_eq!(line["span"]["eventId"], event["eventId"]);
        assert!(line["lagMs"].as_f64().unwrap() >= 0.0, "{line}");
    }
    let ignored = about("message ignored");
    assert_eq!(ignored.len(), 1, "the duplicate: {ignored:?}");

    let status = stack.status().await;
    for taker in &takers {
        let labels = format!("function={taker}");
        assert!(figure(&status, "MessagesApplied", &labels, "sum") >= 1.0);
        assert!(figure(&status, "ViewLag", &labels, "count") >= 1.0);
    }
    let labels = format!("function={}", takers[0]);
    assert!(figure(&status, "MessagesIgnored", &labels, "sum") >= 1.0);
    let trigger = template
        .functions
        .iter()
        .find(|f| f.streams.iter().any(|s| s.table == "OrdersTable"))
        .unwrap();
    let labels = format!("function={}", trigger.name);
    assert!(figure(&status, "EventsPublished", &labels, "sum") >= 1.0);
    assert!(figure(&status, "PutEventsLatency", &labels, "count") >= 1.0);
    assert!(figure(&status, "Commands", "outcome=accepted", "sum") >= 2.0);
    assert!(figure(&status, "Commands", "outcome=refused", "sum") >= 1.0);
}
