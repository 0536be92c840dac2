//! orders: every command, every business rule, and who may see what.

use reqwest::Method;
use serde_json::json;
use system_tests::*;

async fn stack_with_products() -> Stack {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 250).await;
    stack.product("B2", "Buoy", 1000).await;
    stack
}

#[tokio::test]
async fn a_customer_places_and_changes_an_order_and_every_command_answers_id_and_version() {
    let stack = stack_with_products().await;
    let alice = stack.token("alice", &["customer"]);
    let placed = stack
        .post(
            "/orders",
            &alice,
            json!({"lines": [{"sku": "A1", "quantity": 2}]}),
        )
        .await
        .expect(201);
    let id = placed["id"].as_str().unwrap().to_string();
    assert_eq!(placed, json!({"id": id, "version": 1}));

    let added = stack
        .post(
            &format!("/orders/{id}/lines"),
            &alice,
            json!({"sku": "B2", "quantity": 1}),
        )
        .await
        .expect(200);
    assert_eq!(added, json!({"id": id, "version": 2}));
    let raised = stack
        .post(
            &format!("/orders/{id}/lines"),
            &alice,
            json!({"sku": "A1", "quantity": 3}),
        )
        .await
        .expect(200);
    assert_eq!(raised["version"], 3);
    let order = stack
        .get(&format!("/orders/{id}"), &alice)
        .await
        .expect(200);
    assert_eq!(order["customerId"], "alice");
    assert_eq!(order["status"], "PLACED");
    assert_eq!(
        order["lines"],
        json!([{"sku": "A1", "quantity": 5, "unitPriceCents": 250}, {"sku": "B2", "quantity": 1, "unitPriceCents": 1000}])
    );
    assert_eq!(order["totalCents"], 5 * 250 + 1000);
    assert_eq!(order["version"], 3);

    let removed = stack
        .send(
            Method::DELETE,
            &format!("/orders/{id}/lines/B2"),
            Some(&alice),
            None,
            &[],
        )
        .await
        .expect(200);
    assert_eq!(removed, json!({"id": id, "version": 4}));
    stack
        .send(
            Method::DELETE,
            &format!("/orders/{id}/lines/B2"),
            Some(&alice),
            None,
            &[],
        )
        .await
        .problem(404, Some("line-not-found"));
    let cancelled = stack
        .post(&format!("/orders/{id}/cancel"), &alice, json!({}))
        .await
        .expect(200);
    assert_eq!(cancelled, json!({"id": id, "version": 5}));
    assert_eq!(
        stack
            .get(&format!("/orders/{id}"), &alice)
            .await
            .expect(200)["status"],
        "CANCELLED"
    );
}

#[tokio::test]
async fn the_customer_is_the_token_subject_never_a_body_field() {
    let stack = stack_with_products().await;
    let alice = stack.token("alice", &["customer"]);
    stack
        .post(
            "/orders",
            &alice,
            json!({"customerId": "mallory", "lines": [{"sku": "A1", "quantity": 1}]}),
        )
        .await
        .problem(422, Some("invalid-body"));
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    assert_eq!(
        stack
            .get(&format!("/orders/{id}"), &alice)
            .await
            .expect(200)["customerId"],
        "alice"
    );
}

#[tokio::test]
async fn business_rules_answer_422_with_stable_codes() {
    let stack = stack_with_products().await;
    let m = stack.token("mia", &["merchandiser"]);
    stack
        .send(
            Method::PUT,
            "/products/OLD",
            Some(&m),
            Some(json!({"name": "Old", "priceCents": 5})),
            &[],
        )
        .await
        .expect(201);
    stack
        .send(Method::DELETE, "/products/OLD", Some(&m), None, &[])
        .await
        .expect(200);
    stack.drain().await;
    let alice = stack.token("alice", &["customer"]);
    let place = |lines| stack.post("/orders", &alice, json!({ "lines": lines }));
    place(json!([{"sku": "A1", "quantity": 0}]))
        .await
        .problem(422, Some("invalid-quantity"));
    place(json!([{"sku": "A1", "quantity": -1}]))
        .await
        .problem(422, Some("invalid-quantity"));
    place(json!([{"sku": "NOPE", "quantity": 1}]))
        .await
        .problem(422, Some("unknown-sku"));
    place(json!([{"sku": "OLD", "quantity": 1}]))
        .await
        .problem(422, Some("product-discontinued"));
    place(json!([])).await.problem(422, Some("no-lines"));

    // $1,000,000 is the highest price; $10,000,000 the largest order.
    stack
        .send(
            Method::PUT,
            "/products/DEAR",
            Some(&m),
            Some(json!({"name": "Dear", "priceCents": 100_000_001})),
            &[],
        )
        .await
        .problem(422, Some("invalid-price"));
    stack.product("DEAR", "Dear", 100_000_000).await;
    stack.drain().await;
    place(json!([{"sku": "DEAR", "quantity": 10}]))
        .await
        .expect(201);
    place(json!([{"sku": "DEAR", "quantity": 10}, {"sku": "A1", "quantity": 1}]))
        .await
        .problem(422, Some("order-total-too-large"));
    place(json!([{"sku": "DEAR", "quantity": 10_000}]))
        .await
        .problem(422, Some("order-total-too-large"));

    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let lines = format!("/orders/{id}/lines");
    let line = |sku: &str, quantity: i64| {
        stack.post(&lines, &alice, json!({"sku": sku, "quantity": quantity}))
    };
    line("A1", 0).await.problem(422, Some("invalid-quantity"));
    line("OLD", 1)
        .await
        .problem(422, Some("product-discontinued"));
    line("NOPE", 1).await.problem(422, Some("unknown-sku"));
    line("DEAR", 10)
        .await
        .problem(422, Some("order-total-too-large"));

    let staff = stack.token("sam", &["staff"]);
    stack
        .post(&format!("/orders/{id}/deliver"), &staff, json!({}))
        .await
        .problem(422, Some("not-shipped"));
    stack
        .post(&format!("/orders/{id}/ship"), &staff, json!({}))
        .await
        .expect(200);
    line("A1", 1).await.problem(422, Some("order-closed"));
    stack
        .send(
            Method::DELETE,
            &format!("/orders/{id}/lines/A1"),
            Some(&alice),
            None,
            &[],
        )
        .await
        .problem(422, Some("order-closed"));
    stack
        .post(&format!("/orders/{id}/cancel"), &alice, json!({}))
        .await
        .problem(422, Some("too-late"));
    stack
        .post(&format!("/orders/{id}/deliver"), &staff, json!({}))
        .await
        .expect(200);
    stack
        .post(&format!("/orders/{id}/cancel"), &alice, json!({}))
        .await
        .problem(422, Some("order-closed"));

    let other = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    stack
        .post(&format!("/orders/{other}/cancel"), &alice, json!({}))
        .await
        .expect(200);
    stack
        .post(&format!("/orders/{other}/ship"), &staff, json!({}))
        .await
        .problem(422, Some("order-closed"));
    stack
        .post(
            &format!("/orders/{other}/lines"),
            &alice,
            json!({"sku": "A1", "quantity": 1}),
        )
        .await
        .problem(422, Some("order-closed"));
}

#[tokio::test]
async fn orders_are_visible_to_their_customer_and_staff_only() {
    let stack = stack_with_products().await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let bob = stack.token("bob", &["customer"]);
    let staff = stack.token("sam", &["staff"]);
    let merchandiser = stack.token("mia", &["merchandiser"]);
    stack
        .get(&format!("/orders/{id}"), &bob)
        .await
        .problem(404, None);
    stack
        .post(
            &format!("/orders/{id}/lines"),
            &bob,
            json!({"sku": "A1", "quantity": 1}),
        )
        .await
        .problem(404, None);
    stack
        .post(&format!("/orders/{id}/cancel"), &bob, json!({}))
        .await
        .problem(404, None);
    stack
        .send(
            Method::DELETE,
            &format!("/orders/{id}/lines/A1"),
            Some(&bob),
            None,
            &[],
        )
        .await
        .problem(404, None);
    assert_eq!(
        stack
            .get(&format!("/orders/{id}"), &staff)
            .await
            .expect(200)["id"],
        id.as_str()
    );
    stack
        .get(&format!("/orders/{id}"), &merchandiser)
        .await
        .problem(403, Some("forbidden"));
    stack
        .get("/orders/o-does-not-exist", &staff)
        .await
        .problem(404, None);

    let alice = stack.token("alice", &["customer"]);
    stack
        .post(&format!("/orders/{id}/ship"), &alice, json!({}))
        .await
        .problem(403, Some("forbidden"));
    stack
        .post(&format!("/orders/{id}/deliver"), &alice, json!({}))
        .await
        .problem(403, None);
    stack
        .post(
            "/orders",
            &staff,
            json!({"lines": [{"sku": "A1", "quantity": 1}]}),
        )
        .await
        .problem(403, None);
    stack
        .send(Method::GET, &format!("/orders/{id}"), None, None, &[])
        .await
        .problem(401, None);
    stack
        .send(
            Method::GET,
            &format!("/orders/{id}"),
            Some("not-a-jwt"),
            None,
            &[],
        )
        .await
        .problem(401, None);
}

#[tokio::test]
async fn groups_in_the_array_form_work_like_the_string_form() {
    let stack = stack_with_products().await;
    // A token whose groups hold several roles: API Gateway flattens them to "[customer staff]".
    let both = stack.token("carol", &["customer", "staff"]);
    let id = stack
        .order("carol", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    stack
        .post(&format!("/orders/{id}/ship"), &both, json!({}))
        .await
        .expect(200);
}
