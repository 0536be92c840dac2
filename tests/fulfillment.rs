//! fulfillment: the warehouse's work queue, by status, oldest first.

use serde_json::json;
use system_tests::*;

#[tokio::test]
async fn staff_see_the_work_queue_by_status_oldest_first_in_pages() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let mut placed = vec![];
    for n in 1..=3 {
        placed.push(
            stack
                .order(&format!("c{n}"), json!([{"sku": "A1", "quantity": n}]))
                .await,
        );
    }
    let staff = stack.token("sam", &["staff"]);
    stack
        .post(&format!("/orders/{}/ship", placed[0]), &staff, json!({}))
        .await
        .expect(200);
    stack.drain().await;

    let first = stack
        .get("/fulfillment/orders?status=PLACED&limit=1", &staff)
        .await
        .expect(200);
    let order = &first["orders"][0];
    assert_eq!(order["id"], placed[1].as_str(), "oldest first");
    assert_eq!(order["customerId"], "c2");
    assert_eq!(order["status"], "PLACED");
    assert_eq!(order["lines"], json!([{"sku": "A1", "quantity": 2}]));
    assert_eq!(order["version"], 1);
    assert!(order["placedAt"].is_string());
    let cursor = first["cursor"].as_str().unwrap();
    let second = stack
        .get(
            &format!("/fulfillment/orders?status=PLACED&limit=1&cursor={cursor}"),
            &staff,
        )
        .await
        .expect(200);
    assert_eq!(second["orders"][0]["id"], placed[2].as_str());
    assert!(second["cursor"].is_null());

    let shipped = stack
        .get("/fulfillment/orders?status=SHIPPED", &staff)
        .await
        .expect(200);
    assert_eq!(shipped["orders"].as_array().unwrap().len(), 1);
    assert_eq!(shipped["orders"][0]["version"], 2);
    let default = stack.get("/fulfillment/orders", &staff).await.expect(200);
    assert_eq!(
        default["orders"].as_array().unwrap().len(),
        2,
        "the default status is PLACED"
    );

    stack
        .get(
            &format!("/fulfillment/orders?status=SHIPPED&cursor={cursor}"),
            &staff,
        )
        .await
        .problem(400, Some("invalid-cursor"));
    stack
        .get("/fulfillment/orders?status=LOST", &staff)
        .await
        .problem(400, Some("invalid-status"));
    let customer = stack.token("c1", &["customer"]);
    stack
        .get("/fulfillment/orders", &customer)
        .await
        .problem(403, None);
}

#[tokio::test]
async fn an_order_can_be_read_with_a_bounded_min_version_wait() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let id = stack
        .order("c1", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let staff = stack.token("sam", &["staff"]);
    let order = stack
        .get(&format!("/fulfillment/orders/{id}?minVersion=1"), &staff)
        .await
        .expect(200);
    assert_eq!(order["status"], "PLACED");
    let behind = stack
        .get(
            &format!("/fulfillment/orders/{id}?minVersion=5&maxWaitMs=100"),
            &staff,
        )
        .await
        .problem(412, Some("view-behind"));
    assert_eq!(behind["currentVersion"], 1);
    stack
        .get("/fulfillment/orders/o-missing", &staff)
        .await
        .problem(404, None);
}
