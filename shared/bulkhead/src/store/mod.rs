//! The table port: a DynamoDB-shaped key-value table with conditional, atomic writes.
//!
//! Every table keys its items by the string attributes `pk` and `sk`. A secondary index
//! named `X` keys its items by `Xpk` and `Xsk`. Items carry a numeric `version`
//! attribute, which conditions refer to.

#[cfg(feature = "aws")]
pub mod aws;
pub mod coalesced;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod flat;
pub mod item_json;

use crate::{Error, Result};
use async_trait::async_trait;
use base64::Engine;
use serde::{Serialize, de::DeserializeOwned};

pub use serde_dynamo::{AttributeValue, Item};

/// The attribute that conditions compare.
pub const VERSION: &str = "version";

/// An item's primary key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of an item, if it has both key attributes as strings.
    pub fn of(item: &Item) -> Result<Key> {
        Ok(Key::new(string_attr(item, "pk")?, string_attr(item, "sk")?))
    }

    pub fn to_item(&self) -> Item {
        let mut item = Item::default();
        item.insert("pk".into(), AttributeValue::S(self.pk.clone()));
        item.insert("sk".into(), AttributeValue::S(self.sk.clone()));
        item
    }
}

/// What must be true of the stored item for a write to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// `attribute_not_exists(pk)`: a create.
    NotExists,
    /// `version = :v`: an update of the version that was read.
    VersionIs(u64),
    /// `attribute_not_exists(pk) OR version < :v`: a view upsert that ignores stale events.
    OlderThan(u64),
}

impl Condition {
    /// Whether the condition holds for the stored item's version (`None`: no item).
    pub fn holds(self, stored: Option<Option<u64>>) -> bool {
        match (self, stored) {
            (Condition::Always, _) => true,
            (Condition::NotExists, stored) => stored.is_none(),
            (Condition::VersionIs(v), Some(Some(stored))) => stored == v,
            (Condition::VersionIs(_), _) => false,
            (Condition::OlderThan(_), None) => true,
            (Condition::OlderThan(v), Some(Some(stored))) => stored < v,
            (Condition::OlderThan(_), Some(None)) => false,
        }
    }
}

/// One write of an atomic group.
#[derive(Clone, Debug)]
pub enum Write {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        key: Key,
        condition: Condition,
    },
    /// DynamoDB's `UpdateItem` with `SET a = if_not_exists(a, :v)` for each attribute of
    /// `set_if_absent`, then `ADD n :delta` for each counter: creates the item if needed.
    Add {
        key: Key,
        set_if_absent: Item,
        add: Vec<(String, i64)>,
    },
}

impl Write {
    pub fn put(item: Item, condition: Condition) -> Self {
        Write::Put { item, condition }
    }

    pub fn key(&self) -> Result<Key> {
        match self {
            Write::Put { item, .. } => Key::of(item),
            Write::Delete { key, .. } | Write::Add { key, .. } => Ok(key.clone()),
        }
    }

    pub fn condition(&self) -> Condition {
        match self {
            Write::Put { condition, .. } | Write::Delete { condition, .. } => *condition,
            Write::Add { .. } => Condition::Always,
        }
    }

    /// The item this write leaves, given the stored one.
    pub fn apply(self, old: Option<&Item>) -> Result<Option<Item>> {
        match self {
            Write::Put { item, .. } => Ok(Some(item)),
            Write::Delete { .. } => Ok(None),
            Write::Add {
                key,
                set_if_absent,
                add,
            } => {
                let mut item = old.cloned().unwrap_or_else(|| key.to_item());
                for (name, value) in set_if_absent.iter() {
                    item.entry(name.clone()).or_insert_with(|| value.clone());
                }
                for (name, delta) in add {
                    let current = match item.get(&name) {
                        None => 0,
                        Some(AttributeValue::N(n)) => n.parse::<i64>().map_err(Error::malformed)?,
                        Some(_) => return Err(Error::Malformed(format!("{name} is not a number"))),
                    };
                    let sum = current
                        .checked_add(delta)
                        .ok_or_else(|| Error::Malformed(format!("{name} overflows")))?;
                    item.insert(name, AttributeValue::N(sum.to_string()));
                }
                Ok(Some(item))
            }
        }
    }
}

/// A query over one partition of the table or of a secondary index.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// `None` for the table itself, or a secondary index name.
    pub index: Option<String>,
    pub partition: String,
    pub sort_prefix: Option<String>,
    /// Sort keys in descending order.
    pub descending: bool,
    pub limit: usize,
    /// A cursor from a previous [`Page`] of the same query.
    pub cursor: Option<String>,
}

impl Query {
    /// The names of the partition and sort key attributes this query reads.
    pub fn key_attributes(&self) -> (String, String) {
        match &self.index {
            None => ("pk".into(), "sk".into()),
            Some(index) => (format!("{index}pk"), format!("{index}sk")),
        }
    }

    /// The start key of this query, decoded from its cursor and checked to lie in its partition.
    pub fn start_key(&self) -> Result<Option<Item>> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| Error::InvalidCursor)?;
        let item: Item = serde_json::from_slice(&bytes).map_err(|_| Error::InvalidCursor)?;
        let (partition, sort) = self.key_attributes();
        let in_partition =
            string_attr(&item, &partition).ok().as_deref() == Some(self.partition.as_str());
        let complete = [sort.as_str(), "pk", "sk"]
            .iter()
            .all(|a| string_attr(&item, a).is_ok());
        if !in_partition || !complete {
            return Err(Error::InvalidCursor);
        }
        Ok(Some(item))
    }
}

/// Encodes the last key of a page as an opaque cursor.
pub fn encode_cursor(last_key: &Item) -> String {
    let json = serde_json::to_vec(last_key).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// A page of query results.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when more items may follow.
    pub cursor: Option<String>,
}

/// The table port.
#[async_trait]
pub trait Table: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>>;
    /// The items stored under `keys`, in the same order; a key may repeat. One round trip
    /// where the store allows it (DynamoDB's `BatchGetItem`).
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        let mut items = Vec::with_capacity(keys.len());
        for key in keys {
            items.push(self.get(key).await?);
        }
        Ok(items)
    }
    async fn query(&self, query: &Query) -> Result<Page>;
    /// Applies all writes or none. A failed condition is [`Error::ConditionFailed`] with its index.
    async fn write(&self, writes: Vec<Write>) -> Result<()>;
}

/// Converts a typed value to an item.
pub fn to_item<T: Serialize>(value: &T) -> Result<Item> {
    Ok(serde_dynamo::to_item(value)?)
}

/// Converts an item to a typed value.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    Ok(serde_dynamo::from_item(item)?)
}

/// A string attribute of an item.
pub fn string_attr(item: &Item, name: &str) -> Result<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(Error::Malformed(format!(
            "attribute {name} is not a string"
        ))),
    }
}

/// A string attribute that labels an item, such as a counter's day. `None`, and logged, when
/// the item lacks it: the caller leaves the item out rather than fail a whole answer.
pub fn label(item: &Item, name: &str) -> Option<String> {
    let label = string_attr(item, name);
    if let Err(e) = &label {
        tracing::error!(error = %e, key = ?Key::of(item).ok(), "an item without its label; left out");
    }
    label.ok()
}

/// The `version` attribute of an item, if it has a numeric one.
pub fn version_of(item: &Item) -> Option<u64> {
    match item.get(VERSION) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// Reads a typed item by key.
pub async fn get_as<T: DeserializeOwned>(table: &dyn Table, key: &Key) -> Result<Option<T>> {
    table.get(key).await?.map(from_item).transpose()
}

/// The outcome of a version-guarded view upsert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    Applied,
    /// The view already holds this version or a newer one: a duplicate or late event.
    Stale,
}

/// Writes `item` unless the stored item is at `version` or newer.
pub async fn upsert_if_newer(table: &dyn Table, item: Item, version: u64) -> Result<Upsert> {
    match table
        .write(vec![Write::put(item, Condition::OlderThan(version))])
        .await
    {
        Ok(()) => {
            crate::telemetry::outcome::applied();
            Ok(Upsert::Applied)
        }
        Err(Error::ConditionFailed { .. }) => {
            crate::telemetry::outcome::stale();
            Ok(Upsert::Stale)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_dynamodb_semantics() {
        assert!(Condition::NotExists.holds(None));
        assert!(!Condition::NotExists.holds(Some(Some(1))));
        assert!(Condition::VersionIs(3).holds(Some(Some(3))));
        assert!(!Condition::VersionIs(3).holds(Some(Some(4))));
        assert!(!Condition::VersionIs(3).holds(None));
        assert!(Condition::OlderThan(3).holds(None));
        assert!(Condition::OlderThan(3).holds(Some(Some(2))));
        assert!(!Condition::OlderThan(3).holds(Some(Some(3))));
    }

    #[test]
    fn a_cursor_from_another_partition_is_refused() {
        let mut key = Key::new("ORDER#1", "#").to_item();
        key.insert("gsi1pk".into(), AttributeValue::S("CUSTOMER#bob".into()));
        key.insert("gsi1sk".into(), AttributeValue::S("2026".into()));
        let query = |partition: &str| Query {
            index: Some("gsi1".into()),
            partition: partition.into(),
            cursor: Some(encode_cursor(&key)),
            ..Query::default()
        };
        assert!(query("CUSTOMER#bob").start_key().unwrap().is_some());
        assert!(matches!(
            query("CUSTOMER#alice").start_key(),
            Err(Error::InvalidCursor)
        ));
        let garbage = Query {
            cursor: Some("%%%".into()),
            ..Query::default()
        };
        assert!(matches!(garbage.start_key(), Err(Error::InvalidCursor)));
    }
}
