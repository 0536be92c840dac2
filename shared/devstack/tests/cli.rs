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

/// Sends `head` (and `then`, after `pause`) on a raw connection and reads until the server
/// closes it or `wait` passes; returns what was read and how long it took.
async fn raw(
    url: &str,
    head: &[u8],
    pause: std::time::Duration,
    then: &[u8],
    wait: std::time::Duration,
) -> (String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    let _ = stream.write_all(head).await;
    tokio::time::sleep(pause).await;
    let _ = stream.write_all(then).await;
    let mut out = vec![];
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

fn is_problem(response: &str, statuses: &[u16]) -> bool {
    let status = response
        .get(9..12)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let lower = response.to_ascii_lowercase();
    statuses.contains(&status)
        && lower.contains("content-type: application/problem+json")
        && response.contains(r#""code":""#)
}

#[tokio::test]
async fn refused_requests_answer_problem_json_and_slow_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, first) = start(dir.path());
    let url = url_of(&first);
    let quick = std::time::Duration::ZERO;
    let wait = std::time::Duration::from_secs(20);

    let big = format!(
        "GET /products HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let long_uri = format!(
        "GET /products/{} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n",
        "A".repeat(70_000)
    );
    let cases: [(&[u8], &[u16]); 4] = [
        (big.as_bytes(), &[431]),
        (long_uri.as_bytes(), &[414, 431]),
        (
            b"GET /products HTTP/1.1\r\nhost: 127.0.0.1\r\nx-bad\x01: 1\r\n\r\n",
            &[400],
        ),
        (
            b"GET /products HTTP/1.1\r\nhost: 127.0.0.1\r\n: empty\r\n\r\n",
            &[400],
        ),
    ];
    for (request, statuses) in cases {
        let (response, _) = raw(&url, request, quick, b"", wait).await;
        assert!(
            is_problem(&response, statuses),
            "{}: {response}",
            String::from_utf8_lossy(&request[..40])
        );
    }

    // Half a request line, then nothing: cut off after the header read timeout.
    let half_line = raw(&url, b"GET /prod", quick, b"", wait);
    // Whole headers, part of the body, then nothing: 408 after the body read timeout.
    let half_body = raw(
        &url,
        b"POST /_devstack/faults HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n{\"se",
        quick,
        b"",
        wait,
    );
    let ((line, line_took), (body, body_took)) = tokio::join!(half_line, half_body);
    assert!(
        line_took < std::time::Duration::from_secs(15),
        "half a request line kept the connection for {line_took:?}: {line}"
    );
    assert!(line.is_empty() || is_problem(&line, &[408]), "{line}");
    assert!(
        body_took < std::time::Duration::from_secs(15),
        "a stalled body kept the connection for {body_took:?}: {body}"
    );
    assert!(is_problem(&body, &[408]), "{body}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_request_in_flight_at_ctrl_c_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, first) = start(dir.path());
    let url = url_of(&first);
    let token = token("mia", "merchandiser");
    let body = r#"{"name": "Anchor", "priceCents": 5}"#;
    let head = format!(
        "PUT /products/A1 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    );
    let pid = child.id().to_string();
    let interrupt = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(status.success());
    };
    let request = raw(
        &url,
        head.as_bytes(),
        std::time::Duration::from_millis(1500),
        &body.as_bytes()[10..],
        std::time::Duration::from_secs(20),
    );
    let ((response, _), ()) = tokio::join!(request, interrupt);
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the request in flight at SIGINT: {response}"
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    // It was written: a restart has it.
    let (mut child, first) = start(dir.path());
    let get = reqwest::Client::new()
        .get(format!("{}/products/A1", url_of(&first)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn replay(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .arg("replay")
        .args(["--template", &template()])
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn devstack_replay_starts_and_watches_a_replay_and_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, first) = start(dir.path());
    let url = url_of(&first);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (ok, text) = replay(&[
        "--devstack",
        &url,
        "--service",
        "notifications",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        &now,
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("COMPLETED 0/0 events"), "{text}");
    assert!(text.contains("NotificationsRule"), "{text}");
    for (args, says) in [
        (
            vec![
                "--service",
                "nobody",
                "--from",
                "2026-01-01T00:00:00Z",
                "--to",
                &now,
            ],
            "unknown-service",
        ),
        (
            vec![
                "--service",
                "notifications",
                "--from",
                "2026-01-01T00:00:00Z",
                "--to",
                "2999-01-01T00:00:00Z",
            ],
            "invalid-window",
        ),
        (
            vec![
                "--service",
                "notifications",
                "--rule",
                "SalesRule",
                "--from",
                "2026-01-01T00:00:00Z",
                "--to",
                &now,
            ],
            "unknown-rule",
        ),
        (vec!["--cancel", "nope"], "unknown-replay"),
    ] {
        let mut all = vec!["--devstack", url.as_str()];
        all.extend(args);
        let (ok, text) = replay(&all);
        assert!(!ok && text.contains(says), "{all:?}: {text}");
    }
    let (ok, text) = replay(&["--service", "notifications"]);
    assert!(
        !ok && text.contains("--from"),
        "clap names what is missing: {text}"
    );
    child.kill().unwrap();
    let _ = child.wait();
    let (ok, text) = replay(&[
        "--devstack",
        &url,
        "--service",
        "notifications",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        &now,
    ]);
    assert!(!ok && text.contains("no devstack answers"), "{text}");
}

#[tokio::test]
async fn devstack_rebuild_rebuilds_a_view_and_refuses_what_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, first) = start(dir.path());
    let url = url_of(&first);
    let rebuild = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_devstack"))
            .args(["rebuild", "--template", &template(), "--devstack", &url])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = rebuild(&["--service", "sales"]);
    assert!(ok, "{text}");
    assert!(text.contains("Completed"), "{text}");
    assert!(text.contains("SalesTable 1→2"), "{text}");
    let (ok, text) = rebuild(&["--service", "orders"]);
    assert!(!ok && text.contains("not-a-view"), "{text}");
    child.kill().unwrap();
    let _ = child.wait();
    // The switch outlives the process.
    let generations = std::fs::read_to_string(dir.path().join("generations.json")).unwrap();
    let generations: serde_json::Value = serde_json::from_str(&generations).unwrap();
    assert_eq!(generations["current"], serde_json::json!({"SalesTable": 2}));
}
