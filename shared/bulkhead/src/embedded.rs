//! The embedded backend's types, where callers outside the core name them. Each lives
//! beside the port it serves; [`crate::store::embedded`] describes the layout.

pub use crate::bus::embedded::{Message, QueueDepth, Redrive};
pub use crate::store::embedded::{Database, TableSpec};
pub use crate::trigger::embedded::ChangeRow;
