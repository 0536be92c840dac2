//! notifications: each customer's inbox, one message per order and status, newest first.

use reqwest::Method;
use serde_json::{Value, json};
use system_tests::*;

async fn inbox(stack: &Stack, token: &str) -> Vec<Value> {
    let page = stack
        .get("/notifications?limit=100", token)
        .await
        .expect(200);
    assert!(page["cursor"].is_null());
    page["notifications"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_customer_reads_one_message_per_status_change_newest_first_and_only_their_own() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 1250).await;
    stack.product("B2", "Buoy", 300).await;
    let staff = stack.token("sam", &["staff"]);
    let first = stack
        .order(
            "alice",
            json!([{"sku": "A1", "quantity": 2}, {"sku": "B2", "quantity": 1}]),
        )
        .await;
    let second = stack
        .order("alice", json!([{"sku": "B2", "quantity": 3}]))
        .await;
    let bobs = stack
        .order("bob", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    for action in [
        format!("/orders/{first}/ship"),
        format!("/orders/{first}/deliver"),
    ] {
        stack.post(&action, &staff, json!({})).await.expect(200);
    }
    let alice = stack.token("alice", &["customer"]);
    for id in [&second, &bobs] {
        let token = if id == &bobs {
            stack.token("bob", &["customer"])
        } else {
            alice.clone()
        };
        stack
            .post(&format!("/orders/{id}/cancel"), &token, json!({}))
            .await
            .expect(200);
    }
    stack.drain().await;

    let messages = inbox(&stack, &alice).await;
    let kinds: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m["orderId"].as_str().unwrap(), m["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (second.as_str(), "cancelled"),
            (first.as_str(), "delivered"),
            (first.as_str(), "shipped"),
        ],
        "newest first, nothing about placing or about bob's order"
    );
    let shipped = &messages[2];
    assert_eq!(
        shipped["lines"],
        json!([{"sku": "A1", "quantity": 2}, {"sku": "B2", "quantity": 1}]),
        "the lines come from the event's state, though only status events are heard"
    );
    assert_eq!(shipped["totalCents"], 2800);
    assert_eq!(shipped["version"], 2);
    assert!(shipped["at"].as_str().unwrap() <= messages[1]["at"].as_str().unwrap());

    let bob = stack.token("bob", &["customer"]);
    let bobs_messages = inbox(&stack, &bob).await;
    assert_eq!(bobs_messages.len(), 1);
    assert_eq!(bobs_messages[0]["orderId"], bobs.as_str());

    let page = stack
        .get("/notifications?limit=2", &alice)
        .await
        .expect(200);
    assert_eq!(page["notifications"].as_array().unwrap().len(), 2);
    let cursor = page["cursor"].as_str().unwrap();
    let rest = stack
        .get(&format!("/notifications?limit=2&cursor={cursor}"), &alice)
        .await
        .expect(200);
    assert_eq!(rest["notifications"][0]["kind"], "shipped");
    assert!(rest["cursor"].is_null());
    stack
        .get(&format!("/notifications?cursor={cursor}"), &bob)
        .await
        .problem(400, Some("invalid-cursor"));
    stack
        .get("/notifications?cursor=tampered", &alice)
        .await
        .problem(400, Some("invalid-cursor"));
    for limit in ["0", "101", "many"] {
        stack
            .get(&format!("/notifications?limit={limit}"), &alice)
            .await
            .client_problem();
    }
    stack.get("/notifications", &staff).await.problem(403, None);
}

#[tokio::test]
async fn duplicated_and_reordered_events_never_make_a_second_message() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 1250).await;
    let staff = stack.token("sam", &["staff"]);
    let id = stack
        .order("carol", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    for action in ["ship", "deliver"] {
        stack
            .post(&format!("/orders/{id}/{action}"), &staff, json!({}))
            .await
            .expect(200);
    }
    stack.drain().await;
    let carol = stack.token("carol", &["customer"]);
    let before = inbox(&stack, &carol).await;
    assert_eq!(before.len(), 2);

    // Every archived event again, twice, newest first: late and repeated deliveries.
    let mut archived = stack.archived().await;
    archived.reverse();
    for _ in 0..2 {
        for event in &archived {
            let reply = Stack::reply(
                stack
                    .raw(
                        Method::POST,
                        "/_devstack/queues/NotificationsQueue/messages",
                    )
                    .header("content-type", "application/json")
                    .body(event.to_string()),
            )
            .await;
            assert_eq!(reply.status, 202);
        }
    }
    stack.drain().await;
    assert_eq!(inbox(&stack, &carol).await, before);
    assert!(stack.queue("NotificationsDLQ").await.is_empty());
}

#[tokio::test]
async fn the_inbox_answers_and_fills_while_orders_is_down() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 1250).await;
    let id = stack
        .order("dan", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let dan = stack.token("dan", &["customer"]);
    // The event waits in notifications' own queue while notifications is down...
    stack.set_down(&["notifications"]).await;
    stack
        .post(&format!("/orders/{id}/cancel"), &dan, json!({}))
        .await
        .expect(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = stack.status().await;
        if status["queues"]["NotificationsQueue"]["visible"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // ...and is applied, and read, with orders down.
    stack.set_down(&["orders"]).await;
    stack
        .get(&format!("/orders/{id}"), &dan)
        .await
        .problem(503, Some("service-down"));
    // (Not `drain`: a down service's stream is not polled, so it never reads caught up.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let messages = loop {
        let messages = inbox(&stack, &dan).await;
        if !messages.is_empty() || std::time::Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["kind"], "cancelled");
}
