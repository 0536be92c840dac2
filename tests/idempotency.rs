//! Idempotency keys: a repeat answers as the first time and applies nothing.

use reqwest::Method;
use serde_json::json;
use system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_key_replays_the_first_answer_and_applies_once() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let alice = stack.token("alice", &["customer"]);
    let body = json!({"lines": [{"sku": "A1", "quantity": 1}]});
    let place = |body| {
        stack.send(
            Method::POST,
            "/orders",
            Some(&alice),
            Some(body),
            &[("idempotency-key", "k-1")],
        )
    };
    let first = place(body.clone()).await;
    assert!(first.headers.get("idempotent-replayed").is_none());
    let first = first.expect(201);
    let again = place(body.clone()).await;
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.expect(201), first);
    place(json!({"lines": [{"sku": "A1", "quantity": 2}]}))
        .await
        .problem(422, Some("idempotency-key-reused"));

    // Keys belong to their caller: bob's k-1 is another key.
    let bob = stack.token("bob", &["customer"]);
    let bobs = stack
        .send(
            Method::POST,
            "/orders",
            Some(&bob),
            Some(body.clone()),
            &[("idempotency-key", "k-1")],
        )
        .await
        .expect(201);
    assert_ne!(bobs["id"], first["id"]);

    let id = first["id"].as_str().unwrap();
    let line = || {
        stack.send(
            Method::POST,
            &format!("/orders/{id}/lines"),
            Some(&alice),
            Some(json!({"sku": "A1", "quantity": 5})),
            &[("idempotency-key", "k-2")],
        )
    };
    assert_eq!(line().await.expect(200)["version"], 2);
    assert_eq!(line().await.expect(200)["version"], 2);
    let order = stack
        .get(&format!("/orders/{id}"), &alice)
        .await
        .expect(200);
    assert_eq!(
        (
            order["version"].as_u64(),
            order["lines"][0]["quantity"].as_u64()
        ),
        (Some(2), Some(6))
    );

    stack.drain().await;
    let events = stack.archived().await;
    let placed = events
        .iter()
        .filter(|e| e["detail-type"] == "OrderPlaced")
        .count();
    let added = events
        .iter()
        .filter(|e| e["detail-type"] == "OrderLineAdded")
        .count();
    assert_eq!((placed, added), (2, 1), "replays publish nothing");
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("IDEMPOTENCY") && !text.contains("fingerprint") && !text.contains("k-1"),
        "keys are never published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_key_apply_once() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let alice = stack.token("alice", &["customer"]);
    let client = reqwest::Client::new();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let request = client
                .post(format!("{}/orders", stack.url))
                .bearer_auth(&alice)
                .header("content-type", "application/json")
                .header("idempotency-key", "same")
                .body(json!({"lines": [{"sku": "A1", "quantity": 1}]}).to_string());
            tokio::spawn(Stack::reply(request))
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for handle in handles {
        let reply = handle.await.unwrap();
        ids.insert(reply.expect(201)["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "every answer names the one order");
    stack.drain().await;
    let placed = stack
        .archived()
        .await
        .iter()
        .filter(|e| e["detail-type"] == "OrderPlaced")
        .count();
    assert_eq!(placed, 1);
}

#[tokio::test]
async fn a_malformed_key_is_refused() {
    let stack = Stack::start().await;
    let alice = stack.token("alice", &["customer"]);
    let long = "k".repeat(300);
    stack
        .send(
            Method::POST,
            "/orders",
            Some(&alice),
            Some(json!({"lines": []})),
            &[("idempotency-key", &long)],
        )
        .await
        .problem(400, Some("invalid-idempotency-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_and_keys_that_contain_the_separator_never_share_a_key() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let vic = stack.token("vic", &["customer"]);
    let vick = stack.token("vic#k", &["customer"]);
    let body = json!({"lines": [{"sku": "A1", "quantity": 1}]});
    let place = |token, key| {
        stack.send(
            Method::POST,
            "/orders",
            Some(token),
            Some(body.clone()),
            &[("idempotency-key", key)],
        )
    };
    let first = place(&vic, "k#x").await.expect(201);
    let second = place(&vick, "x").await;
    assert!(second.headers.get("idempotent-replayed").is_none());
    let second = second.expect(201);
    assert_ne!(second["id"], first["id"], "vic#k's order is its own");
    let order = stack
        .get(
            &format!("/orders/{}", second["id"].as_str().unwrap()),
            &vick,
        )
        .await
        .expect(200);
    assert_eq!(order["customerId"], "vic#k");
    // A different body under vic#k's key is vic#k's own business, not a reuse of vic's.
    place(&vick, "x").await.expect(201);
    stack
        .send(
            Method::POST,
            "/orders",
            Some(&vic),
            Some(json!({"lines": [{"sku": "A1", "quantity": 2}]})),
            &[("idempotency-key", "k#x")],
        )
        .await
        .problem(422, Some("idempotency-key-reused"));
}
