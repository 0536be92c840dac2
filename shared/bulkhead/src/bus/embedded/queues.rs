//! Queues on the embedded database, as SQS keeps them: durable messages with receive
//! counts and visibility deadlines, so that redelivery after a crash falls out of those
//! deadlines, and redrive to a dead-letter queue after `maxReceiveCount` receives.

use crate::store::embedded::Database;
use crate::{Result, now_millis};
use rusqlite::params;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, queue TEXT NOT NULL,
    body TEXT NOT NULL, sent_at INTEGER NOT NULL, visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0, first_received_at INTEGER);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, visible_at, seq);
";

/// A received queue message.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub receive_count: i64,
    pub sent_at: i64,
    pub first_received_at: i64,
}

/// Where a queue sends messages received too often.
#[derive(Clone, Debug)]
pub struct Redrive {
    pub dead_letter_queue: String,
    pub max_receive_count: i64,
}

/// Visible and in-flight message counts of a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDepth {
    pub visible: i64,
    pub in_flight: i64,
    /// How long the oldest message has waited, where the backend can tell (SQS gives it
    /// only as a CloudWatch metric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_age_ms: Option<i64>,
}

impl Database {
    /// Sends messages to queues and appends events to archives, all in one transaction.
    pub fn send(&self, messages: &[(String, String)], archived: &[(String, String)]) -> Result<()> {
        let now = now_millis();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (queue, body) in messages {
            tx.prepare_cached(
                "INSERT INTO messages (id, queue, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            )?
            .execute(params![uuid::Uuid::new_v4().to_string(), queue, body, now])?;
        }
        for (archive, event) in archived {
            super::archive::append(&tx, archive, event, now)?;
        }
        tx.commit()?;
        drop(conn);
        for (queue, _) in messages {
            self.signal(&format!("queue/{queue}")).notify_one();
        }
        Ok(())
    }

    /// Receives up to `max` visible messages and hides them for `visibility_millis`.
    /// A message already received `max_receive_count` times moves to the dead-letter queue.
    pub fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility_millis: i64,
        redrive: Option<&Redrive>,
    ) -> Result<Vec<Message>> {
        let now = now_millis();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let candidates = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, id, body, receive_count, sent_at, first_received_at FROM messages
                 WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, seq LIMIT ?3",
            )?;
            stmt.query_map(params![queue, now, max as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Message {
                        id: r.get(1)?,
                        body: r.get(2)?,
                        receive_count: r.get(3)?,
                        sent_at: r.get(4)?,
                        first_received_at: r.get::<_, Option<i64>>(5)?.unwrap_or(now),
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut received = Vec::with_capacity(candidates.len());
        let mut dead_lettered = false;
        for (seq, mut message) in candidates {
            if let Some(redrive) = redrive.filter(|r| message.receive_count >= r.max_receive_count)
            {
                tx.execute(
                    "UPDATE messages SET queue = ?1, visible_at = ?2, receive_count = 0, first_received_at = NULL WHERE seq = ?3",
                    params![redrive.dead_letter_queue, now, seq],
                )?;
                dead_lettered = true;
                continue;
            }
            message.receive_count += 1;
            tx.execute(
                "UPDATE messages SET receive_count = ?1, visible_at = ?2, first_received_at = ?3 WHERE seq = ?4",
                params![message.receive_count, now + visibility_millis, message.first_received_at, seq],
            )?;
            received.push(message);
        }
        tx.commit()?;
        drop(conn);
        if let (true, Some(redrive)) = (dead_lettered, redrive) {
            self.signal(&format!("queue/{}", redrive.dead_letter_queue))
                .notify_one();
        }
        Ok(received)
    }

    /// Deletes messages that were processed.
    pub fn delete(&self, ids: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute("DELETE FROM messages WHERE id = ?1", params![id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Makes in-flight messages visible again after `delay_millis`.
    pub fn release(&self, ids: &[String], delay_millis: i64) -> Result<()> {
        let visible_at = now_millis() + delay_millis;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute(
                "UPDATE messages SET visible_at = ?1 WHERE id = ?2",
                params![visible_at, id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn queue_depth(&self, queue: &str) -> Result<QueueDepth> {
        let now = now_millis();
        Ok(self.conn().query_row(
            "SELECT COALESCE(SUM(visible_at <= ?2), 0), COALESCE(SUM(visible_at > ?2), 0), ?2 - MIN(sent_at) FROM messages WHERE queue = ?1",
            params![queue, now],
            |r| Ok(QueueDepth { visible: r.get(0)?, in_flight: r.get(1)?, oldest_age_ms: r.get(2)? }),
        )?)
    }

    /// The bodies of up to `limit` messages in a queue, oldest first, without receiving them.
    pub fn peek(&self, queue: &str, limit: usize) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT body FROM messages WHERE queue = ?1 ORDER BY seq LIMIT ?2")?;
        let bodies = stmt
            .query_map(params![queue, limit as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(bodies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_redeliver_after_the_visibility_timeout_and_redrive_to_the_dlq() {
        let db = Database::open_in_memory().unwrap();
        db.send(&[("q".into(), "m1".into())], &[]).unwrap();
        let redrive = Redrive {
            dead_letter_queue: "dlq".into(),
            max_receive_count: 2,
        };
        assert_eq!(db.receive("q", 10, 0, Some(&redrive)).unwrap().len(), 1);
        assert_eq!(
            db.receive("q", 10, 60_000, Some(&redrive)).unwrap()[0].receive_count,
            2
        );
        assert!(
            db.receive("q", 10, 0, Some(&redrive)).unwrap().is_empty(),
            "hidden while in flight"
        );
        db.release(&[db.peek_ids("q")[0].clone()], 0).unwrap();
        assert!(
            db.receive("q", 10, 0, Some(&redrive)).unwrap().is_empty(),
            "third receive redrives"
        );
        assert_eq!(db.peek("dlq", 10).unwrap(), ["m1"]);
    }

    impl Database {
        fn peek_ids(&self, queue: &str) -> Vec<String> {
            let conn = self.conn();
            let mut stmt = conn
                .prepare("SELECT id FROM messages WHERE queue = ?1")
                .unwrap();
            stmt.query_map(params![queue], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        }
    }
}
