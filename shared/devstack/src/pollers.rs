//! Event source mappings, as Lambda runs them: stream pollers with checkpoints, retries,
//! bisection and an on-failure destination; queue pollers with visibility timeouts and
//! partial batch responses. The same loops run on either backend.

use crate::Config;
use crate::faults::Faults;
use crate::infra::{
    ACCOUNT, ChangeFeed, FeedRecord, Infra, QueueSource, REGION, Received, sqs_event,
};
use crate::template::{FunctionSpec, QueueMapping, QueueSpec, StreamMapping};
use bulkhead::listener::Listener;
use bulkhead::trigger::Trigger;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const IDLE: Duration = Duration::from_millis(250);
const PAUSED: Duration = Duration::from_millis(50);

/// What a stream poller has done, for a status that must know whether it is caught up.
#[derive(Debug, Default)]
pub struct Progress {
    polls: AtomicU64,
    last_poll_empty: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Progress {
    /// Whether a poll that started after this call found nothing left. Waits for it.
    pub async fn caught_up(&self) -> bool {
        let start = self.polls.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.polls.load(Ordering::SeqCst) < start + 2 && Instant::now() < deadline {
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.polls.load(Ordering::SeqCst) >= start + 2
            && self.last_poll_empty.load(Ordering::SeqCst)
    }
}

/// Polls a table's change feed for a trigger, from its checkpoint.
pub fn spawn_stream(
    infra: Arc<dyn Infra>,
    mut feed: Box<dyn ChangeFeed>,
    function: &FunctionSpec,
    mapping: &StreamMapping,
    trigger: Trigger,
    faults: Arc<Faults>,
    config: &Config,
) -> (JoinHandle<()>, Arc<Progress>) {
    let function = function.clone();
    let mapping = mapping.clone();
    let first_retry = Duration::from_millis(config.stream_retry_ms);
    let progress = Arc::new(Progress::default());
    let shared = progress.clone();
    let task = tokio::spawn(async move {
        let mut window = mapping.batch_size;
        let mut failing: Option<(String, u32)> = None;
        let mut handled: HashSet<String> = HashSet::new();
        loop {
            if faults.is_down(&function.service) {
                tokio::time::sleep(PAUSED).await;
                continue;
            }
            let records = match feed.read(window * mapping.parallelization_factor).await {
                Ok(records) => records,
                Err(e) => {
                    tracing::error!(function = %function.name, error = %e, "stream read failed");
                    tokio::time::sleep(IDLE).await;
                    continue;
                }
            };
            progress
                .last_poll_empty
                .store(records.is_empty(), Ordering::SeqCst);
            progress.polls.fetch_add(1, Ordering::SeqCst);
            if records.is_empty() {
                window = mapping.batch_size;
                tokio::select! {
                    _ = feed.idle(IDLE) => {}
                    _ = progress.wake.notified() => {}
                }
                continue;
            }
            // Records a parallel batch handled while another failed are not handled again:
            // Lambda keeps each key's progress apart in the same way.
            let pending: Vec<FeedRecord> = records
                .iter()
                .filter(|r| !handled.contains(&r.seq))
                .cloned()
                .collect();
            let (outcome, done) = invoke_in_parallel(&trigger, &function, &mapping, &pending).await;
            handled.extend(done);
            let kill_rate = faults.plan().kill_rate;
            // A restart reads the same batch again: the draw includes the process, or one
            // unlucky batch would kill every process that reads it.
            let attempt = format!("{}@{}", records[0].seq, std::process::id());
            if faults.hits("kill", &attempt, kill_rate) {
                faults.kill_now("a stream batch, before its checkpoint");
            }
            let Some(failed) = outcome else {
                commit(feed.as_mut(), &records[records.len() - 1].seq).await;
                handled.clear();
                window = mapping.batch_size;
                failing = None;
                continue;
            };
            let position = records.iter().position(|r| r.seq == failed).unwrap_or(0);
            if position > 0 {
                commit(feed.as_mut(), &records[position - 1].seq).await;
                for record in &records[..position] {
                    handled.remove(&record.seq);
                }
            }
            let attempts = match &failing {
                Some((seq, n)) if *seq == failed => n + 1,
                _ => 1,
            };
            failing = Some((failed.clone(), attempts));
            if position == 0 && mapping.bisect_on_error {
                window = (records.len() / 2).max(1);
            }
            if attempts > mapping.max_retries {
                give_up(
                    infra.as_ref(),
                    &function,
                    &mapping,
                    &records[position],
                    attempts,
                )
                .await;
                commit(feed.as_mut(), &failed).await;
                handled.remove(&failed);
                failing = None;
                window = mapping.batch_size;
            } else {
                tokio::time::sleep(first_retry * 2u32.saturating_pow(attempts - 1).min(32)).await;
            }
        }
    });
    (task, shared)
}

/// Splits records by key into at most `factor` batches, as Lambda does with a
/// `ParallelizationFactor`: every record of one key lands in the same batch, in order.
fn split_by_key(records: &[FeedRecord], factor: usize) -> Vec<Vec<FeedRecord>> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let factor = factor.max(1);
    let mut batches = vec![vec![]; factor];
    for record in records {
        let key = record.record["dynamodb"]["Keys"].to_string();
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        batches[hash as usize % factor].push(record.clone());
    }
    batches.retain(|b| !b.is_empty());
    batches
}

/// Invokes the trigger once per key batch, all together. Answers the earliest sequence
/// number (in feed order) any of them failed at, where the shard resumes, and the records
/// handled: every record of a batch before its failure.
async fn invoke_in_parallel(
    trigger: &Trigger,
    function: &FunctionSpec,
    mapping: &StreamMapping,
    records: &[FeedRecord],
) -> (Option<String>, Vec<String>) {
    let batches = split_by_key(records, mapping.parallelization_factor);
    let failures = futures::future::join_all(
        batches
            .iter()
            .map(|batch| invoke_trigger(trigger, function, mapping, batch)),
    )
    .await;
    let mut handled = vec![];
    for (batch, failure) in batches.iter().zip(&failures) {
        handled.extend(
            batch
                .iter()
                .map(|r| r.seq.clone())
                .take_while(|seq| Some(seq) != failure.as_ref()),
        );
    }
    let earliest = failures
        .into_iter()
        .flatten()
        .min_by_key(|seq| records.iter().position(|r| &r.seq == seq));
    (earliest, handled)
}

async fn commit(feed: &mut dyn ChangeFeed, seq: &str) {
    if let Err(e) = feed.commit(seq).await {
        tracing::error!(error = %e, "checkpoint failed");
    }
}

/// Invokes the trigger; answers the sequence number it failed at, if any.
async fn invoke_trigger(
    trigger: &Trigger,
    function: &FunctionSpec,
    mapping: &StreamMapping,
    records: &[FeedRecord],
) -> Option<String> {
    let json = json!({ "Records": records.iter().map(|r| &r.record).collect::<Vec<_>>() });
    // As Lambda's runtime does: the trigger reads the JSON text, each record on its own.
    let payload = json.to_string();
    let handler = trigger.clone();
    let deadline = Instant::now() + function.timeout;
    let seqs: Vec<&str> = records.iter().map(|r| r.seq.as_str()).collect();
    let invocation = async move {
        handler
            .handle_payload(payload.as_bytes(), Some(deadline))
            .await
    };
    match tokio::spawn(invocation).await {
        Ok(Err(e)) => {
            tracing::error!(function = %function.name, error = %e, "the trigger could not read the stream event");
            Some(records[0].seq.clone())
        }
        Ok(Ok(response)) if mapping.report_item_failures => response
            .batch_item_failures
            .iter()
            .map(|f| {
                f.item_identifier
                    .as_deref()
                    .filter(|id| seqs.contains(id))
                    .unwrap_or(seqs[0])
            })
            .min_by_key(|seq| seqs.iter().position(|s| s == seq))
            .map(String::from),
        Ok(_) => None,
        Err(panic) => {
            tracing::error!(function = %function.name, error = %panic, "trigger crashed");
            Some(records[0].seq.clone())
        }
    }
}

/// Sends what Lambda sends to an on-failure destination once retries are exhausted.
async fn give_up(
    infra: &dyn Infra,
    function: &FunctionSpec,
    mapping: &StreamMapping,
    record: &FeedRecord,
    attempts: u32,
) {
    tracing::error!(function = %function.name, seq = %record.seq, attempts, "stream record failed every retry; sent to the on-failure destination");
    let Some(destination) = &mapping.on_failure else {
        return;
    };
    let arrival = chrono::DateTime::from_timestamp_millis(record.at_millis)
        .unwrap_or_default()
        .to_rfc3339();
    let body = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", function.name),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "" },
        "version": "1.0",
        "timestamp": bulkhead::command::timestamp(),
        "DDBStreamBatchInfo": {
            "shardId": "shardId-devstack",
            "startSequenceNumber": record.seq,
            "endSequenceNumber": record.seq,
            "approximateArrivalOfFirstRecord": arrival,
            "approximateArrivalOfLastRecord": arrival,
            "batchSize": 1,
            "streamArn": record.record["eventSourceARN"],
        }
    });
    if let Err(e) = infra.send(destination, body.to_string()).await {
        tracing::error!(error = %e, "on-failure destination refused the record");
    }
}

/// Polls a queue for a listener.
pub fn spawn_queue(
    source: Arc<dyn QueueSource>,
    function: &FunctionSpec,
    mapping: &QueueMapping,
    queue: QueueSpec,
    listener: Listener,
    faults: Arc<Faults>,
    config: &Config,
) -> JoinHandle<()> {
    let function = function.clone();
    let mapping = mapping.clone();
    let visibility = config
        .max_visibility_ms
        .map_or(queue.visibility_timeout_ms, |cap| {
            cap.min(queue.visibility_timeout_ms)
        });
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", queue.name);
    tokio::spawn(async move {
        let mut held: Vec<Received> = vec![];
        loop {
            if faults.is_down(&function.service) {
                tokio::time::sleep(PAUSED).await;
                continue;
            }
            let mut messages = match source.receive(mapping.batch_size, visibility).await {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::error!(function = %function.name, error = %e, "receive failed");
                    tokio::time::sleep(IDLE).await;
                    continue;
                }
            };
            if messages.is_empty() && held.is_empty() {
                source.idle(Duration::from_millis(100)).await;
                continue;
            }
            let plan = faults.plan();
            let mut later = vec![];
            if plan.reorder_rate > 0.0 {
                shuffle(&faults, &mut messages);
                (later, messages) = messages
                    .into_iter()
                    .partition(|m| faults.hits("reorder", &delivery(m), plan.reorder_rate));
            }
            messages.append(&mut held);
            held = later;
            if messages.is_empty() {
                continue;
            }
            let doomed = |m: &Received, on: &[String], kind: &str, rate: f64| {
                on.iter().any(|s| m.body.contains(s.as_str()))
                    || faults.hits(kind, &delivery(m), rate)
            };
            let (erring, handled): (Vec<Received>, Vec<Received>) =
                messages.iter().cloned().partition(|m| {
                    doomed(
                        m,
                        &plan.listener_error_on,
                        "listener-error",
                        plan.listener_error_rate,
                    )
                });
            let panic_at = handled.iter().position(|m| {
                doomed(
                    m,
                    &plan.listener_panic_on,
                    "listener-panic",
                    plan.listener_panic_rate,
                )
            });
            let applied = &handled[..panic_at.unwrap_or(handled.len())];
            for m in &erring {
                tracing::warn!(function = %function.name, message_id = %m.id, "devstack fault: listener error");
            }
            let event = match sqs_event(&queue_arn, applied) {
                Ok(event) => event,
                Err(e) => {
                    tracing::error!(error = %e, "could not build the SQS event");
                    continue;
                }
            };
            let handler = listener.clone();
            let panicking = panic_at.map(|i| handled[i].id.clone());
            let outcome = tokio::spawn(async move {
                let response = handler.handle(event).await;
                if let Some(id) = panicking {
                    panic!("devstack fault: listener panic on message {id}");
                }
                response
            })
            .await;
            let done: Vec<_> = match outcome {
                Ok(response) if mapping.report_item_failures => {
                    let failed: HashSet<&str> = response
                        .batch_item_failures
                        .iter()
                        .map(|f| f.item_identifier.as_str())
                        .collect();
                    if failed.iter().any(|f| !applied.iter().any(|m| m.id == *f)) {
                        vec![]
                    } else {
                        applied
                            .iter()
                            .filter(|m| !failed.contains(m.id.as_str()))
                            .cloned()
                            .collect()
                    }
                }
                Ok(_) if erring.is_empty() => applied.to_vec(),
                Ok(_) => vec![],
                Err(panic) => {
                    tracing::error!(function = %function.name, error = %panic, "listener crashed");
                    vec![]
                }
            };
            let done: Vec<_> = done
                .into_iter()
                .filter(|m| !faults.hits("duplicate", &delivery(m), plan.duplicate_rate))
                .collect();
            if faults.hits("kill", &delivery(&messages[0]), plan.kill_rate) {
                faults.kill_now("a queue batch, before its delete");
            }
            if let Err(e) = source.delete(&done).await {
                tracing::error!(error = %e, "delete failed");
            }
        }
    })
}

/// One delivery of a message: a fault drawn for it is drawn afresh on the next.
fn delivery(message: &Received) -> String {
    format!("{}#{}", message.id, message.receive_count)
}

/// Shuffles a batch, seeded by its first delivery.
fn shuffle(faults: &Faults, messages: &mut [Received]) {
    let Some(first) = messages.first().map(delivery) else {
        return;
    };
    for i in (1..messages.len()).rev() {
        let j = faults.draw("shuffle", &format!("{first}/{i}")) % (i as u64 + 1);
        messages.swap(i, j as usize);
    }
}

/// Deletes expired items the way DynamoDB's TTL does, through the change feed.
pub fn spawn_ttl_sweeper(
    db: Arc<bulkhead::embedded::Database>,
    spec: bulkhead::embedded::TableSpec,
    attribute: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match db.expire(&spec, &attribute, chrono::Utc::now().timestamp()) {
                Ok(0) => {}
                Ok(n) => tracing::info!(table = %spec.name, expired = n, "TTL deleted items"),
                Err(e) => tracing::error!(table = %spec.name, error = %e, "TTL sweep failed"),
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: usize, key: &str) -> FeedRecord {
        FeedRecord {
            seq: format!("{seq:08}"),
            at_millis: 0,
            record: json!({ "dynamodb": { "Keys": { "pk": { "S": key }, "sk": { "S": "#" } } } }),
        }
    }

    #[test]
    fn a_keys_records_stay_together_and_in_order_across_parallel_batches() {
        let records: Vec<FeedRecord> = (0..400)
            .map(|i| record(i, &format!("ORDER#{}", i % 37)))
            .collect();
        let batches = split_by_key(&records, 4);
        assert_eq!(batches.len(), 4, "37 keys spread over every batch");
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), records.len());
        for key in 0..37 {
            let key = format!("ORDER#{key}");
            let holding: Vec<&Vec<FeedRecord>> = batches
                .iter()
                .filter(|b| {
                    b.iter()
                        .any(|r| r.record["dynamodb"]["Keys"]["pk"]["S"] == *key)
                })
                .collect();
            assert_eq!(holding.len(), 1, "{key} is in one batch only");
            let seqs: Vec<&String> = holding[0]
                .iter()
                .filter(|r| r.record["dynamodb"]["Keys"]["pk"]["S"] == *key)
                .map(|r| &r.seq)
                .collect();
            assert!(seqs.is_sorted(), "{key} keeps its order");
        }
        assert_eq!(split_by_key(&records, 1).len(), 1);
    }
}
