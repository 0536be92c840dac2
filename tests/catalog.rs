//! catalog: products through the API, and their events reaching the orders cache.

use reqwest::Method;
use serde_json::json;
use system_tests::*;

#[tokio::test]
async fn merchandisers_create_update_read_and_discontinue_products() {
    let stack = Stack::start().await;
    let m = stack.token("mia", &["merchandiser"]);
    let put = |body| stack.send(Method::PUT, "/products/A1", Some(&m), Some(body), &[]);
    assert_eq!(
        put(json!({"name": "Anchor", "priceCents": 1250}))
            .await
            .expect(201),
        json!({"sku": "A1", "version": 1})
    );
    assert_eq!(
        put(json!({"name": "Anchor", "priceCents": 1300}))
            .await
            .expect(200),
        json!({"sku": "A1", "version": 2})
    );
    assert_eq!(
        put(json!({"name": "Anchor", "priceCents": 1300}))
            .await
            .expect(200)["version"],
        2,
        "an unchanged put writes nothing"
    );

    let customer = stack.token("alice", &["customer"]);
    let reply = stack.get("/products/A1", &customer).await;
    assert_eq!(reply.headers["etag"], "\"2\"");
    assert_eq!(
        reply.expect(200),
        json!({"sku": "A1", "name": "Anchor", "priceCents": 1300, "status": "ACTIVE", "version": 2})
    );

    let gone = stack
        .send(Method::DELETE, "/products/A1", Some(&m), None, &[])
        .await
        .expect(200);
    assert_eq!(gone["version"], 3);
    assert_eq!(
        stack.get("/products/A1", &customer).await.expect(200)["status"],
        "DISCONTINUED"
    );
    put(json!({"name": "Anchor", "priceCents": 1}))
        .await
        .problem(422, Some("product-discontinued"));
    stack
        .send(Method::DELETE, "/products/NOPE", Some(&m), None, &[])
        .await
        .problem(404, None);
    stack
        .get("/products/NOPE", &customer)
        .await
        .problem(404, None);
}

#[tokio::test]
async fn product_rules_and_roles_are_enforced() {
    let stack = Stack::start().await;
    let m = stack.token("mia", &["merchandiser"]);
    let customer = stack.token("alice", &["customer"]);
    let put =
        |token: &str, body| stack.send(Method::PUT, "/products/A1", Some(token), Some(body), &[]);
    put(&m, json!({"name": "Anchor", "priceCents": 0}))
        .await
        .problem(422, Some("invalid-price"));
    put(&m, json!({"name": "", "priceCents": 5}))
        .await
        .problem(422, Some("invalid-name"));
    put(&customer, json!({"name": "Anchor", "priceCents": 5}))
        .await
        .problem(403, Some("forbidden"));
    stack
        .send(Method::DELETE, "/products/A1", Some(&customer), None, &[])
        .await
        .problem(403, None);
    stack
        .send(
            Method::PUT,
            "/products/A1",
            None,
            Some(json!({"name": "A", "priceCents": 5})),
            &[],
        )
        .await
        .problem(401, None);
}

#[tokio::test]
async fn catalog_events_reach_the_orders_cache_which_prices_and_guards_orders() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 700).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 3}]))
        .await;
    let alice = stack.token("alice", &["customer"]);
    assert_eq!(
        stack
            .get(&format!("/orders/{id}"), &alice)
            .await
            .expect(200)["totalCents"],
        2100
    );

    let m = stack.token("mia", &["merchandiser"]);
    stack
        .send(Method::DELETE, "/products/A1", Some(&m), None, &[])
        .await
        .expect(200);
    stack.drain().await;
    stack
        .post(
            "/orders",
            &alice,
            json!({"lines": [{"sku": "A1", "quantity": 1}]}),
        )
        .await
        .problem(422, Some("product-discontinued"));

    let types: Vec<String> = stack
        .archived()
        .await
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        ["ProductCreated", "OrderPlaced", "ProductDiscontinued"]
    );
}
