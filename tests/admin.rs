//! The devstack's own surface: only this machine may drive it, writes are JSON only, and a
//! raw item must have its table's key.

use reqwest::Method;
use serde_json::json;
use system_tests::*;

#[tokio::test]
async fn a_web_page_elsewhere_cannot_drive_the_devstack() {
    let stack = Stack::start().await;
    let faults = |content_type: &'static str, extra: Option<(&'static str, &'static str)>| {
        let mut request = stack
            .raw(Method::POST, "/_devstack/faults")
            .header("content-type", content_type)
            .body(r#"{"down": ["orders"]}"#);
        if let Some((name, value)) = extra {
            request = request.header(name, value);
        }
        Stack::reply(request)
    };
    faults("text/plain", None)
        .await
        .problem(415, Some("unsupported-media-type"));
    faults("application/x-www-form-urlencoded", None)
        .await
        .problem(415, Some("unsupported-media-type"));
    for origin in [
        "http://evil.example",
        "null",
        "http://localhost.evil.example",
    ] {
        faults("application/json", Some(("origin", origin)))
            .await
            .problem(403, Some("foreign-origin"));
    }
    faults(
        "application/json",
        Some(("host", "rebound.evil.example:3000")),
    )
    .await
    .problem(403, Some("foreign-origin"));
    let alice = stack.token("alice", &["customer"]);
    Stack::reply(
        stack
            .raw(Method::GET, "/tracking/orders")
            .bearer_auth(&alice)
            .header("host", "rebound.evil.example"),
    )
    .await
    .problem(403, Some("foreign-origin"));
    assert_eq!(stack.status().await["down"], json!([]), "nothing applied");

    faults(
        "application/json",
        Some(("origin", "http://localhost:5173")),
    )
    .await
    .expect(200);
    assert_eq!(stack.status().await["down"], json!(["orders"]));
    stack.set_faults(json!({})).await;
}

#[tokio::test]
async fn an_item_without_its_tables_key_is_422() {
    let stack = Stack::start().await;
    for item in [
        json!({"version": {"N": "1"}}),
        json!({"pk": {"S": "ORDER#x"}}),
        json!({"pk": {"N": "1"}, "sk": {"S": "#"}}),
        json!({"pk": {"S": ""}, "sk": {"S": "#"}}),
        json!({"pk": {"S": "CUSTOMER#x"}, "sk": {"S": "#"}, "gsi1pk": {"N": "1"}}),
    ] {
        stack
            .send(
                Method::PUT,
                "/_devstack/tables/TrackingTable/items",
                None,
                Some(item.clone()),
                &[],
            )
            .await
            .problem(422, Some("invalid-item"));
    }
}

#[tokio::test]
async fn binding_beyond_loopback_needs_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = devstack::Config::new(template_path(), dir.path().to_path_buf());
    config.bind = "0.0.0.0:0".parse().unwrap();
    let refused = devstack::start(config).await.err().expect("refused");
    assert!(refused.to_string().contains("--allow-remote"), "{refused}");
}
