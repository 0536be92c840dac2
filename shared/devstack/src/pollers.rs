//! Event source mappings, as Lambda runs them: stream pollers with checkpoints, retries,
//! bisection and an on-failure destination; queue pollers with visibility timeouts,
//! partial batch responses and redrive to the dead-letter queue.

use crate::Config;
use crate::faults::Faults;
use crate::template::{FunctionSpec, QueueMapping, QueueSpec, StreamMapping};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use bulkhead::embedded::{ChangeRow, Database, Message, TableSpec};
use bulkhead::listener::Listener;
use bulkhead::trigger::Trigger;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";
const IDLE: Duration = Duration::from_millis(250);
const PAUSED: Duration = Duration::from_millis(50);

/// The stream ARN the devstack gives a table.
pub fn stream_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/devstack")
}

fn sequence_number(seq: i64) -> String {
    format!("{seq:021}")
}

/// The stream event Lambda would pass for these change records.
pub fn stream_event(table: &str, rows: &[ChangeRow]) -> Result<StreamEvent, serde_json::Error> {
    let records: Vec<_> = rows
        .iter()
        .map(|row| {
            let mut change = json!({
                "ApproximateCreationDateTime": row.at_millis / 1000,
                "Keys": row.keys,
                "SequenceNumber": sequence_number(row.seq),
                "SizeBytes": 1,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            });
            if let Some(new) = &row.new {
                change["NewImage"] = json!(new);
            }
            if let Some(old) = &row.old {
                change["OldImage"] = json!(old);
            }
            json!({
                "eventID": row.seq.to_string(),
                "eventName": row.kind,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": change,
                "eventSourceARN": stream_arn(table),
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

/// The SQS event Lambda would pass for these messages.
pub fn sqs_event(queue: &str, messages: &[Message]) -> Result<SqsEvent, serde_json::Error> {
    let records: Vec<_> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.id,
                "receiptHandle": format!("{}#{}", m.id, m.receive_count),
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": m.sent_at.to_string(),
                    "SenderId": ACCOUNT,
                    "ApproximateFirstReceiveTimestamp": m.first_received_at.to_string(),
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"),
                "awsRegion": REGION,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

async fn wait(signal: &tokio::sync::Notify, at_most: Duration) {
    let _ = tokio::time::timeout(at_most, signal.notified()).await;
}

/// Polls a table's change feed for a trigger, from a durable checkpoint.
pub fn spawn_stream(
    db: Arc<Database>,
    function: &FunctionSpec,
    mapping: &StreamMapping,
    trigger: Trigger,
    faults: Arc<Faults>,
    config: &Config,
) -> JoinHandle<()> {
    let consumer = format!("{}/{}", function.name, mapping.table);
    let function_name = function.name.clone();
    let service = function.service.clone();
    let mapping = mapping.clone();
    let first_retry = Duration::from_millis(config.stream_retry_ms);
    let timeout = function.timeout;
    tokio::spawn(async move {
        let signal = db.signal(&format!("stream/{}", mapping.table));
        let mut window = mapping.batch_size;
        let mut failing: Option<(i64, u32)> = None;
        loop {
            if faults.is_down(&service) {
                tokio::time::sleep(PAUSED).await;
                continue;
            }
            let step = async {
                let checkpoint = db.checkpoint(&consumer)?;
                let rows = db.changes_after(&mapping.table, checkpoint, window)?;
                if rows.is_empty() {
                    return Ok::<_, bulkhead::Error>(None);
                }
                let event = stream_event(&mapping.table, &rows)?;
                let handler = trigger.clone();
                let deadline = std::time::Instant::now() + timeout;
                let outcome =
                    tokio::spawn(async move { handler.handle(event, Some(deadline)).await }).await;
                let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
                let failed = match outcome {
                    Ok(response) if mapping.report_item_failures => response
                        .batch_item_failures
                        .iter()
                        .map(|f| {
                            f.item_identifier
                                .as_deref()
                                .and_then(|id| id.parse::<i64>().ok())
                                .filter(|s| seqs.contains(s))
                                .unwrap_or(seqs[0])
                        })
                        .min(),
                    Ok(_) => None,
                    Err(panic) => {
                        tracing::error!(function = %function_name, error = %panic, "trigger crashed");
                        Some(seqs[0])
                    }
                };
                Ok(Some((rows, failed, outcome_was_error(failed, &seqs))))
            };
            match step.await {
                Err(e) => {
                    tracing::error!(function = %function_name, error = %e, "stream poll failed");
                    tokio::time::sleep(IDLE).await;
                }
                Ok(None) => {
                    window = mapping.batch_size;
                    wait(&signal, IDLE).await;
                }
                Ok(Some((rows, None, _))) => {
                    let last = rows.last().map_or(0, |r| r.seq);
                    if let Err(e) = db.set_checkpoint(&consumer, last) {
                        tracing::error!(error = %e, "checkpoint failed");
                    }
                    window = mapping.batch_size;
                    failing = None;
                }
                Ok(Some((rows, Some(seq), whole_batch))) => {
                    let _ = db.set_checkpoint(&consumer, seq - 1);
                    let attempts = match failing {
                        Some((s, n)) if s == seq => n + 1,
                        _ => 1,
                    };
                    failing = Some((seq, attempts));
                    if whole_batch && mapping.bisect_on_error {
                        window = (rows.len() / 2).max(1);
                    }
                    if attempts > mapping.max_retries {
                        let record = rows.iter().find(|r| r.seq == seq).cloned();
                        give_up(
                            &db,
                            &function_name,
                            &mapping,
                            seq,
                            record.as_ref(),
                            attempts,
                        );
                        let _ = db.set_checkpoint(&consumer, seq);
                        failing = None;
                        window = mapping.batch_size;
                    } else {
                        tokio::time::sleep(first_retry * 2u32.saturating_pow(attempts - 1).min(32))
                            .await;
                    }
                }
            }
        }
    })
}

fn outcome_was_error(failed: Option<i64>, seqs: &[i64]) -> bool {
    failed == seqs.first().copied()
}

/// Sends what Lambda sends to an on-failure destination once retries are exhausted, and
/// moves past the record.
fn give_up(
    db: &Database,
    function: &str,
    mapping: &StreamMapping,
    seq: i64,
    record: Option<&ChangeRow>,
    attempts: u32,
) {
    tracing::error!(
        function,
        seq,
        attempts,
        "stream record failed every retry; sent to the on-failure destination"
    );
    let Some(destination) = &mapping.on_failure else {
        return;
    };
    let at = record.map_or(0, |r| r.at_millis);
    let arrival = chrono::DateTime::from_timestamp_millis(at)
        .unwrap_or_default()
        .to_rfc3339();
    let body = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "" },
        "version": "1.0",
        "timestamp": bulkhead::command::timestamp(),
        "DDBStreamBatchInfo": {
            "shardId": "shardId-devstack",
            "startSequenceNumber": sequence_number(seq),
            "endSequenceNumber": sequence_number(seq),
            "approximateArrivalOfFirstRecord": arrival,
            "approximateArrivalOfLastRecord": arrival,
            "batchSize": 1,
            "streamArn": stream_arn(&mapping.table),
        }
    });
    if let Err(e) = db.send(&[(destination.clone(), body.to_string())], &[]) {
        tracing::error!(error = %e, "on-failure destination refused the record");
    }
}

/// Polls a queue for a listener.
pub fn spawn_queue(
    db: Arc<Database>,
    function: &FunctionSpec,
    mapping: &QueueMapping,
    queue: QueueSpec,
    listener: Listener,
    faults: Arc<Faults>,
    config: &Config,
) -> JoinHandle<()> {
    let function_name = function.name.clone();
    let service = function.service.clone();
    let mapping = mapping.clone();
    let visibility = config
        .max_visibility_ms
        .map_or(queue.visibility_timeout_ms, |cap| {
            cap.min(queue.visibility_timeout_ms)
        });
    tokio::spawn(async move {
        let signal = db.signal(&format!("queue/{}", queue.name));
        loop {
            if faults.is_down(&service) {
                tokio::time::sleep(PAUSED).await;
                continue;
            }
            let messages = match db.receive(
                &queue.name,
                mapping.batch_size,
                visibility,
                queue.redrive.as_ref(),
            ) {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::error!(function = %function_name, error = %e, "receive failed");
                    tokio::time::sleep(IDLE).await;
                    continue;
                }
            };
            if messages.is_empty() {
                wait(&signal, Duration::from_millis(100)).await;
                continue;
            }
            let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
            let event = match sqs_event(&queue.name, &messages) {
                Ok(event) => event,
                Err(e) => {
                    tracing::error!(error = %e, "could not build the SQS event");
                    continue;
                }
            };
            let handler = listener.clone();
            let done: Vec<String> = match tokio::spawn(async move { handler.handle(event).await })
                .await
            {
                Ok(response) if mapping.report_item_failures => {
                    let failed: HashSet<&str> = response
                        .batch_item_failures
                        .iter()
                        .map(|f| f.item_identifier.as_str())
                        .collect();
                    if failed.iter().any(|f| !ids.iter().any(|id| id == f)) {
                        vec![]
                    } else {
                        ids.iter()
                            .filter(|id| !failed.contains(id.as_str()))
                            .cloned()
                            .collect()
                    }
                }
                Ok(_) => ids.clone(),
                Err(panic) => {
                    tracing::error!(function = %function_name, error = %panic, "listener crashed");
                    vec![]
                }
            };
            if let Err(e) = db.delete(&done) {
                tracing::error!(error = %e, "delete failed");
            }
        }
    })
}

/// Deletes expired items the way DynamoDB's TTL does, through the change feed.
pub fn spawn_ttl_sweeper(db: Arc<Database>, spec: TableSpec, attribute: String) -> JoinHandle<()> {
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
