//! Optimistic concurrency: If-Match, bounded retries, and no lost writes.

use serde_json::json;
use system_tests::*;

async fn join_all(
    replies: Vec<impl std::future::Future<Output = Reply> + Send + 'static>,
) -> Vec<Reply> {
    let handles: Vec<_> = replies.into_iter().map(tokio::spawn).collect();
    let mut out = vec![];
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_if_match_answers_412_with_the_current_version() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let alice = stack.token("alice", &["customer"]);
    let path = format!("/orders/{id}/lines");
    let body = json!({"sku": "A1", "quantity": 1});
    let with = |v: &'static str| {
        stack.send(
            reqwest::Method::POST,
            &path,
            Some(&alice),
            Some(body.clone()),
            &[("if-match", v)],
        )
    };
    assert_eq!(with("1").await.expect(200)["version"], 2);
    let stale = with("1").await.problem(412, Some("version-mismatch"));
    assert_eq!(stale["currentVersion"], 2);
    assert_eq!(with("\"2\"").await.expect(200)["version"], 3);
    with("abc").await.problem(400, Some("invalid-if-match"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_commands_with_the_same_if_match_exactly_one_applies() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let alice = stack.token("alice", &["customer"]);
    let client = reqwest::Client::new();
    let sends: Vec<_> = (0..24)
        .map(|_| {
            let request = client
                .post(format!("{}/orders/{id}/lines", stack.url))
                .bearer_auth(&alice)
                .header("content-type", "application/json")
                .header("if-match", "1")
                .body(json!({"sku": "A1", "quantity": 1}).to_string());
            Stack::reply(request)
        })
        .collect();
    let replies = join_all(sends).await;
    let won = replies.iter().filter(|r| r.status == 200).count();
    let stale = replies.iter().filter(|r| r.status == 412).count();
    assert_eq!((won, stale), (1, 23), "{replies:?}");
    let order = stack
        .get(&format!("/orders/{id}"), &alice)
        .await
        .expect(200);
    assert_eq!(
        (
            order["version"].as_u64(),
            order["lines"][0]["quantity"].as_i64()
        ),
        (Some(2), Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_without_if_match_retry_and_no_write_is_lost() {
    let stack = Stack::start().await;
    stack.product("A1", "Anchor", 100).await;
    let id = stack
        .order("alice", json!([{"sku": "A1", "quantity": 1}]))
        .await;
    let alice = stack.token("alice", &["customer"]);
    let client = reqwest::Client::new();
    let sends: Vec<_> = (0..40)
        .map(|_| {
            let request = client
                .post(format!("{}/orders/{id}/lines", stack.url))
                .bearer_auth(&alice)
                .header("content-type", "application/json")
                .body(json!({"sku": "A1", "quantity": 1}).to_string());
            Stack::reply(request)
        })
        .collect();
    let replies = join_all(sends).await;
    let mut versions = vec![];
    for reply in replies {
        match reply.status.as_u16() {
            200 => versions.push(reply.body["version"].as_u64().unwrap()),
            409 => assert!(
                reply.body["currentVersion"].as_u64().is_some(),
                "409 names the current version"
            ),
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
    }
    versions.sort();
    let accepted = versions.len() as u64;
    assert_eq!(
        versions,
        (2..2 + accepted).collect::<Vec<_>>(),
        "each version was won exactly once"
    );
    let order = stack
        .get(&format!("/orders/{id}"), &alice)
        .await
        .expect(200);
    assert_eq!(order["version"].as_u64().unwrap(), 1 + accepted);
    assert_eq!(
        order["lines"][0]["quantity"].as_u64().unwrap(),
        1 + accepted,
        "no accepted write was lost"
    );
}
