//! tracking: each customer's history, paginated, with bounded read-your-writes.

use serde_json::json;
use system_tests::*;

#[tokio::test]
async fn a_placed_order_appears_in_tracking_with_names_joined_in() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 250).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 2}]))
        .await;
    let alice = stack.token("alice", &["customer"]);
    let tracked = stack
        .get(&format!("/tracking/orders/{id}?minVersion=1"), &alice)
        .await
        .expect(200);
    assert_eq!(tracked["status"], "PLACED");
    assert_eq!(tracked["version"], 1);
    assert_eq!(tracked["totalCents"], 500);
    assert_eq!(
        tracked["lines"],
        json!([{"sku": "A1", "name": "Anchor", "quantity": 2, "unitPriceCents": 250}])
    );

    let staff = stack.token("sam", &["staff"]);
    stack
        .post(&format!("/orders/{id}/ship"), &staff, json!({}))
        .await
        .expect(200);
    let shipped = stack
        .get(&format!("/tracking/orders/{id}?minVersion=2"), &alice)
        .await
        .expect(200);
    assert_eq!(
        (shipped["status"].as_str(), shipped["version"].as_u64()),
        (Some("SHIPPED"), Some(2))
    );
}

#[tokio::test]
async fn min_version_waits_a_bounded_time_then_answers_412_with_the_version_it_has() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 250).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 2}]))
        .await;
    let alice = stack.token("alice", &["customer"]);
    stack.drain().await;
    let started = std::time::Instant::now();
    let behind = stack
        .get(
            &format!("/tracking/orders/{id}?minVersion=7&maxWaitMs=300"),
            &alice,
        )
        .await
        .problem(412, Some("view-behind"));
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(
        (
            behind["currentVersion"].as_u64(),
            behind["minVersion"].as_u64()
        ),
        (Some(1), Some(7))
    );

    let bob = stack.token("bob", &["customer"]);
    stack
        .get(&format!("/tracking/orders/{id}"), &bob)
        .await
        .problem(404, None);
    let hidden = stack
        .get(
            &format!("/tracking/orders/{id}?minVersion=1&maxWaitMs=50"),
            &bob,
        )
        .await
        .problem(412, None);
    assert_eq!(
        hidden["currentVersion"], 0,
        "another customer's order looks like one not yet seen"
    );
    stack
        .get(&format!("/tracking/orders/{id}?minVersion=x"), &alice)
        .await
        .problem(400, Some("invalid-query"));
}

#[tokio::test]
async fn a_customer_lists_only_their_orders_newest_first_in_pages() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let mut mine = vec![];
    for n in 1..=5 {
        mine.push(
            stack
                .order("alice", json!([{"sku": "A1", "quantity": n}]))
                .await,
        );
        stack
            .order("bob", json!([{"sku": "A1", "quantity": 1}]))
            .await;
    }
    stack.drain().await;
    let alice = stack.token("alice", &["customer"]);
    let mut seen = vec![];
    let mut path = "/tracking/orders?limit=2".to_string();
    let mut pages = 0;
    loop {
        let page = stack.get(&path, &alice).await.expect(200);
        pages += 1;
        for order in page["orders"].as_array().unwrap() {
            assert_eq!(order["customerId"], "alice");
            seen.push(order["id"].as_str().unwrap().to_string());
        }
        match page["cursor"].as_str() {
            Some(cursor) => path = format!("/tracking/orders?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    mine.reverse();
    assert_eq!(seen, mine, "newest first, every order once");
    assert_eq!(pages, 3);

    let first = stack
        .get("/tracking/orders?limit=2", &alice)
        .await
        .expect(200);
    let cursor = first["cursor"].as_str().unwrap();
    let bob = stack.token("bob", &["customer"]);
    stack
        .get(&format!("/tracking/orders?cursor={cursor}"), &bob)
        .await
        .problem(400, Some("invalid-cursor"));
    stack
        .get("/tracking/orders?cursor=garbage", &alice)
        .await
        .problem(400, Some("invalid-cursor"));
    stack
        .get("/tracking/orders?limit=0", &alice)
        .await
        .problem(400, Some("invalid-limit"));
    stack
        .get("/tracking/orders?limit=1000", &alice)
        .await
        .problem(400, Some("invalid-limit"));
    let staff = stack.token("sam", &["staff"]);
    stack
        .get("/tracking/orders", &staff)
        .await
        .problem(403, None);
}
