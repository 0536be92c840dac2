//! Event plumbing: deterministic ids, guarded views, and poison that fails alone.

use reqwest::Method;
use serde_json::json;
use system_tests::*;

#[tokio::test]
async fn events_carry_deterministic_ids_versions_state_and_change() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let alice = stack.token("alice", &["customer"]);
    stack
        .post(
            &format!("/orders/{id}/lines"),
            &alice,
            json!({"sku": "A1", "quantity": 2}),
        )
        .await
        .expect(200);
    stack.drain().await;
    let events = stack.archived().await;
    let added = events
        .iter()
        .find(|e| e["detail-type"] == "OrderLineAdded")
        .unwrap();
    assert_eq!(added["source"], "bulkhead.orders");
    let detail = &added["detail"];
    assert_eq!(detail["id"], format!("order:{id}:2"));
    assert_eq!(detail["schemaVersion"], 2);
    assert_eq!(
        detail["aggregate"],
        json!({"type": "order", "id": id, "version": 2})
    );
    assert_eq!(
        detail["change"]["line"],
        json!({"sku": "A1", "quantity": 2, "unitPrice": {"amountCents": 100, "currency": "USD"}})
    );
    assert_eq!(detail["state"]["lines"][0]["quantity"], 3);
    assert!(detail["correlationId"].is_string() && detail["causationId"].is_string());
    assert!(detail["occurredAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_duplicate_or_late_event_changes_no_view() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let staff = stack.token("sam", &["staff"]);
    stack
        .post(&format!("/orders/{id}/ship"), &staff, json!({}))
        .await
        .expect(200);
    stack.drain().await;
    let placed = stack
        .archived()
        .await
        .into_iter()
        .find(|e| e["detail-type"] == "OrderPlaced")
        .unwrap();
    // Deliver the old OrderPlaced again, twice, after OrderShipped.
    for _ in 0..2 {
        stack
            .send(
                Method::POST,
                "/_devstack/queues/TrackingQueue/messages",
                None,
                Some(placed.clone()),
                &[],
            )
            .await
            .expect(202);
    }
    stack.drain().await;
    let alice = stack.token("alice", &["customer"]);
    let tracked = stack
        .get(&format!("/tracking/orders/{id}"), &alice)
        .await
        .expect(200);
    assert_eq!(
        (tracked["status"].as_str(), tracked["version"].as_u64()),
        (Some("SHIPPED"), Some(2))
    );
    assert!(
        stack.queue("TrackingDLQ").await.is_empty(),
        "a stale event is a success, not a failure"
    );
}

#[tokio::test]
async fn a_poison_message_fails_alone_and_reaches_the_dlq() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    for poison in [
        json!("not an event"),
        json!({"source": "bulkhead.orders", "detail-type": "OrderPlaced", "detail": {"id": 7}}),
    ] {
        stack
            .send(
                Method::POST,
                "/_devstack/queues/TrackingQueue/messages",
                None,
                Some(poison),
                &[],
            )
            .await
            .expect(202);
    }
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let alice = stack.token("alice", &["customer"]);
    stack
        .get(&format!("/tracking/orders/{id}?minVersion=1"), &alice)
        .await
        .expect(200);
    stack.drain().await;
    let dead = stack.queue("TrackingDLQ").await;
    assert_eq!(dead.len(), 2, "{dead:?}");
}

#[tokio::test]
async fn a_poison_stream_record_fails_alone_after_its_retries_and_order_is_kept() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let before = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    // An order item that no ACL can read: its version is not a number.
    let poison = json!({"pk": {"S": "ORDER#poison"}, "sk": {"S": "#"}, "version": {"S": "x"}});
    stack
        .send(
            Method::PUT,
            "/_devstack/tables/OrdersTable/items",
            None,
            Some(poison),
            &[],
        )
        .await
        .expect(204);
    let after = stack
        .order("alice", json!([{"sku": "A1", "quantity": 2}]))
        .await;
    let alice = stack.token("alice", &["customer"]);
    stack
        .get(&format!("/tracking/orders/{after}?minVersion=1"), &alice)
        .await
        .expect(200);
    stack
        .get(&format!("/tracking/orders/{before}?minVersion=1"), &alice)
        .await
        .expect(200);
    stack.drain().await;
    let dead = stack.queue("OrdersStreamDLQ").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        dead[0]["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    let types: Vec<String> = stack
        .archived()
        .await
        .iter()
        .filter(|e| e["source"] == "bulkhead.orders")
        .map(|e| e["detail"]["aggregate"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [before, after],
        "the records around the poison were published, in order"
    );
}

#[tokio::test]
async fn a_message_that_kept_failing_is_applied_once_redriven_from_its_dlq() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    // Every listener fails every delivery of carl's events, until the fault is lifted.
    stack
        .set_faults(json!({"listenerErrorOn": ["redrive-carl"]}))
        .await;
    let id = stack
        .order("redrive-carl", json!([{"sku": "A1", "quantity": 3}]))
        .await;
    stack.drain().await;
    let carl = stack.token("redrive-carl", &["customer"]);
    let staff = stack.token("sam", &["staff"]);
    stack
        .get(&format!("/tracking/orders/{id}"), &carl)
        .await
        .problem(404, None);
    let dlqs = dead_letter_queues_taking("bulkhead.orders", "OrderPlaced");
    assert!(
        dlqs.len() >= 3,
        "tracking, fulfillment and sales at least: {dlqs:?}"
    );
    for dlq in &dlqs {
        let dead = stack.queue(dlq).await;
        assert_eq!(dead.len(), 1, "{dlq}: {dead:?}");
        assert_eq!(dead[0]["detail"]["aggregate"]["id"], id.as_str());
    }

    stack.set_faults(json!({})).await;
    for dlq in &dlqs {
        let moved = stack
            .send(
                Method::POST,
                &format!("/_devstack/queues/{dlq}/redrive"),
                None,
                None,
                &[],
            )
            .await
            .expect(200);
        assert_eq!(moved["moved"], 1, "{dlq}");
        assert!(stack.queue(dlq).await.is_empty(), "{dlq}");
    }
    stack.drain().await;
    let tracked = stack
        .get(&format!("/tracking/orders/{id}"), &carl)
        .await
        .expect(200);
    assert_eq!(tracked["version"], 1);
    stack
        .get(&format!("/fulfillment/orders/{id}"), &staff)
        .await
        .expect(200);
    stack
        .send(
            Method::POST,
            "/_devstack/queues/TrackingQueue/redrive",
            None,
            None,
            &[],
        )
        .await
        .problem(404, Some("no-dead-letter-queue"));
}
