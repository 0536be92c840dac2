//! The event bus port: EventBridge's `PutEvents`, entry by entry.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "embedded")]
pub mod embedded;

use crate::Result;
use async_trait::async_trait;

/// At most this many entries go in one `PutEvents` request.
pub const MAX_ENTRIES: usize = 10;
/// At most this many bytes go in one `PutEvents` request, counted as EventBridge counts them.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// One event for the bus.
#[derive(Clone, Debug, PartialEq)]
pub struct BusEntry {
    pub source: String,
    pub detail_type: String,
    /// JSON text.
    pub detail: String,
    /// RFC 3339.
    pub time: String,
}

impl BusEntry {
    /// The entry's size as EventBridge computes it for the request limit.
    pub fn size(&self) -> usize {
        // The time counts as 14 bytes; resources are never set.
        self.source.len() + self.detail_type.len() + self.detail.len() + 14
    }

    /// [`BusEntry::size`] of an entry held with the index of what it came from.
    pub fn size_of_owned(owned: &(usize, BusEntry)) -> usize {
        owned.1.size()
    }
}

/// Why the bus rejected one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryFailure {
    pub code: String,
    pub message: String,
}

/// The bus port.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Puts up to [`MAX_ENTRIES`] entries. The result has one outcome per entry, in order.
    /// An `Err` means that the whole request failed and nothing was put.
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<Result<(), EntryFailure>>>;
}

/// Groups entries, as they come, into requests that respect the entry count and size
/// limits; `size` gives an item's entry size. An entry too large for any request goes
/// alone, so that the bus rejects it and it fails alone.
pub fn requests<T>(
    entries: impl IntoIterator<Item = T>,
    size: impl Fn(&T) -> usize,
) -> impl Iterator<Item = Vec<T>> {
    let mut entries = entries.into_iter().peekable();
    std::iter::from_fn(move || {
        let mut request = Vec::with_capacity(MAX_ENTRIES);
        let mut bytes = 0;
        while let Some(next) = entries.peek() {
            let next_size = size(next);
            let full = request.len() == MAX_ENTRIES
                || (!request.is_empty() && bytes + next_size > MAX_REQUEST_BYTES);
            if full {
                break;
            }
            bytes += next_size;
            request.extend(entries.next());
        }
        (!request.is_empty()).then_some(request)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(detail_len: usize) -> BusEntry {
        BusEntry {
            source: "s".into(),
            detail_type: "t".into(),
            detail: "x".repeat(detail_len),
            time: String::new(),
        }
    }

    proptest! {
        #[test]
        fn chunks_cover_every_entry_once_within_the_limits(sizes in prop::collection::vec(0usize..120_000, 0..40)) {
            let entries: Vec<_> = sizes.iter().map(|&n| entry(n)).collect();
            let chunks: Vec<Vec<(usize, &BusEntry)>> =
                requests(entries.iter().enumerate(), |(_, e)| e.size()).collect();
            let covered: Vec<usize> = chunks.iter().flatten().map(|(i, _)| *i).collect();
            prop_assert_eq!(covered, (0..entries.len()).collect::<Vec<_>>());
            for request in chunks {
                prop_assert!(request.len() <= MAX_ENTRIES);
                let bytes: usize = request.iter().map(|(_, e)| e.size()).sum();
                prop_assert!(request.len() == 1 || bytes <= MAX_REQUEST_BYTES);
            }
        }
    }
}
