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

/// Splits entries into requests that respect the entry count and size limits. An entry too
/// large for any request goes alone, so that the bus rejects it and it fails alone.
pub fn chunk(entries: &[BusEntry]) -> Vec<std::ops::Range<usize>> {
    let mut chunks = vec![];
    let mut start = 0;
    let mut bytes = 0;
    for (i, entry) in entries.iter().enumerate() {
        let size = entry.size();
        let full = i - start == MAX_ENTRIES || (i > start && bytes + size > MAX_REQUEST_BYTES);
        if full {
            chunks.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < entries.len() {
        chunks.push(start..entries.len());
    }
    chunks
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
            let chunks = chunk(&entries);
            let covered: Vec<usize> = chunks.iter().flat_map(|r| r.clone()).collect();
            prop_assert_eq!(covered, (0..entries.len()).collect::<Vec<_>>());
            for range in chunks {
                prop_assert!(range.len() <= MAX_ENTRIES);
                let bytes: usize = entries[range.clone()].iter().map(BusEntry::size).sum();
                prop_assert!(range.len() == 1 || bytes <= MAX_REQUEST_BYTES);
            }
        }
    }
}
