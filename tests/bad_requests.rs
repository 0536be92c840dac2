//! Bad requests get a clear 4xx problem+json, never a 500.

use reqwest::Method;
use serde_json::json;
use system_tests::*;

#[tokio::test]
async fn malformed_requests_answer_4xx_problem_json() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let alice = stack.token("alice", &["customer"]);
    let post = |content_type: &'static str, body: Vec<u8>| {
        Stack::reply(
            stack
                .raw(Method::POST, "/orders")
                .bearer_auth(&alice)
                .header("content-type", content_type)
                .body(body),
        )
    };
    post("application/json", b"{\"lines\": [".to_vec())
        .await
        .problem(400, Some("malformed-json"));
    post("application/json", vec![0xff, 0xfe, 0x00])
        .await
        .problem(400, Some("malformed-json"));
    post("text/plain", b"{}".to_vec())
        .await
        .problem(415, Some("unsupported-media-type"));
    let big = format!("{{\"lines\": [], \"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    post("application/json", big.into_bytes())
        .await
        .problem(413, Some("body-too-large"));
    post("application/json", "[".repeat(5000).into_bytes())
        .await
        .client_problem();
    post(
        "application/json",
        br#"{"lines": [{"sku": "A1", "quantity": 1e400}]}"#.to_vec(),
    )
    .await
    .client_problem();
    post(
        "application/json",
        br#"{"lines": [{"sku": "A1", "quantity": 99999999999999999999}]}"#.to_vec(),
    )
    .await
    .problem(422, Some("invalid-body"));
    post(
        "application/json",
        br#"{"lines": [{"sku": "A1", "quantity": 1, "colour": "red"}]}"#.to_vec(),
    )
    .await
    .problem(422, Some("invalid-body"));
    post("application/json", br#"{"lines": "many"}"#.to_vec())
        .await
        .problem(422, Some("invalid-body"));

    stack
        .get("/nowhere", &alice)
        .await
        .problem(404, Some("no-route"));
    stack
        .send(Method::PATCH, "/orders", Some(&alice), None, &[])
        .await
        .problem(404, None);
    stack
        .get("/orders/not..valid!", &alice)
        .await
        .problem(400, Some("invalid-order-id"));
    let long = "o".repeat(100);
    stack
        .get(&format!("/orders/{long}"), &alice)
        .await
        .problem(400, None);
    let m = stack.token("mia", &["merchandiser"]);
    stack
        .send(
            Method::PUT,
            "/products/bad%20sku",
            Some(&m),
            Some(json!({"name": "x", "priceCents": 1})),
            &[],
        )
        .await
        .problem(400, Some("invalid-sku"));
    stack
        .send(
            Method::PUT,
            "/products/A1",
            Some(&m),
            Some(json!({"name": "x", "priceCents": "1"})),
            &[],
        )
        .await
        .problem(422, None);
}

#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_is_a_400_problem() {
    let stack = Stack::start().await;
    let alice = stack.token("alice", &["customer"]);
    let staff = stack.token("sam", &["staff"]);
    for (method, path, token) in [
        (Method::GET, "/products/%FF", &alice),
        (Method::DELETE, "/orders/abc/lines/%FF%FE", &alice),
        (Method::GET, "/fulfillment/orders/%C3%28", &staff),
        (Method::GET, "/tracking/orders/%FF", &alice),
    ] {
        stack
            .send(method, path, Some(token), None, &[])
            .await
            .problem(400, Some("invalid-path"));
    }
}
