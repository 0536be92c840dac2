//! sales: exact totals per day and per product.

use serde_json::{Value, json};
use system_tests::*;

async fn today(stack: &Stack, id: &str) -> String {
    let alice = stack.token("alice", &["customer"]);
    let order = stack
        .get(&format!("/tracking/orders/{id}?minVersion=1"), &alice)
        .await
        .expect(200);
    order["placedAt"].as_str().unwrap()[..10].to_string()
}

fn day_row(body: &Value, day: &str) -> Value {
    body["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["day"] == day)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn totals_follow_placements_changes_and_cancellations() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    stack.product("B2", "Buoy", 1000).await;
    let alice = stack.token("alice", &["customer"]);
    let first = stack
        .order("alice", json!([{"sku": "A1", "quantity": 3}]))
        .await;
    let second = stack
        .order(
            "alice",
            json!([{"sku": "B2", "quantity": 1}, {"sku": "A1", "quantity": 1}]),
        )
        .await;
    stack
        .post(
            &format!("/orders/{first}/lines"),
            &alice,
            json!({"sku": "B2", "quantity": 2}),
        )
        .await
        .expect(200);
    let third = stack
        .order("alice", json!([{"sku": "A1", "quantity": 10}]))
        .await;
    stack
        .post(&format!("/orders/{third}/cancel"), &alice, json!({}))
        .await
        .expect(200);
    stack
        .send(
            reqwest::Method::DELETE,
            &format!("/orders/{second}/lines/A1"),
            Some(&alice),
            None,
            &[],
        )
        .await
        .expect(200);
    stack.drain().await;

    let day = today(&stack, &first).await;
    let marketing = stack.token("meg", &["marketing"]);
    let daily = stack
        .get(&format!("/sales/daily?from={day}&to={day}"), &marketing)
        .await
        .expect(200);
    // first: 3 A1 + 2 B2; second: 1 B2; third: cancelled.
    assert_eq!(
        day_row(&daily, &day),
        json!({"day": day, "orders": 2, "units": 6, "revenueCents": 300 + 3000})
    );

    let top = stack
        .get(&format!("/sales/products?day={day}"), &marketing)
        .await
        .expect(200);
    assert_eq!(
        top["products"],
        json!([{"sku": "B2", "units": 3, "revenueCents": 3000}, {"sku": "A1", "units": 3, "revenueCents": 300}])
    );
    let one = stack
        .get(&format!("/sales/products?day={day}&limit=1"), &marketing)
        .await
        .expect(200);
    assert_eq!(one["products"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn ranges_are_bounded_and_checked() {
    let stack = Stack::start().await;
    let marketing = stack.token("meg", &["marketing"]);
    let year = stack
        .get("/sales/daily?from=2026-01-01&to=2026-12-31", &marketing)
        .await
        .expect(200);
    assert_eq!(year["days"].as_array().unwrap().len(), 365);
    assert_eq!(
        year["days"][0],
        json!({"day": "2026-01-01", "orders": 0, "units": 0, "revenueCents": 0})
    );
    stack
        .get("/sales/daily?from=2024-01-01&to=2024-12-31", &marketing)
        .await
        .expect(200);
    stack
        .get("/sales/daily?from=2025-01-01&to=2026-01-02", &marketing)
        .await
        .problem(400, Some("range-too-long"));
    stack
        .get("/sales/daily?from=2026-02-01&to=2026-01-01", &marketing)
        .await
        .problem(400, Some("invalid-range"));
    stack
        .get("/sales/daily?from=yesterday&to=2026-01-01", &marketing)
        .await
        .problem(400, Some("invalid-date"));
    stack
        .get("/sales/daily?from=2026-01-01", &marketing)
        .await
        .problem(400, Some("invalid-query"));
    stack
        .get("/sales/products?day=2026-02-30", &marketing)
        .await
        .problem(400, Some("invalid-date"));
    stack
        .get("/sales/products?day=2026-02-03&limit=0", &marketing)
        .await
        .problem(400, Some("invalid-limit"));
    let staff = stack.token("sam", &["staff"]);
    stack
        .get("/sales/daily?from=2026-01-01&to=2026-01-01", &staff)
        .await
        .problem(403, None);
}

#[tokio::test]
async fn a_counter_that_does_not_read_is_left_out_not_a_failure() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 2}]))
        .await;
    let day = today(&stack, &id).await;
    stack.drain().await;
    // Counters without their day or sku label, as a bad write or a bug could leave them.
    for item in [
        json!({"pk": {"S": format!("MONTH#{}", &day[..7])}, "sk": {"S": "DAY#bad"}, "orders": {"N": "1"}}),
        json!({"pk": {"S": format!("DAY#{day}")}, "sk": {"S": "SKU#bad"}, "units": {"N": "5"}}),
    ] {
        stack
            .send(
                system_tests::reqwest::Method::PUT,
                "/_devstack/tables/SalesTable/items",
                None,
                Some(item),
                &[],
            )
            .await
            .expect(204);
    }
    let meg = stack.token("meg", &["marketing"]);
    let daily = stack
        .get(&format!("/sales/daily?from={day}&to={day}"), &meg)
        .await
        .expect(200);
    assert_eq!(day_row(&daily, &day)["revenueCents"], 200);
    let products = stack
        .get(&format!("/sales/products?day={day}"), &meg)
        .await
        .expect(200);
    assert_eq!(
        products["products"],
        json!([{"sku": "A1", "units": 2, "revenueCents": 200}])
    );
}
