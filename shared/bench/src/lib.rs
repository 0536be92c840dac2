//! A deterministic workload: the same seed gives the same bytes, on every machine.
//!
//! - Stream events from the orders table: 40% INSERT, 50% MODIFY, 10% REMOVE, items of about
//!   1 KB, chunked into batches that fit Lambda's 6 MB payload.
//! - SQS batches of order events as the bus routes them, 10 messages a batch.
#![forbid(unsafe_code)]

use serde_json::{Value, json};

/// Lambda's synchronous payload limit, less room for the envelope.
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

/// A small, fast, seedable generator (xorshift64*), so that the workload needs no crate's
/// idea of randomness to stay stable.
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Self {
        Seeded(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn s(v: impl Into<String>) -> Value {
    json!({ "S": v.into() })
}

fn n(v: impl std::fmt::Display) -> Value {
    json!({ "N": v.to_string() })
}

/// An orders-table item of about 1 KB in DynamoDB JSON: an order with eight lines.
pub fn order_item(order: u64, version: u64, status: &str) -> Value {
    let lines: Vec<Value> = (0..8)
        .map(|l| {
            json!({ "M": { "sku": s(format!("SKU-{:05}", (order * 7 + l) % 5000)), "quantity": n(1 + (order + l) % 4), "unitPriceCents": n(100 + l * 25) } })
        })
        .collect();
    let total: u64 = (0..8).map(|l| (1 + (order + l) % 4) * (100 + l * 25)).sum();
    json!({
        "pk": s(format!("ORDER#o-{order:08}")), "sk": s("#"), "version": n(version),
        "updatedAt": s("2026-11-22T10:00:00.000Z"), "correlationId": s(format!("corr-{order:08}-{version}")),
        "causationId": s(format!("req-{order:08}-{version}")), "id": s(format!("o-{order:08}")),
        "customerId": s(format!("customer-{:04}", order % 1000)), "status": s(status), "lines": { "L": lines },
        "totalCents": n(total), "placedAt": s("2026-11-22T09:59:00.000Z"),
    })
}

/// `count` stream records from the orders table, in Lambda's event record shape.
pub fn stream_records(count: usize, seed: u64) -> Vec<Value> {
    let mut rng = Seeded::new(seed);
    (0..count as u64)
        .map(|i| {
            let order = rng.below(count as u64 / 4 + 1);
            let roll = rng.below(10);
            let (name, old, new) = match roll {
                0..=3 => ("INSERT", None, Some(order_item(order, 1, "PLACED"))),
                4..=8 => {
                    let status = if roll == 8 { "SHIPPED" } else { "PLACED" };
                    (
                        "MODIFY",
                        Some(order_item(order, 1, "PLACED")),
                        Some(order_item(order + u64::from(roll != 8), 2, status)),
                    )
                }
                _ => ("REMOVE", Some(order_item(order, 3, "DELIVERED")), None),
            };
            let image = new.as_ref().or(old.as_ref()).unwrap();
            let mut change = json!({
                "ApproximateCreationDateTime": 1_795_255_200 + i,
                "Keys": { "pk": image["pk"], "sk": image["sk"] },
                "SequenceNumber": format!("{:021}", 1_000_000 + i),
                "SizeBytes": 1024,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            });
            if let Some(new) = new {
                change["NewImage"] = new;
            }
            if let Some(old) = old {
                change["OldImage"] = old;
            }
            json!({
                "eventID": format!("{i}"), "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1", "dynamodb": change,
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/OrdersTable/stream/2026-11-22T00:00:00.000",
            })
        })
        .collect()
}

/// Stream events of `count` records, each batch within [`MAX_BATCH_BYTES`].
pub fn stream_events(count: usize, seed: u64) -> Vec<Value> {
    let mut events = vec![];
    let mut batch = vec![];
    let mut bytes = 0;
    for record in stream_records(count, seed) {
        // Each record adds its bytes and a comma; the envelope adds `{"Records":[]}`.
        let size = record.to_string().len() + 1;
        if bytes + size + 16 > MAX_BATCH_BYTES && !batch.is_empty() {
            events.push(json!({ "Records": std::mem::take(&mut batch) }));
            bytes = 0;
        }
        bytes += size;
        batch.push(record);
    }
    if !batch.is_empty() {
        events.push(json!({ "Records": batch }));
    }
    events
}

/// An order event (schemaVersion 2) as EventBridge routes it to a queue.
pub fn routed_order_event(order: u64, version: u64, status: &str) -> Value {
    let lines: Vec<Value> = (0..8)
        .map(|l| json!({ "sku": format!("SKU-{:05}", (order * 7 + l) % 5000), "quantity": 1 + (order + l) % 4,
                          "unitPrice": { "amountCents": 100 + l * 25, "currency": "USD" } }))
        .collect();
    let total: u64 = (0..8).map(|l| (1 + (order + l) % 4) * (100 + l * 25)).sum();
    let event_type = match (version, status) {
        (1, _) => "OrderPlaced",
        (_, "CANCELLED") => "OrderCancelled",
        (_, "SHIPPED") => "OrderShipped",
        _ => "OrderLineAdded",
    };
    json!({
        "version": "0", "id": format!("00000000-0000-0000-0000-{order:012}"), "detail-type": event_type,
        "source": "bulkhead.orders", "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
        "resources": [],
        "detail": {
            "id": format!("order:o-{order:08}:{version}"), "type": event_type, "schemaVersion": 2,
            "aggregate": { "type": "order", "id": format!("o-{order:08}"), "version": version },
            "occurredAt": "2026-11-22T10:00:00.000Z", "correlationId": "corr", "causationId": "req", "change": {},
            "state": { "id": format!("o-{order:08}"), "customerId": format!("customer-{:04}", order % 1000), "status": status,
                       "lines": lines, "total": { "amountCents": total, "currency": "USD" }, "placedAt": "2026-11-22T09:59:00.000Z" }
        }
    })
}

/// SQS events carrying `count` order events, 10 messages a batch: each order is placed, then
/// changed, shipped or cancelled.
pub fn sqs_events(count: usize, seed: u64) -> Vec<Value> {
    let mut rng = Seeded::new(seed);
    let messages: Vec<Value> = (0..count as u64)
        .map(|i| {
            let order = i / 2;
            let (version, status) = if i % 2 == 0 {
                (1, "PLACED")
            } else {
                match rng.below(3) {
                    0 => (2, "CANCELLED"),
                    1 => (2, "SHIPPED"),
                    _ => (2, "PLACED"),
                }
            };
            json!({
                "messageId": format!("00000000-0000-0000-0000-{i:012}"), "receiptHandle": format!("AQEB{i}"),
                "body": routed_order_event(order, version, status).to_string(),
                "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": "1795255200000", "SenderId": "AIDAEXAMPLE",
                                "ApproximateFirstReceiveTimestamp": "1795255200001" },
                "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:TrackingQueue",
            })
        })
        .collect();
    messages
        .chunks(10)
        .map(|chunk| json!({ "Records": chunk }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_deterministic_and_in_lambdas_shape() {
        assert_eq!(stream_events(100, 7), stream_events(100, 7));
        let records = stream_records(1000, 7);
        let count = |name: &str| records.iter().filter(|r| r["eventName"] == name).count();
        let (inserts, modifies, removes) = (count("INSERT"), count("MODIFY"), count("REMOVE"));
        assert!(
            (350..450).contains(&inserts)
                && (450..550).contains(&modifies)
                && (60..140).contains(&removes)
        );
        let size = order_item(1, 1, "PLACED").to_string().len();
        assert!((900..1400).contains(&size), "{size} bytes");
        for event in stream_events(10_000, 7) {
            assert!(event.to_string().len() <= MAX_BATCH_BYTES);
            let _: aws_lambda_events::event::dynamodb::Event =
                serde_json::from_value(event).unwrap();
        }
        for event in sqs_events(100, 7) {
            let _: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event).unwrap();
        }
    }
}
