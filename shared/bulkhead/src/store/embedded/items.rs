//! Tables on the embedded database: items by key, their secondary index entries, queries,
//! conditional writes (each with its change record, in the same transaction) and TTL expiry.

use super::database::{Database, from_json, to_json};
use crate::store::{Item, Key, Page, Query, Write, encode_cursor, string_attr, version_of};
use crate::trigger::embedded as changes;
use crate::{Error, Result};
use rusqlite::{OptionalExtension, params};

/// `items` is a rowid table: its key index holds only the keys, while the item text (often
/// over a kilobyte) sits in the row. As a `WITHOUT ROWID` table, every key comparison of a
/// lookup had to assemble cells that spilled onto overflow pages.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    tbl TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL, item TEXT NOT NULL,
    PRIMARY KEY (tbl, pk, sk));
CREATE TABLE IF NOT EXISTS index_entries (
    tbl TEXT NOT NULL, idx TEXT NOT NULL, ipk TEXT NOT NULL, isk TEXT NOT NULL,
    pk TEXT NOT NULL, sk TEXT NOT NULL,
    PRIMARY KEY (tbl, idx, ipk, isk, pk, sk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS index_entries_by_item ON index_entries (tbl, pk, sk);
";

/// Reads one item by key.
const SELECT_ITEM: &str = "SELECT item FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3";

/// How a table is laid out: its secondary indexes and whether it has a change feed.
#[derive(Clone, Debug, Default)]
pub struct TableSpec {
    pub name: String,
    pub indexes: Vec<String>,
    pub stream: bool,
}

impl Database {
    pub fn get(&self, table: &str, key: &Key) -> Result<Option<Item>> {
        let text: Option<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(SELECT_ITEM)?;
            stmt.query_row(params![table, key.pk, key.sk], |row| row.get(0))
                .optional()?
        };
        text.as_deref().map(from_json).transpose()
    }

    pub fn query(&self, table: &str, query: &Query) -> Result<Page> {
        let start = query.start_key()?;
        let order = if query.descending { "DESC" } else { "ASC" };
        let after = if query.descending { "<" } else { ">" };
        let limit = query.limit.clamp(1, 1000);
        let prefix = query.sort_prefix.clone().unwrap_or_default();
        let conn = self.conn();
        let rows: Vec<String> = match &query.index {
            None => {
                let start_sk = start.as_ref().map(|s| string_attr(s, "sk")).transpose()?;
                let sql = format!(
                    "SELECT item FROM items WHERE tbl = ?1 AND pk = ?2 AND substr(sk, 1, length(?3)) = ?3
                     AND (?4 IS NULL OR sk {after} ?4) ORDER BY sk {order} LIMIT ?5"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                stmt.query_map(
                    params![table, query.partition, prefix, start_sk, limit as i64 + 1],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<_>>()?
            }
            Some(index) => {
                let (_, sort_attr) = query.key_attributes();
                let start = start
                    .as_ref()
                    .map(|s| {
                        Ok::<_, Error>((
                            string_attr(s, &sort_attr)?,
                            string_attr(s, "pk")?,
                            string_attr(s, "sk")?,
                        ))
                    })
                    .transpose()?;
                let (isk, pk, sk) = start
                    .map(|(a, b, c)| (Some(a), Some(b), Some(c)))
                    .unwrap_or_default();
                let sql = format!(
                    "SELECT i.item FROM index_entries e JOIN items i ON i.tbl = e.tbl AND i.pk = e.pk AND i.sk = e.sk
                     WHERE e.tbl = ?1 AND e.idx = ?2 AND e.ipk = ?3 AND substr(e.isk, 1, length(?4)) = ?4
                     AND (?5 IS NULL OR (e.isk, e.pk, e.sk) {after} (?5, ?6, ?7))
                     ORDER BY e.isk {order}, e.pk {order}, e.sk {order} LIMIT ?8"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                stmt.query_map(
                    params![
                        table,
                        index,
                        query.partition,
                        prefix,
                        isk,
                        pk,
                        sk,
                        limit as i64 + 1
                    ],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<_>>()?
            }
        };
        drop(conn);
        let mut items = rows
            .iter()
            .map(|t| from_json(t))
            .collect::<Result<Vec<_>>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        let cursor = match (more, items.last()) {
            (true, Some(last)) => Some(encode_cursor(&last_key(last, query)?)),
            _ => None,
        };
        Ok(Page { items, cursor })
    }

    /// Applies the writes atomically, appending their change records when the table streams.
    pub fn write(&self, spec: &TableSpec, writes: Vec<Write>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut changed = false;
        for (index, write) in writes.into_iter().enumerate() {
            let key = write.key()?;
            let old: Option<Item> = tx
                .prepare_cached(SELECT_ITEM)?
                .query_row(params![spec.name, key.pk, key.sk], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
                .as_deref()
                .map(from_json)
                .transpose()?;
            if !write.condition().holds(old.as_ref().map(version_of)) {
                return Err(Error::ConditionFailed { index });
            }
            let new = write.apply(old.as_ref())?;
            if old == new {
                continue;
            }
            tx.prepare_cached("DELETE FROM index_entries WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")?
                .execute(params![spec.name, key.pk, key.sk])?;
            match &new {
                Some(item) => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO items (tbl, pk, sk, item) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        spec.name,
                        key.pk,
                        key.sk,
                        to_json(item)?
                    ])?;
                    for index in &spec.indexes {
                        let ipk = string_attr(item, &format!("{index}pk"));
                        let isk = string_attr(item, &format!("{index}sk"));
                        if let (Ok(ipk), Ok(isk)) = (ipk, isk) {
                            tx.prepare_cached(
                                "INSERT INTO index_entries (tbl, idx, ipk, isk, pk, sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            )?
                            .execute(params![spec.name, index, ipk, isk, key.pk, key.sk])?;
                        }
                    }
                }
                None => {
                    tx.prepare_cached("DELETE FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")?
                        .execute(params![spec.name, key.pk, key.sk])?;
                }
            }
            if spec.stream {
                changes::append(&tx, &spec.name, &key, old.as_ref(), new.as_ref())?;
                changed = true;
            }
        }
        tx.commit()?;
        drop(conn);
        if changed {
            self.signal(&format!("stream/{}", spec.name)).notify_one();
        }
        Ok(())
    }

    /// Deletes items whose time-to-live attribute (epoch seconds) has passed, as DynamoDB's
    /// TTL does, through [`Database::write`] so that the deletions reach the change feed.
    pub fn expire(&self, spec: &TableSpec, ttl_attribute: &str, now_seconds: i64) -> Result<usize> {
        let rows: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT item FROM items WHERE tbl = ?1 AND CAST(json_extract(item, '$.' || ?2 || '.N') AS INTEGER) < ?3",
            )?;
            stmt.query_map(params![spec.name, ttl_attribute, now_seconds], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let keys = rows
            .iter()
            .map(|t| Key::of(&from_json(t)?))
            .collect::<Result<Vec<_>>>()?;
        for key in &keys {
            self.write(
                spec,
                vec![Write::Delete {
                    key: key.clone(),
                    condition: crate::store::Condition::Always,
                }],
            )?;
        }
        Ok(keys.len())
    }
}

impl Database {
    /// Every item of a table, in key order: the devstack compares generations of a view
    /// with it.
    pub fn items_of(&self, table: &str) -> Result<Vec<Item>> {
        let rows: Vec<String> = {
            let conn = self.conn();
            let mut stmt =
                conn.prepare_cached("SELECT item FROM items WHERE tbl = ?1 ORDER BY pk, sk")?;
            stmt.query_map(params![table], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        rows.iter().map(|t| from_json(t)).collect()
    }

    /// Drops a table's items and index entries at once, as DeleteTable does: without change
    /// records, since a dropped table's stream ends with it.
    pub fn drop_table(&self, table: &str) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM index_entries WHERE tbl = ?1", params![table])?;
        let dropped = tx.execute("DELETE FROM items WHERE tbl = ?1", params![table])?;
        tx.commit()?;
        Ok(dropped)
    }
}

fn last_key(item: &Item, query: &Query) -> Result<Item> {
    let (partition, sort) = query.key_attributes();
    let mut key = Key::of(item)?.to_item();
    for attr in [partition, sort] {
        if let Some(value) = item.get(&attr) {
            key.insert(attr, value.clone());
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Condition, to_item};
    use serde_json::json;

    fn spec() -> TableSpec {
        TableSpec {
            name: "T".into(),
            indexes: vec!["gsi1".into()],
            stream: true,
        }
    }

    fn item(pk: &str, version: u64, gsi1sk: &str) -> Item {
        to_item(&json!({"pk": pk, "sk": "#", "version": version, "gsi1pk": "C", "gsi1sk": gsi1sk}))
            .unwrap()
    }

    #[test]
    fn a_write_and_its_change_record_commit_together() {
        let db = Database::open_in_memory().unwrap();
        db.write(
            &spec(),
            vec![Write::put(item("a", 1, "1"), Condition::NotExists)],
        )
        .unwrap();
        let failed = db.write(
            &spec(),
            vec![Write::put(item("a", 2, "1"), Condition::VersionIs(5))],
        );
        assert!(matches!(failed, Err(Error::ConditionFailed { index: 0 })));
        db.write(
            &spec(),
            vec![Write::put(item("a", 2, "1"), Condition::VersionIs(1))],
        )
        .unwrap();
        let changes = db.changes_after("T", 0, 10).unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["INSERT", "MODIFY"]);
        assert_eq!(changes[1].old.as_ref().and_then(version_of), Some(1));
        assert_eq!(changes[1].new.as_ref().and_then(version_of), Some(2));
    }

    #[test]
    fn an_unchanged_put_writes_no_change_record() {
        let db = Database::open_in_memory().unwrap();
        db.write(
            &spec(),
            vec![Write::put(item("a", 1, "1"), Condition::Always)],
        )
        .unwrap();
        db.write(
            &spec(),
            vec![Write::put(item("a", 1, "1"), Condition::Always)],
        )
        .unwrap();
        assert_eq!(db.changes_after("T", 0, 10).unwrap().len(), 1);
    }

    #[test]
    fn an_atomic_group_applies_all_or_nothing() {
        let db = Database::open_in_memory().unwrap();
        let writes = vec![
            Write::put(item("a", 1, "1"), Condition::NotExists),
            Write::put(item("b", 1, "1"), Condition::VersionIs(9)),
        ];
        assert!(matches!(
            db.write(&spec(), writes),
            Err(Error::ConditionFailed { index: 1 })
        ));
        assert!(db.get("T", &Key::new("a", "#")).unwrap().is_none());
        assert!(db.changes_after("T", 0, 10).unwrap().is_empty());
    }

    #[test]
    fn index_queries_page_in_order_in_both_directions() {
        let db = Database::open_in_memory().unwrap();
        for (pk, sk) in [("a", "3"), ("b", "1"), ("c", "2"), ("d", "5"), ("e", "4")] {
            db.write(
                &spec(),
                vec![Write::put(item(pk, 1, sk), Condition::Always)],
            )
            .unwrap();
        }
        for descending in [false, true] {
            let mut query = Query {
                index: Some("gsi1".into()),
                partition: "C".into(),
                descending,
                limit: 2,
                ..Query::default()
            };
            let mut seen = vec![];
            loop {
                let page = db.query("T", &query).unwrap();
                seen.extend(page.items.iter().map(|i| string_attr(i, "gsi1sk").unwrap()));
                match page.cursor {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
            let mut expected = vec!["1", "2", "3", "4", "5"];
            if descending {
                expected.reverse();
            }
            assert_eq!(seen, expected);
        }
    }
}
