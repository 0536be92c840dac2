//! The `devstack` binary as a user runs it: first line, tokens, Ctrl-C, and a restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn template() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../template.yaml")
        .display()
        .to_string()
}

fn start(data_dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args(["--port", "0", "--template", &template(), "--data-dir"])
        .arg(data_dir)
        .env("BULKHEAD_DEV_JWT_SECRET", "cli-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (child, first)
}

fn token(sub: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args([
            "token",
            "--template",
            &template(),
            "--sub",
            sub,
            "--role",
            role,
        ])
        .env("BULKHEAD_DEV_JWT_SECRET", "cli-test")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn url_of(first_line: &str) -> String {
    let start = first_line
        .find("http://")
        .expect("the first line gives the URL");
    first_line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_first_line_gives_the_url_tokens_work_and_ctrl_c_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, first) = start(dir.path());
    assert!(
        first.starts_with("devstack: API at http://127.0.0.1:"),
        "{first}"
    );
    assert!(
        first.contains(&dir.path().join("bulkhead.db").display().to_string()),
        "{first}"
    );
    let url = url_of(&first);

    let client = reqwest::Client::new();
    let put = client
        .put(format!("{url}/products/A1"))
        .bearer_auth(token("mia", "merchandiser"))
        .header("content-type", "application/json")
        .body(r#"{"name": "Anchor", "priceCents": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let forbidden = client
        .get(format!("{url}/tracking/orders"))
        .bearer_auth(token("mia", "merchandiser"))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "Ctrl-C is a clean stop: {status:?}");

    // A restart on the same data dir still has the product.
    let (mut child, first) = start(dir.path());
    let url = url_of(&first);
    let get = client
        .get(format!("{url}/products/A1"))
        .bearer_auth(token("alice", "customer"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}
