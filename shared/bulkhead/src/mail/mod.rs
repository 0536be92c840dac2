//! The mail port: a side effect that must happen once per message. In Lambda the adapter
//! is Amazon SES (`ses`, feature `ses`); in the devstack it is a local outbox that can be
//! read (`outbox`, feature `embedded`).
//!
//! The port only sends. Sending once is the caller's part: claim the message in its own
//! table before sending (see `notifications`), so that a duplicated or replayed event never
//! sends again.

#[cfg(feature = "embedded")]
pub mod outbox;
#[cfg(feature = "ses")]
pub mod ses;

use crate::Result;
use async_trait::async_trait;

/// One message to one recipient.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mail {
    /// The message's own id, the same for every attempt at it.
    pub id: String,
    /// Who it is for: a customer id, which the adapter turns into an address.
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// The mail port.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends the message. An `Err` means it may not have been sent.
    async fn send(&self, mail: &Mail) -> Result<()>;
}
