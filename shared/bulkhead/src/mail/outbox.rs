//! The devstack's mail adapter: an outbox table in the embedded database that records every
//! message sent, in order, for people and tests to read. It keeps every send, duplicates
//! included, so that a test can count them.

use super::{Mail, Mailer};
use crate::store::embedded::Database;
use crate::{Result, now_millis};
use async_trait::async_trait;
use rusqlite::params;
use std::sync::Arc;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, recipient TEXT NOT NULL,
    subject TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL);
";

/// The outbox: sending appends a row.
pub struct Outbox {
    db: Arc<Database>,
}

impl Outbox {
    pub fn new(db: Arc<Database>) -> Self {
        Outbox { db }
    }
}

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: &Mail) -> Result<()> {
        self.db
            .conn()
            .prepare_cached(
                "INSERT INTO outbox (id, recipient, subject, body, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                mail.id,
                mail.to,
                mail.subject,
                mail.text,
                now_millis()
            ])?;
        Ok(())
    }
}

impl Database {
    /// Every message the outbox sent, oldest first.
    pub fn outbox(&self) -> Result<Vec<Mail>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT id, recipient, subject, body FROM outbox ORDER BY seq")?;
        let sent = stmt
            .query_map([], |r| {
                Ok(Mail {
                    id: r.get(0)?,
                    to: r.get(1)?,
                    subject: r.get(2)?,
                    text: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_keeps_every_send_in_order() {
        let db = Database::open_in_memory().unwrap();
        let outbox = Outbox::new(db.clone());
        let mail = |id: &str| Mail {
            id: id.into(),
            to: "alice".into(),
            subject: "s".into(),
            text: "t".into(),
        };
        for id in ["a", "b", "a"] {
            outbox.send(&mail(id)).await.unwrap();
        }
        assert_eq!(db.outbox().unwrap(), [mail("a"), mail("b"), mail("a")]);
    }
}
