//! Durability: everything acknowledged survives a restart, and events committed but not yet
//! delivered are delivered after it.

use serde_json::json;
use system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_and_undelivered_events_survive_a_restart() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    // With the bus down, changes commit but cannot be published.
    stack.set_down(&["bus"]).await;
    let ids = [
        stack
            .order("alice", json!([{"sku": "A1", "quantity": 1}]))
            .await,
        stack
            .order("alice", json!([{"sku": "A1", "quantity": 2}]))
            .await,
    ];
    let alice = stack.token("alice", &["customer"]);
    stack
        .get(&format!("/tracking/orders/{}", ids[0]), &alice)
        .await
        .problem(404, None);

    let stack = stack.restart(vec![]).await;
    for id in &ids {
        assert_eq!(
            stack
                .get(&format!("/orders/{id}"), &alice)
                .await
                .expect(200)["version"],
            1
        );
        assert_eq!(
            stack
                .get(&format!("/tracking/orders/{id}?minVersion=1"), &alice)
                .await
                .expect(200)["version"],
            1
        );
    }
    stack.drain().await;
    let placed: Vec<_> = stack
        .archived()
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "OrderPlaced")
        .collect();
    assert_eq!(placed.len(), 2, "each committed change published once");
    assert!(stack.queue("OrdersStreamDLQ").await.is_empty());
}
