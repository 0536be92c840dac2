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

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_422_invalid_body() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let alice = stack.token("alice", &["customer"]);
    let m = stack.token("mia", &["merchandiser"]);
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    for (path, token, body) in [
        ("/orders".to_string(), &alice, json!({"lines": [["A1", 1]]})),
        ("/orders".to_string(), &alice, json!([[["A1", 1]]])),
        (format!("/orders/{id}/lines"), &alice, json!(["A1", 1])),
    ] {
        stack
            .send(Method::POST, &path, Some(token), Some(body), &[])
            .await
            .problem(422, Some("invalid-body"));
    }
    stack
        .send(
            Method::PUT,
            "/products/A2",
            Some(&m),
            Some(json!(["Anchor", 100])),
            &[],
        )
        .await
        .problem(422, Some("invalid-body"));
    let order = stack
        .get(&format!("/orders/{id}"), &alice)
        .await
        .expect(200);
    assert_eq!(order["version"], 1, "nothing applied");
}

#[tokio::test]
async fn an_invalid_id_in_any_path_is_400_on_every_route() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let all = stack.token("alice", &["customer", "staff", "merchandiser", "marketing"]);
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let long = "A".repeat(65);
    for bad in ["A1%00", long.as_str(), "a.b", "%20", "A1%2FB"] {
        let product = json!({"name": "x", "priceCents": 1});
        let line = json!({"sku": "A1", "quantity": 1});
        for (method, path, body, code) in [
            (Method::GET, format!("/products/{bad}"), None, "invalid-sku"),
            (
                Method::PUT,
                format!("/products/{bad}"),
                Some(product),
                "invalid-sku",
            ),
            (
                Method::DELETE,
                format!("/products/{bad}"),
                None,
                "invalid-sku",
            ),
            (
                Method::GET,
                format!("/orders/{bad}"),
                None,
                "invalid-order-id",
            ),
            (
                Method::POST,
                format!("/orders/{bad}/lines"),
                Some(line),
                "invalid-order-id",
            ),
            (
                Method::DELETE,
                format!("/orders/{bad}/lines/A1"),
                None,
                "invalid-order-id",
            ),
            (
                Method::DELETE,
                format!("/orders/{id}/lines/{bad}"),
                None,
                "invalid-sku",
            ),
            (
                Method::POST,
                format!("/orders/{bad}/cancel"),
                None,
                "invalid-order-id",
            ),
            (
                Method::POST,
                format!("/orders/{bad}/ship"),
                None,
                "invalid-order-id",
            ),
            (
                Method::POST,
                format!("/orders/{bad}/deliver"),
                None,
                "invalid-order-id",
            ),
            (
                Method::GET,
                format!("/tracking/orders/{bad}"),
                None,
                "invalid-order-id",
            ),
            (
                Method::GET,
                format!("/fulfillment/orders/{bad}"),
                None,
                "invalid-order-id",
            ),
        ] {
            let reply = stack
                .send(method.clone(), &path, Some(&all), body, &[])
                .await;
            assert_eq!(reply.status.as_u16(), 400, "{method} {path}: {reply:?}");
            reply.problem(400, Some(code));
        }
    }
}
