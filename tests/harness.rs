//! The system test harness: a devstack per test, on a free port and a fresh data dir,
//! with short retry delays so that failure paths finish in test time.

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use reqwest;
pub use serde_json;

pub const SECRET: &str = "system-test-secret";

/// A moto server of this test's own, on a free port: each test starts from nothing.
pub struct Moto {
    child: std::process::Child,
    /// moto's stdout and stderr, shown when it cannot start.
    log: tempfile::NamedTempFile,
    pub url: String,
}

impl Moto {
    /// Starts moto and waits until it listens. When it exits first, or does not listen
    /// within 30 s, panics with the last lines moto wrote.
    pub fn start() -> Moto {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = std::env::var("MOTO_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| here.join("../.venv/bin/python"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = tempfile::Builder::new()
            .prefix("moto-")
            .suffix(".log")
            .tempfile()
            .unwrap();
        let output = || std::process::Stdio::from(log.as_file().try_clone().unwrap());
        let child = std::process::Command::new(&python)
            .arg(here.join("moto_server.py"))
            .args(["127.0.0.1", &port.to_string()])
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} did not start moto ({e}); tests/run installs it",
                    python.display()
                )
            });
        let mut moto = Moto {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!(
                    "moto exited ({status}) before it listened:\n{}",
                    moto.tail()
                );
            }
            if Instant::now() > deadline {
                panic!("moto did not listen within 30 s:\n{}", moto.tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// The last lines moto wrote to its stdout and stderr.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which backend the system tests run on: with the `moto` feature, the AWS adapters against
/// moto; without it, the embedded database.
pub fn on_moto() -> bool {
    cfg!(feature = "moto")
}

/// The repository's template.
/// The template and every function of it, built on a fresh embedded database in `dir`.
pub fn embedded_system(
    dir: &Path,
) -> (
    devstack::template::Template,
    devstack::infra::EmbeddedInfra,
    devstack::registry::Functions,
) {
    let template = devstack::template::Template::load(&template_path()).unwrap();
    let infra = devstack::infra::EmbeddedInfra::open(&template, &dir.join("system.db")).unwrap();
    let functions = devstack::registry::Functions::on(&template, &infra).unwrap();
    (template, infra, functions)
}

/// The dead-letter queues of the listeners that take this event, as they declare.
pub fn dead_letter_queues_taking(source: &str, detail_type: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (template, _infra, functions) = embedded_system(dir.path());
    let mut queues: Vec<String> = functions
        .listeners
        .iter()
        .filter(|(_, listener)| listener.takes(source, detail_type))
        .flat_map(|(function, _)| &function.queues)
        .filter_map(|mapping| template.queues[&mapping.queue].redrive.as_ref())
        .map(|redrive| redrive.dead_letter_queue.clone())
        .collect();
    queues.sort();
    queues
}

/// The on-failure queues of the template's stream mappings.
pub fn stream_dead_letter_queues() -> Vec<String> {
    let template = devstack::template::Template::load(&template_path()).unwrap();
    let mut queues: Vec<String> = template
        .functions
        .iter()
        .flat_map(|f| &f.streams)
        .filter_map(|mapping| mapping.on_failure.clone())
        .collect();
    queues.sort();
    queues
}

pub fn template_path() -> PathBuf {
    template()
}

pub struct Stack {
    pub url: String,
    template: PathBuf,
    moto: Option<Moto>,
    running: Option<devstack::Running>,
    dir: tempfile::TempDir,
    client: reqwest::Client,
    auth: devstack::auth::Auth,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {:?}",
            self.body
        );
        self.body
    }

    /// Asserts a problem+json answer with a 4xx status.
    #[track_caller]
    pub fn client_problem(self) -> Value {
        let status = self.status.as_u16();
        assert!(
            (400..500).contains(&status),
            "not a 4xx: {status} {:?}",
            self.body
        );
        self.problem(status, None)
    }

    /// Asserts a problem+json answer with this status (and code, when given).
    #[track_caller]
    pub fn problem(self, status: u16, code: Option<&str>) -> Value {
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            content_type, "application/problem+json",
            "for {:?}",
            self.body
        );
        assert_eq!(self.body["status"], status, "for {:?}", self.body);
        if let Some(code) = code {
            assert_eq!(self.body["code"], code, "for {:?}", self.body);
        }
        self.expect(status)
    }
}

fn template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_from(template()).await
    }

    /// A stack of another template, such as the repository's without a service.
    pub async fn start_from(template: PathBuf) -> Stack {
        let moto = on_moto().then(Moto::start);
        Self::start_with(tempfile::tempdir().unwrap(), moto, vec![], template).await
    }

    async fn start_with(
        dir: tempfile::TempDir,
        moto: Option<Moto>,
        down: Vec<String>,
        template: PathBuf,
    ) -> Stack {
        let mut config = devstack::Config::new(template.clone(), dir.path().to_path_buf());
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.jwt_secret = SECRET.into();
        config.max_visibility_ms = Some(150);
        config.stream_retry_ms = 10;
        config.faults.down = down;
        config.aws_endpoint = moto.as_ref().map(|m| m.url.clone());
        let running = devstack::start(config).await.expect("devstack starts");
        let loaded = devstack::template::Template::load(&template).unwrap();
        Stack {
            template,
            url: running.url.clone(),
            running: Some(running),
            moto,
            dir,
            client: reqwest::Client::new(),
            auth: devstack::auth::Auth::new(SECRET, &loaded.jwt_issuer, &loaded.jwt_audience),
        }
    }

    /// Stops the devstack and starts it again on the same data, optionally with faults.
    pub async fn restart(mut self, down: Vec<String>) -> Stack {
        self.running.take().unwrap().stop().await;
        let template = self.template.clone();
        Self::start_with(self.dir, self.moto.take(), down, template).await
    }

    /// Stops the devstack and starts it again on the same data with another template.
    pub async fn restart_from(mut self, template: PathBuf) -> Stack {
        self.running.take().unwrap().stop().await;
        Self::start_with(self.dir, self.moto.take(), vec![], template).await
    }

    /// The AWS-compatible endpoint under the stack, on moto.
    pub fn aws_endpoint(&self) -> Option<String> {
        self.moto.as_ref().map(|m| m.url.clone())
    }

    pub fn token(&self, sub: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        self.auth.token(sub, &roles, 3600).unwrap()
    }

    /// Sends a request; the answer's future borrows nothing, so it can be spawned.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> impl std::future::Future<Output = Reply> + Send + use<> {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        Self::reply(request)
    }

    pub async fn reply(request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the devstack answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn raw(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }

    pub fn get(
        &self,
        path: &str,
        token: &str,
    ) -> impl std::future::Future<Output = Reply> + Send + use<> {
        self.send(Method::GET, path, Some(token), None, &[])
    }

    pub fn post(
        &self,
        path: &str,
        token: &str,
        body: Value,
    ) -> impl std::future::Future<Output = Reply> + Send + use<> {
        self.send(Method::POST, path, Some(token), Some(body), &[])
    }

    pub async fn status(&self) -> Value {
        self.send(Method::GET, "/_devstack/status", None, None, &[])
            .await
            .expect(200)
    }

    pub async fn set_down(&self, down: &[&str]) {
        self.set_faults(json!({ "down": down })).await;
    }

    /// Replaces the devstack's fault plan (README: Faults).
    pub async fn set_faults(&self, plan: Value) {
        self.send(Method::POST, "/_devstack/faults", None, Some(plan), &[])
            .await
            .expect(200);
    }

    /// Waits until every stream is caught up and every queue but the dead-letter ones is empty.
    pub async fn drain(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut quiet = 0;
        loop {
            let status = self.status().await;
            let streams_done = status["streams"]
                .as_object()
                .unwrap()
                .values()
                .all(|s| s["lag"] == 0);
            let queues_done = status["queues"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(name, _)| !name.ends_with("DLQ"))
                .all(|(_, q)| q["visible"] == 0 && q["inFlight"] == 0);
            quiet = if streams_done && queues_done {
                quiet + 1
            } else {
                0
            };
            if quiet >= 3 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the system did not drain: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The message bodies in a queue (for dead-letter queues: what was given up on).
    pub async fn queue(&self, name: &str) -> Vec<Value> {
        let bodies = self
            .send(
                Method::GET,
                &format!("/_devstack/queues/{name}/messages"),
                None,
                None,
                &[],
            )
            .await
            .expect(200);
        bodies
            .as_array()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b.as_str().unwrap()).unwrap_or(b.clone()))
            .collect()
    }

    /// Every event the bus has archived, oldest first.
    pub async fn archived(&self) -> Vec<Value> {
        self.send(
            Method::GET,
            "/_devstack/archives/BulkheadArchive/events",
            None,
            None,
            &[],
        )
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .clone()
    }

    /// Creates a product as a merchandiser and waits until every service has seen it.
    pub async fn product(&self, sku: &str, name: &str, price_cents: i64) {
        let merchandiser = self.token("mia", &["merchandiser"]);
        let reply = self
            .send(
                Method::PUT,
                &format!("/products/{sku}"),
                Some(&merchandiser),
                Some(json!({"name": name, "priceCents": price_cents})),
                &[],
            )
            .await;
        assert!(reply.status.is_success(), "{reply:?}");
        self.drain().await;
    }

    /// Places an order and returns its id.
    pub async fn order(&self, customer: &str, lines: Value) -> String {
        let token = self.token(customer, &["customer"]);
        let body = self
            .post("/orders", &token, json!({ "lines": lines }))
            .await
            .expect(201);
        body["id"].as_str().unwrap().to_string()
    }
}
