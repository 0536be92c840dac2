//! The stream mappings' `ParallelizationFactor`: the devstack runs batches of different
//! keys together, and one order's events still come out in the order of its versions.

use serde_json::{Value, json};
use std::collections::HashMap;
use system_tests::Stack;

#[tokio::test]
async fn each_orders_events_are_published_in_version_order_under_parallel_batches() {
    let factor = devstack::template::Template::load(&system_tests::template_path())
        .unwrap()
        .functions
        .iter()
        .flat_map(|f| &f.streams)
        .map(|s| s.parallelization_factor)
        .min()
        .unwrap();
    assert!(factor > 1, "the template runs stream batches in parallel");
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 1250).await;
    let alice = stack.token("alice", &["customer"]);
    // 24 orders changed 6 times each, the orders interleaved, so that batches hold many keys.
    let mut ids = vec![];
    for _ in 0..24 {
        ids.push(
            stack
                .order("alice", json!([{"sku": "A1", "quantity": 1}]))
                .await,
        );
    }
    // The bus refuses everything for a while, so that the stream holds many versions of
    // each order when the trigger reads it again.
    stack.set_faults(json!({"busOutageMs": 2000})).await;
    for quantity in 2..=6 {
        let changes = ids.iter().map(|id| {
            stack.post(
                &format!("/orders/{id}/lines"),
                &alice,
                json!({"sku": "A1", "quantity": quantity}),
            )
        });
        for reply in futures::future::join_all(changes).await {
            reply.expect(200);
        }
    }
    stack.drain().await;
    let mut versions: HashMap<String, Vec<u64>> = HashMap::new();
    for event in stack.archived().await {
        let aggregate: &Value = &event["detail"]["aggregate"];
        if aggregate["type"] == "order" {
            versions
                .entry(aggregate["id"].as_str().unwrap().to_string())
                .or_default()
                .push(aggregate["version"].as_u64().unwrap());
        }
    }
    assert_eq!(versions.len(), ids.len());
    for (id, published) in versions {
        assert_eq!(published, (1..=6).collect::<Vec<u64>>(), "order {id}");
    }
}
