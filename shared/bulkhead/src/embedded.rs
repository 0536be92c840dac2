//! The embedded backend's types, where callers outside the core name them. Each lives
//! beside the port it serves; [`crate::store::embedded`] describes the layout.

pub use crate::bus::embedded::archive::MAX_PAGE;
pub use crate::bus::embedded::{ArchivePage, ArchiveQuery, Archived, Message, QueueDepth, Redrive};
pub use crate::store::embedded::{Database, TableSpec};
pub use crate::trigger::embedded::ChangeRow;
