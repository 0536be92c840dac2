//! The bulkhead promise: every service keeps working while the others are down.

use serde_json::json;
use system_tests::*;

#[tokio::test]
async fn with_catalog_down_orders_still_takes_orders_priced_from_its_cache() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 420).await;
    stack.set_down(&["catalog"]).await;
    let m = stack.token("mia", &["merchandiser"]);
    stack
        .get("/products/A1", &m)
        .await
        .problem(503, Some("service-down"));
    let alice = stack.token("alice", &["customer"]);
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 2}]))
        .await;
    assert_eq!(
        stack
            .get(&format!("/orders/{id}"), &alice)
            .await
            .expect(200)["totalCents"],
        840
    );
    assert_eq!(
        stack
            .get(&format!("/tracking/orders/{id}?minVersion=1"), &alice)
            .await
            .expect(200)["lines"][0]["name"],
        "Anchor"
    );
}

#[tokio::test]
async fn with_orders_down_every_view_still_answers() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 2}]))
        .await;
    stack.drain().await;
    stack.set_down(&["orders"]).await;
    let alice = stack.token("alice", &["customer"]);
    stack
        .get(&format!("/orders/{id}"), &alice)
        .await
        .problem(503, Some("service-down"));
    stack
        .post(
            "/orders",
            &alice,
            json!({"lines": [{"sku": "A1", "quantity": 1}]}),
        )
        .await
        .problem(503, None);
    assert_eq!(
        stack
            .get(&format!("/tracking/orders/{id}"), &alice)
            .await
            .expect(200)["status"],
        "PLACED"
    );
    assert_eq!(
        stack.get("/tracking/orders", &alice).await.expect(200)["orders"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let staff = stack.token("sam", &["staff"]);
    assert_eq!(
        stack
            .get(&format!("/fulfillment/orders/{id}"), &staff)
            .await
            .expect(200)["status"],
        "PLACED"
    );
    let marketing = stack.token("meg", &["marketing"]);
    let day = stack
        .get(&format!("/tracking/orders/{id}"), &alice)
        .await
        .expect(200)["placedAt"]
        .as_str()
        .unwrap()[..10]
        .to_string();
    let daily = stack
        .get(&format!("/sales/daily?from={day}&to={day}"), &marketing)
        .await
        .expect(200);
    assert_eq!(daily["days"][0]["units"], 2);
}

#[tokio::test]
async fn a_listener_that_was_down_catches_up_exactly() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    stack.set_down(&["tracking", "sales"]).await;
    let alice = stack.token("alice", &["customer"]);
    let mut ids = vec![];
    for n in 1..=4 {
        let id = stack
            .order("alice", json!([{"sku": "A1", "quantity": n}]))
            .await;
        stack
            .post(
                &format!("/orders/{id}/lines"),
                &alice,
                json!({"sku": "A1", "quantity": 1}),
            )
            .await
            .expect(200);
        ids.push(id);
    }
    stack
        .post(&format!("/orders/{}/cancel", ids[0]), &alice, json!({}))
        .await
        .expect(200);
    // The events wait in the down services' own queues.
    let status = loop {
        let status = stack.status().await;
        if status["queues"]["TrackingQueue"]["visible"] == 9
            && status["queues"]["SalesQueue"]["visible"] == 9
        {
            break status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(status["down"], json!(["sales", "tracking"]));
    stack
        .get("/tracking/orders", &alice)
        .await
        .problem(503, None);

    stack.set_down(&[]).await;
    stack.drain().await;
    for (n, id) in ids.iter().enumerate() {
        let tracked = stack
            .get(&format!("/tracking/orders/{id}"), &alice)
            .await
            .expect(200);
        let expected_version = if n == 0 { 3 } else { 2 };
        assert_eq!(tracked["version"], expected_version);
    }
    let marketing = stack.token("meg", &["marketing"]);
    let day = stack
        .get(&format!("/tracking/orders/{}", ids[1]), &alice)
        .await
        .expect(200)["placedAt"]
        .as_str()
        .unwrap()[..10]
        .to_string();
    let daily = stack
        .get(&format!("/sales/daily?from={day}&to={day}"), &marketing)
        .await
        .expect(200);
    // Orders 2..4 with quantities n + 1; order 1 was cancelled.
    assert_eq!(
        daily["days"][0],
        json!({"day": day, "orders": 3, "units": 3 + 4 + 5, "revenueCents": 1200})
    );
}

#[tokio::test]
async fn with_the_bus_down_committed_changes_are_published_once_it_is_back() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    stack.set_down(&["bus"]).await;
    let ids = [
        stack
            .order("alice", json!([{"sku": "A1", "quantity": 1}]))
            .await,
        stack
            .order("bob", json!([{"sku": "A1", "quantity": 2}]))
            .await,
    ];
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        stack
            .archived()
            .await
            .iter()
            .all(|e| e["detail-type"] != "OrderPlaced"),
        "nothing was published"
    );
    stack.set_down(&[]).await;
    stack.drain().await;
    let placed: Vec<_> = stack
        .archived()
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "OrderPlaced")
        .collect();
    assert_eq!(placed.len(), 2, "each change published exactly once");
    assert!(
        stack.queue("OrdersStreamDLQ").await.is_empty(),
        "none given up on"
    );
    for (customer, id) in [("alice", &ids[0]), ("bob", &ids[1])] {
        let token = stack.token(customer, &["customer"]);
        stack
            .get(&format!("/tracking/orders/{id}"), &token)
            .await
            .expect(200);
    }
}
