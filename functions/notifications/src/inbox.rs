//! The inbox: `CUSTOMER#<id>` / `MESSAGE#<occurredAt>#<order id>#<kind>`, newest last in
//! the partition. The key comes from the event alone, so a duplicate lands on its own row,
//! which keeps its version: a repeated or reordered event never makes a second message.
//!
//! Each message is also mailed, once: a claim `SENT#<customer>` / the message's sort key is
//! written with `attribute_not_exists` before the mail goes out. A duplicated or replayed
//! event finds the claim and sends nothing; a send that fails drops the claim and fails the
//! event, so that the queue retries it. A crash between the claim and the send loses that one
//! mail rather than sending it twice (at most once; SES takes no idempotency key).

use bulkhead::event::EventSet;
use bulkhead::listener::Delivered;
use bulkhead::listener::snapshot::{Row, keep_newest};
use bulkhead::mail::{Mail, Mailer};
use bulkhead::store::{Condition, Key, Table, Write};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

pub const CUSTOMER_PREFIX: &str = "CUSTOMER#";
/// The partition prefix of the claims of mails sent.
pub const SENT_PREFIX: &str = "SENT#";

/// The status changes a customer is told about.
pub const ORDER_EVENTS: EventSet = EventSet {
    source: "bulkhead.orders",
    types: &["OrderShipped", "OrderDelivered", "OrderCancelled"],
};

/// What the listener applies events with: its table and the mail port.
#[derive(Clone)]
pub struct Inbox {
    pub table: Arc<dyn Table>,
    pub mailer: Arc<dyn Mailer>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageLine {
    pub sku: String,
    pub quantity: i64,
}

/// One message in a customer's inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub order_id: String,
    /// `shipped`, `delivered` or `cancelled`.
    #[schema(pattern = "^(shipped|delivered|cancelled)$")]
    pub kind: String,
    pub lines: Vec<MessageLine>,
    pub total_cents: i64,
    /// When the order changed.
    #[schema(format = DateTime)]
    pub at: String,
    pub version: u64,
}

/// What this service reads of the orders service's public order state.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    id: String,
    customer_id: String,
    lines: Vec<MessageLine>,
    total: Price,
}

/// What this service reads of an amount of money: orders publish one currency.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Price {
    amount_cents: i64,
}

pub fn partition(customer: &str) -> String {
    format!("{CUSTOMER_PREFIX}{customer}")
}

/// The mail for a message: its id is the message's key, the same for every delivery.
pub fn mail(customer: &str, id: &str, message: &Message) -> Mail {
    let lines: Vec<String> = message
        .lines
        .iter()
        .map(|l| format!("{} x {}", l.quantity, l.sku))
        .collect();
    Mail {
        id: id.into(),
        to: customer.into(),
        subject: format!("Your order {} was {}", message.order_id, message.kind),
        text: format!(
            "Order {} ({} cents): {}",
            message.order_id,
            message.total_cents,
            lines.join(", ")
        ),
    }
}

/// Writes the message for this status change, once, and mails it, once.
pub async fn apply(inbox: Inbox, event: Delivered, order: OrderState) -> bulkhead::Result<()> {
    let kind = event.detail_type.trim_start_matches("Order").to_lowercase();
    let (at, version) = (event.detail.occurred_at, event.detail.aggregate.version);
    let key = Key::new(
        partition(&order.customer_id),
        format!("MESSAGE#{at}#{}#{kind}", order.id),
    );
    let message = Message {
        order_id: order.id,
        kind,
        lines: order.lines,
        total_cents: order.total.amount_cents,
        at,
        version,
    };
    let mail = mail(&order.customer_id, &key.sk, &message);
    keep_newest(
        inbox.table.as_ref(),
        &Row::new(key.clone(), message),
        version,
    )
    .await?;
    send_once(&inbox, &order.customer_id, &key.sk, &mail).await
}

/// Claims the mail, then sends it; a mail already claimed is not sent again.
async fn send_once(inbox: &Inbox, customer: &str, id: &str, mail: &Mail) -> bulkhead::Result<()> {
    let claim = Key::new(format!("{SENT_PREFIX}{customer}"), id);
    // The claim is its key alone: nothing in it depends on when it was made.
    match inbox
        .table
        .write(vec![Write::put(claim.to_item(), Condition::NotExists)])
        .await
    {
        Ok(()) => {}
        Err(bulkhead::Error::ConditionFailed { .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Err(e) = inbox.mailer.send(mail).await {
        let release = Write::Delete {
            key: claim,
            condition: Condition::Always,
        };
        inbox.table.write(vec![release]).await?;
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead::embedded::{Database, TableSpec};
    use bulkhead::event::{AggregateRef, PublicEvent};
    use bulkhead::mail::outbox::Outbox;
    use bulkhead::store::embedded::EmbeddedTable;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The outbox, but its first send fails, as SES can.
    struct FailsOnce {
        outbox: Outbox,
        failed: AtomicBool,
    }

    #[async_trait::async_trait]
    impl Mailer for FailsOnce {
        async fn send(&self, mail: &Mail) -> bulkhead::Result<()> {
            if !self.failed.swap(true, Ordering::SeqCst) {
                return Err(bulkhead::Error::Mail("throttled".into()));
            }
            self.outbox.send(mail).await
        }
    }

    fn shipped(version: u64, replay: Option<&str>) -> (Delivered, OrderState) {
        let aggregate = AggregateRef {
            kind: "order".into(),
            id: "o-1".into(),
            version,
        };
        let event = PublicEvent::new("OrderShipped", aggregate, "2026-12-01T10:00:00.000Z".into());
        let delivered = Delivered {
            source: "bulkhead.orders".into(),
            detail_type: "OrderShipped".into(),
            detail: event,
            replay_name: replay.map(String::from),
        };
        let state = OrderState {
            id: "o-1".into(),
            customer_id: "alice".into(),
            lines: vec![MessageLine {
                sku: "A1".into(),
                quantity: 2,
            }],
            total: Price { amount_cents: 2500 },
        };
        (delivered, state)
    }

    #[tokio::test]
    async fn a_message_is_mailed_once_whatever_comes_again_and_a_failed_send_is_retried() {
        let db = Database::open_in_memory().unwrap();
        let spec = TableSpec {
            name: "N".into(),
            ..TableSpec::default()
        };
        let inbox = Inbox {
            table: Arc::new(EmbeddedTable::new(db.clone(), spec)),
            mailer: Arc::new(FailsOnce {
                outbox: Outbox::new(db.clone()),
                failed: AtomicBool::new(false),
            }),
        };
        let (event, state) = shipped(2, None);
        assert!(
            apply(inbox.clone(), event, state).await.is_err(),
            "the send failed"
        );
        assert!(db.outbox().unwrap().is_empty());
        for replay in [None, Some("r-1"), None, Some("r-2")] {
            let (event, state) = shipped(2, replay);
            apply(inbox.clone(), event, state).await.unwrap();
        }
        let sent = db.outbox().unwrap();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].to, "alice");
        assert_eq!(sent[0].subject, "Your order o-1 was shipped");
    }
}
