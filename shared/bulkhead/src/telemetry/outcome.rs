//! What became of one message a listener applied: each conditional view write tells
//! whether it changed the view or found it newer already, so that a message whose every
//! write was stale counts as ignored (old or duplicate), not applied.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    /// Writes that changed the view, and writes that found it newer.
    static WRITES: Cell<(u32, u32)>;
}

/// A view write changed the view.
pub fn applied() {
    let _ = WRITES.try_with(|w| w.set((w.get().0 + 1, w.get().1)));
}

/// A view write found the view newer already, and changed nothing.
pub fn stale() {
    let _ = WRITES.try_with(|w| w.set((w.get().0, w.get().1 + 1)));
}

/// What became of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Every view write it made found the view newer: an old or duplicate event.
    Ignored,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Ignored => "ignored",
            Outcome::Failed => "failed",
        }
    }
}

/// Runs one message's work and tells what became of it.
pub async fn observe<T, E>(work: impl Future<Output = Result<T, E>>) -> (Result<T, E>, Outcome) {
    WRITES
        .scope(Cell::new((0, 0)), async {
            let result = work.await;
            let (applied, stale) = WRITES.with(Cell::get);
            let outcome = match &result {
                Err(_) => Outcome::Failed,
                Ok(_) if stale > 0 && applied == 0 => Outcome::Ignored,
                Ok(_) => Outcome::Applied,
            };
            (result, outcome)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_whose_every_write_was_stale_is_ignored() {
        let ok = |f: fn()| async move {
            f();
            Ok::<_, ()>(())
        };
        assert_eq!(observe(ok(applied)).await.1, Outcome::Applied);
        assert_eq!(observe(ok(stale)).await.1, Outcome::Ignored);
        assert_eq!(observe(ok(|| {})).await.1, Outcome::Applied);
        let both = async {
            stale();
            applied();
            Ok::<_, ()>(())
        };
        assert_eq!(observe(both).await.1, Outcome::Applied);
        assert_eq!(observe(async { Err::<(), _>(()) }).await.1, Outcome::Failed);
        // Outside a message, marking is harmless.
        stale();
    }
}
