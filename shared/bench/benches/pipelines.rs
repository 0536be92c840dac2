//! Throughput of the event pipelines, in process, single-threaded.
//!
//! `cargo bench -p bench` (criterion; reports elements per second).
//!
//! - `floor`: `serde_json` parsing of a stream event's bytes into a `Value`.
//! - `trigger/embedded`: stream event bytes in, events on the embedded bus (rules matched,
//!   messages written to SQLite) out, through the orders ACL.
//! - `trigger/eventbridge`: the same through the real EventBridge adapter (`PutEvents`
//!   signed by aws-sigv4, over HTTP) to a sink on 127.0.0.1 that accepts every one at once.
//! - `listener/<view>/embedded`: SQS batches of order events in, view writes into the
//!   embedded store out.
//! - `listener/<view>/dynamodb`: the same through the real DynamoDB adapter (AWS SDK, HTTP),
//!   built as the Lambda main builds it (`AwsHost::from_env`), to a DynamoDB-shaped sink on
//!   127.0.0.1: `GetItem` and `BatchGetItem` find nothing, writes succeed. Each batch of 10
//!   holds two versions of 5 orders, so a listener declared with `on_newest` applies 5;
//!   `.../distinct` runs the same messages ordered so that each batch holds 10 orders, and
//!   `.../later` only those of its batches that hold later versions (changes, not new orders).
//!
//! Every benchmark through an AWS adapter runs twice: with the sinks answering at once
//! (`0ms`, the CPU cost), and after AWS-like latencies (`aws`: `PutEvents` 20 ms, a
//! DynamoDB request 4 ms), which each sink waits per request, concurrently, as the network
//! would.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bulkhead::bus::Bus;
use bulkhead::bus::embedded::{EmbeddedBus, Rule};
use bulkhead::embedded::{Database, TableSpec};
use bulkhead::listener::Listener;
use bulkhead::mail::Mailer;
use bulkhead::mail::outbox::Outbox;
use bulkhead::store::Table;
use bulkhead::store::embedded::EmbeddedTable;
use bulkhead::trigger::Trigger;
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

const RECORDS: usize = 1_000;

/// How long the sinks wait before answering: the network and the service, as in AWS.
#[derive(Clone, Copy)]
struct Latency {
    name: &'static str,
    put_events_ms: u64,
    dynamodb_ms: u64,
}

const LATENCIES: [Latency; 2] = [
    Latency {
        name: "0ms",
        put_events_ms: 0,
        dynamodb_ms: 0,
    },
    Latency {
        name: "aws",
        put_events_ms: 20,
        dynamodb_ms: 4,
    },
];

/// The latency the sinks apply now, in milliseconds.
static PUT_EVENTS_MS: AtomicU64 = AtomicU64::new(0);
static DYNAMODB_MS: AtomicU64 = AtomicU64::new(0);

fn set_latency(latency: Latency) {
    PUT_EVENTS_MS.store(latency.put_events_ms, Ordering::Relaxed);
    DYNAMODB_MS.store(latency.dynamodb_ms, Ordering::Relaxed);
}

/// Waits as the network would, to within tens of microseconds. tokio's timer rounds a sleep
/// up to its next millisecond tick, and its thread wakes later still: a 4 ms sleep took 5–6
/// ms, which overstated every round trip; a thread's sleep does not.
async fn wait(ms: &AtomicU64) {
    let ms = ms.load(Ordering::Relaxed);
    if ms > 0 {
        let nap = std::time::Duration::from_millis(ms);
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(nap)).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn stream_bytes() -> Vec<u8> {
    let events = bench::stream_events(RECORDS, 7);
    assert_eq!(events.len(), 1);
    serde_json::to_vec(&events[0]).unwrap()
}

fn embedded_bus() -> Arc<dyn Bus> {
    let rule = Rule {
        name: "tracking".into(),
        pattern: json!({"source": ["bulkhead.orders"]}),
        target_queues: vec!["TrackingQueue".into()],
    };
    Arc::new(EmbeddedBus::new(Database::open_in_memory().unwrap(), &[rule], vec![]).unwrap())
}

/// An HTTP server on 127.0.0.1 that answers every `PutEvents` with success for each entry.
fn eventbridge_sink(rt: &tokio::runtime::Runtime) -> String {
    async fn put_events(body: axum::body::Bytes) -> axum::response::Response {
        wait(&PUT_EVENTS_MS).await;
        // The entries are only counted, by the key each begins with (a detail's quotes are
        // escaped in the body, so no detail holds it), and the answer is written as text:
        // the sink's CPU is AWS's, not the trigger's, and it shares this machine's cores.
        let count = memchr::memmem::find_iter(&body, br#"{"EventBusName":"#).count();
        let entries: Vec<String> = (0..count)
            .map(|i| format!(r#"{{"EventId":"e-{i}"}}"#))
            .collect();
        let answer = format!(
            r#"{{"FailedEntryCount":0,"Entries":[{}]}}"#,
            entries.join(",")
        );
        axum::response::IntoResponse::into_response((
            [("content-type", "application/x-amz-json-1.1")],
            answer,
        ))
    }
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(put_events);
    std::thread::spawn(move || {
        runtime().block_on(async { axum::serve(listener, app).await.unwrap() })
    });
    url
}

fn eventbridge_bus(rt: &tokio::runtime::Runtime, url: &str) -> Arc<dyn Bus> {
    let credentials =
        aws_sdk_eventbridge::config::Credentials::new("bench", "bench", None, None, "bench");
    let config = rt.block_on(
        bulkhead::sdk::defaults()
            .endpoint_url(url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load(),
    );
    Arc::new(bulkhead::bus::aws::EventBridgeBus::new(&config, "bench-bus").unwrap())
}

fn triggers(c: &mut Criterion) {
    let rt = runtime();
    let bytes = stream_bytes();
    let mut group = c.benchmark_group("stream");
    group.sample_size(20);
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("floor", |b| {
        b.iter(|| serde_json::from_slice::<Value>(&bytes).unwrap())
    });
    // As the orders main builds it (`orders::trigger`).
    let embedded = Trigger::new(embedded_bus(), orders::acl::PUBLISHES, orders::acl::acl)
        .reading(orders::acl::IMAGES);
    group.bench_function("trigger/embedded", |b| {
        b.iter(|| {
            let response = rt.block_on(embedded.handle_payload(&bytes, None)).unwrap();
            assert!(response.batch_item_failures.is_empty());
        })
    });
    let sink = eventbridge_sink(&rt);
    // As the Lambda main does (`orders::trigger`, `bulkhead::lambda::run_trigger`).
    let in_flight = std::env::var("PUT_EVENTS_IN_FLIGHT")
        .map_or(bulkhead::trigger::DEFAULT_IN_FLIGHT, |n| n.parse().unwrap());
    let aws = Trigger::new(
        eventbridge_bus(&rt, &sink),
        orders::acl::PUBLISHES,
        orders::acl::acl,
    )
    .reading(orders::acl::IMAGES)
    .with_in_flight(in_flight);
    for latency in LATENCIES {
        set_latency(latency);
        group.bench_function(format!("trigger/eventbridge/{}", latency.name), |b| {
            b.iter(|| {
                let response = rt.block_on(aws.handle_payload(&bytes, None)).unwrap();
                assert!(response.batch_item_failures.is_empty());
            })
        });
    }
    group.finish();
}

/// The DynamoDB-shaped sink's socket, bound before any thread starts (see `main`).
static DYNAMODB_SINK: OnceLock<std::net::TcpListener> = OnceLock::new();
/// Requests the DynamoDB-shaped sink has answered.
static DYNAMODB_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// An HTTP server that answers the DynamoDB JSON 1.0 protocol by `X-Amz-Target`: `GetItem`
/// and `BatchGetItem` find no item, `PutItem`, `UpdateItem`, `DeleteItem` and
/// `TransactWriteItems` succeed, `Query` finds nothing.
fn dynamodb_sink() {
    async fn answer(
        headers: axum::http::HeaderMap,
        _body: axum::body::Bytes,
    ) -> axum::response::Response {
        DYNAMODB_REQUESTS.fetch_add(1, Ordering::Relaxed);
        wait(&DYNAMODB_MS).await;
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let (status, body) = match target.strip_prefix("DynamoDB_20120810.") {
            Some("GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems") => {
                (200, "{}")
            }
            Some("Query") => (200, r#"{"Items":[],"Count":0,"ScannedCount":0}"#),
            Some("BatchGetItem") => (200, r#"{"Responses":{},"UnprocessedKeys":{}}"#),
            _ => (
                400,
                r#"{"__type":"com.amazon.coral.service#UnknownOperationException"}"#,
            ),
        };
        axum::response::IntoResponse::into_response((
            axum::http::StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/x-amz-json-1.0")],
            body,
        ))
    }
    let listener = DYNAMODB_SINK.get().unwrap().try_clone().unwrap();
    listener.set_nonblocking(true).unwrap();
    let app = axum::Router::new().fallback(answer);
    std::thread::spawn(move || {
        runtime().block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap()
        })
    });
}

/// As the Lambda main reads it (`bulkhead::lambda::run_listener`): if set, it overrides
/// what the listener declares.
fn with_messages_in_flight(listener: Listener) -> Listener {
    match std::env::var("MESSAGES_IN_FLIGHT") {
        Ok(n) => listener.with_in_flight(n.parse().unwrap()),
        Err(_) => listener,
    }
}

type Lambda = fn(&dyn bulkhead::host::Host) -> bulkhead::Result<Listener>;

/// A host with one table, whatever its name: a listener built on it writes there.
struct OneTable(Arc<dyn Table>);

impl bulkhead::host::Host for OneTable {
    fn env(&self, _: &str) -> Option<String> {
        Some("view".into())
    }
    fn table(&self, _: &str) -> bulkhead::Result<Arc<dyn Table>> {
        Ok(self.0.clone())
    }
    fn bus(&self, name: &str) -> bulkhead::Result<Arc<dyn Bus>> {
        Err(bulkhead::Error::Config(format!("no bus {name} here")))
    }
    fn mailer(&self) -> bulkhead::Result<Arc<dyn Mailer>> {
        Ok(outbox())
    }
}

/// The Lambda host, with the devstack's outbox for mail: the sinks do not speak SES.
struct AwsWithOutbox(bulkhead::host::AwsHost);

impl bulkhead::host::Host for AwsWithOutbox {
    fn env(&self, name: &str) -> Option<String> {
        bulkhead::host::Host::env(&self.0, name)
    }
    fn table(&self, name: &str) -> bulkhead::Result<Arc<dyn Table>> {
        bulkhead::host::Host::table(&self.0, name)
    }
    fn bus(&self, name: &str) -> bulkhead::Result<Arc<dyn Bus>> {
        bulkhead::host::Host::bus(&self.0, name)
    }
    fn mailer(&self) -> bulkhead::Result<Arc<dyn Mailer>> {
        Ok(outbox())
    }
}

fn outbox() -> Arc<dyn Mailer> {
    Arc::new(Outbox::new(Database::open_in_memory().unwrap()))
}

fn order_version(message: &SqsMessage) -> u64 {
    let body: Value = serde_json::from_str(message.body.as_deref().unwrap()).unwrap();
    body["detail"]["aggregate"]["version"].as_u64().unwrap()
}

/// The same messages in batches of the same size, every version 1 first: no batch holds two
/// versions of one order.
fn distinct_orders(batches: &[SqsEvent]) -> Vec<SqsEvent> {
    let mut messages: Vec<SqsMessage> = batches.iter().flat_map(|b| b.records.clone()).collect();
    messages.sort_by_key(order_version);
    messages
        .chunks(batches[0].records.len())
        .map(|records| {
            let mut batch = batches[0].clone();
            batch.records = records.to_vec();
            batch
        })
        .collect()
}

fn listeners(c: &mut Criterion) {
    let rt = runtime();
    let batches: Vec<SqsEvent> = bench::sqs_events(RECORDS, 7)
        .into_iter()
        .map(|e| serde_json::from_value(e).unwrap())
        .collect();
    let views: [(&str, Lambda); 4] = [
        ("tracking", tracking::listener),
        ("fulfillment", fulfillment::listener),
        ("sales", sales::listener),
        ("notifications", notifications::listener),
    ];
    let distinct = distinct_orders(&batches);
    // Of those, the batches of later versions only: each message a change to an order the
    // view already holds, the most requests a batch of 10 can take.
    let later: Vec<SqsEvent> = distinct
        .iter()
        .filter(|batch| batch.records.iter().all(|m| order_version(m) > 1))
        .cloned()
        .collect();
    let mut group = c.benchmark_group("listener");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS as u64));
    dynamodb_sink();
    // The Lambda host, as each listener's main builds it; its environment is set in `main`.
    let host = AwsWithOutbox(bulkhead::host::AwsHost::from_env().unwrap());
    for (name, lambda) in views {
        group.bench_function(format!("{name}/embedded"), |b| {
            b.iter_batched(
                || {
                    let spec = TableSpec {
                        name: name.into(),
                        indexes: vec!["gsi1".into()],
                        stream: false,
                    };
                    let table = EmbeddedTable::new(Database::open_in_memory().unwrap(), spec);
                    lambda(&OneTable(Arc::new(table))).unwrap()
                },
                |listener| {
                    for batch in &batches {
                        let response = rt.block_on(listener.handle(batch.clone()));
                        assert!(response.batch_item_failures.is_empty());
                    }
                },
                BatchSize::PerIteration,
            )
        });
        let listener = with_messages_in_flight(lambda(&host).unwrap());
        for (workload, batches) in [("", &batches), ("/distinct", &distinct), ("/later", &later)] {
            for latency in LATENCIES {
                set_latency(latency);
                let run = || {
                    for batch in batches {
                        let response = rt.block_on(listener.handle(batch.clone()));
                        assert!(response.batch_item_failures.is_empty());
                    }
                };
                if latency.dynamodb_ms == 0 {
                    let before = DYNAMODB_REQUESTS.load(Ordering::Relaxed);
                    run();
                    let requests = DYNAMODB_REQUESTS.load(Ordering::Relaxed) - before;
                    eprintln!(
                        "listener/{name}/dynamodb{workload}: {requests} DynamoDB requests for {RECORDS} events"
                    );
                }
                let id = format!("{name}/dynamodb/{}{workload}", latency.name);
                group.bench_function(id, |b| b.iter(run));
            }
        }
    }
    // The same 1,000 messages as one batch (an SQS mapping with a batching window).
    let one_batch: SqsEvent = {
        let mut all = batches[0].clone();
        all.records = batches.iter().flat_map(|b| b.records.clone()).collect();
        all
    };
    let listener = with_messages_in_flight(fulfillment::listener(&host).unwrap());
    for latency in LATENCIES {
        set_latency(latency);
        group.bench_function(
            format!("fulfillment/dynamodb/{}/one-batch", latency.name),
            |b| {
                b.iter(|| {
                    let response = rt.block_on(listener.handle(one_batch.clone()));
                    assert!(response.batch_item_failures.is_empty());
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, triggers, listeners);

fn main() {
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", sink.local_addr().unwrap());
    DYNAMODB_SINK.set(sink).unwrap();
    // The listeners' Lambda host reads its endpoint, region and credentials from the
    // environment, as in Lambda. SAFETY: no other thread is running yet.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &url);
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::set_var("TABLE_NAME", "bench");
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
