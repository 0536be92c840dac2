//! Snapshot views: each row keeps the newest version of one thing. An older or repeated
//! event changes nothing, so the view is exact under duplicates and any delivery order.
//!
//! Every view row has one shape: `pk`, `sk`, optionally `gsi1pk`/`gsi1sk` for the table's
//! one secondary index, and the row's public fields beside them, `version` among them. The
//! API answers with those public fields, the [`Row::record`].

use crate::store::{
    AttributeValue, Key, Page, Query, Table, Upsert, VERSION, from_item, get_as, to_item,
    upsert_if_newer,
};
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A view row: its keys and its public record, stored side by side in one item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row<T> {
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    #[serde(flatten)]
    pub record: T,
}

/// Read in one pass, without `#[serde(flatten)]`'s buffer (`store::flat`).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Row<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Default)]
        struct Keys {
            pk: Option<String>,
            sk: Option<String>,
            gsi1pk: Option<String>,
            gsi1sk: Option<String>,
        }
        impl<'de> crate::store::flat::Own<'de> for Keys {
            fn take<A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                match key {
                    "pk" => self.pk = Some(map.next_value()?),
                    "sk" => self.sk = Some(map.next_value()?),
                    "gsi1pk" => self.gsi1pk = map.next_value()?,
                    "gsi1sk" => self.gsi1sk = map.next_value()?,
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
        let (keys, record): (Keys, T) = crate::store::flat::deserialize(deserializer)?;
        let missing = <D::Error as serde::de::Error>::missing_field;
        Ok(Row {
            pk: keys.pk.ok_or_else(|| missing("pk"))?,
            sk: keys.sk.ok_or_else(|| missing("sk"))?,
            gsi1pk: keys.gsi1pk,
            gsi1sk: keys.gsi1sk,
            record,
        })
    }
}

impl<T> Row<T> {
    pub fn new(key: Key, record: T) -> Self {
        Row {
            pk: key.pk,
            sk: key.sk,
            gsi1pk: None,
            gsi1sk: None,
            record,
        }
    }

    /// Also lists the row in the secondary index `gsi1` under `partition`, ordered by `sort`.
    pub fn indexed(mut self, partition: String, sort: String) -> Self {
        self.gsi1pk = Some(partition);
        self.gsi1sk = Some(sort);
        self
    }
}

/// Writes the row as of `version`, unless the view already holds that version or a newer one.
pub async fn keep_newest<T: Serialize>(
    table: &dyn Table,
    row: &Row<T>,
    version: u64,
) -> Result<Upsert> {
    let mut item = to_item(row)?;
    item.insert(VERSION.into(), AttributeValue::N(version.to_string()));
    upsert_if_newer(table, item, version).await
}

/// The record stored under `key`, if any.
pub async fn read<T: DeserializeOwned>(table: &dyn Table, key: &Key) -> Result<Option<T>> {
    Ok(get_as::<Row<T>>(table, key).await?.map(|row| row.record))
}

/// The records stored under `keys`, in the same order, in one round trip where the store
/// allows it.
pub async fn read_many<T: DeserializeOwned>(
    table: &dyn Table,
    keys: &[Key],
) -> Result<Vec<Option<T>>> {
    table
        .get_many(keys)
        .await?
        .into_iter()
        .map(|item| {
            Ok(item
                .map(from_item::<Row<T>>)
                .transpose()?
                .map(|row| row.record))
        })
        .collect()
}

/// One page of records. A row that no longer decodes is logged and left out, so that one bad
/// row never makes a whole list unreadable.
pub async fn list<T: DeserializeOwned>(
    table: &dyn Table,
    query: &Query,
) -> Result<(Vec<T>, Option<String>)> {
    let Page { items, cursor } = table.query(query).await?;
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        let key = Key::of(&item).ok();
        match from_item::<Row<T>>(item) {
            Ok(row) => records.push(row.record),
            Err(Error::Malformed(e)) => {
                tracing::error!(?key, error = %e, "a view row that does not decode; left out")
            }
            Err(e) => return Err(e),
        }
    }
    Ok((records, cursor))
}
