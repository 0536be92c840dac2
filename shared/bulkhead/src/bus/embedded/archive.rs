//! The bus archive on the embedded database: every event the bus accepted, durable, listed
//! in order of event time and filtered by source, event type, aggregate id and time window,
//! a page at a time.

use crate::store::embedded::Database;
use crate::{Error, Result};
use rusqlite::{Connection, params};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS archive (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, archive TEXT NOT NULL, event TEXT NOT NULL,
    at INTEGER NOT NULL);
";

/// Appends an event to an archive, inside the transaction that delivers it.
pub(crate) fn append(tx: &Connection, archive: &str, event: &str, at: i64) -> Result<()> {
    tx.prepare_cached("INSERT INTO archive (archive, event, at) VALUES (?1, ?2, ?3)")?
        .execute(params![archive, event, at])?;
    Ok(())
}

/// Which archived events to list. Every filter left out matches everything; the window is
/// `[from_millis, to_millis)` of the event's own `time`, as EventBridge replays by it.
#[derive(Clone, Debug, Default)]
pub struct ArchiveQuery {
    pub source: Option<String>,
    pub detail_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub from_millis: Option<i64>,
    pub to_millis: Option<i64>,
    /// At most this many events (1–1000).
    pub limit: usize,
    /// Where the previous page stopped ([`ArchivePage::cursor`]).
    pub cursor: Option<String>,
}

/// One archived event: its event time, its place in the archive and the event as routed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Archived {
    pub seq: i64,
    pub time_millis: i64,
    pub event: serde_json::Value,
}

/// A page of archived events, oldest event time first.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ArchivePage {
    pub events: Vec<Archived>,
    /// Pass as the next query's cursor; `None` on the last page.
    pub cursor: Option<String>,
}

/// At most this many events in one page.
pub const MAX_PAGE: usize = 1000;

/// The event's `time`, in milliseconds since the epoch, as SQL over the stored JSON.
const TIME: &str =
    "CAST(ROUND(unixepoch(json_extract(event, '$.time'), 'subsec') * 1000) AS INTEGER)";

fn parse_cursor(cursor: &str) -> Result<(i64, i64)> {
    cursor
        .split_once('.')
        .and_then(|(t, s)| Some((t.parse().ok()?, s.parse().ok()?)))
        .ok_or(Error::InvalidCursor)
}

impl Database {
    /// The events an archive holds, oldest first.
    pub fn archived(&self, archive: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT event FROM archive WHERE archive = ?1 ORDER BY seq")?;
        let events = stmt
            .query_map(params![archive], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(events)
    }

    /// A page of an archive's events that pass the query, in order of event time (and of
    /// arrival for equal times).
    pub fn archive_page(&self, archive: &str, query: &ArchiveQuery) -> Result<ArchivePage> {
        if query.limit == 0 || query.limit > MAX_PAGE {
            return Err(Error::Malformed(format!(
                "limit {} is not within 1–{MAX_PAGE}",
                query.limit
            )));
        }
        let (after_time, after_seq) = match &query.cursor {
            Some(c) => parse_cursor(c)?,
            None => (i64::MIN, i64::MIN),
        };
        let sql = format!(
            "SELECT seq, t, event FROM (SELECT seq, event, {TIME} AS t FROM archive
              WHERE archive = ?1
                AND (?2 IS NULL OR json_extract(event, '$.source') = ?2)
                AND (?3 IS NULL OR json_extract(event, '$.\"detail-type\"') = ?3)
                AND (?4 IS NULL OR json_extract(event, '$.detail.aggregate.id') = ?4))
             WHERE t IS NOT NULL AND (?5 IS NULL OR t >= ?5) AND (?6 IS NULL OR t < ?6)
               AND (t > ?7 OR (t = ?7 AND seq > ?8))
             ORDER BY t, seq LIMIT ?9"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(
                params![
                    archive,
                    query.source,
                    query.detail_type,
                    query.aggregate_id,
                    query.from_millis,
                    query.to_millis,
                    after_time,
                    after_seq,
                    (query.limit + 1) as i64,
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let more = rows.len() > query.limit;
        let mut events = Vec::with_capacity(rows.len().min(query.limit));
        for (seq, time_millis, event) in rows.into_iter().take(query.limit) {
            events.push(Archived {
                seq,
                time_millis,
                event: serde_json::from_str(&event)?,
            });
        }
        let cursor = match (more, events.last()) {
            (true, Some(last)) => Some(format!("{}.{}", last.time_millis, last.seq)),
            _ => None,
        };
        Ok(ArchivePage { events, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(time: &str, source: &str, kind: &str, id: &str) -> (String, String) {
        let e = json!({"source": source, "detail-type": kind, "time": time,
            "detail": {"aggregate": {"id": id}}});
        ("A".to_string(), e.to_string())
    }

    fn ids(page: &ArchivePage) -> Vec<String> {
        page.events
            .iter()
            .map(|e| {
                e.event["detail"]["aggregate"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn pages_follow_event_time_and_filters_narrow_them() {
        let db = Database::open_in_memory().unwrap();
        // Archived out of time order, as SQS hands events to the AWS backend's copy.
        db.send(
            &[],
            &[
                event(
                    "2026-11-22T10:00:02.000Z",
                    "bulkhead.orders",
                    "OrderPlaced",
                    "o-3",
                ),
                event(
                    "2026-11-22T10:00:00.500Z",
                    "bulkhead.orders",
                    "OrderPlaced",
                    "o-1",
                ),
                event(
                    "2026-11-22T10:00:01.000Z",
                    "bulkhead.catalog",
                    "ProductCreated",
                    "p-1",
                ),
                event(
                    "2026-11-22T10:00:01.000Z",
                    "bulkhead.orders",
                    "OrderShipped",
                    "o-1",
                ),
            ],
        )
        .unwrap();
        let all = |limit, cursor| ArchiveQuery {
            limit,
            cursor,
            ..ArchiveQuery::default()
        };
        let first = db.archive_page("A", &all(3, None)).unwrap();
        assert_eq!(ids(&first), ["o-1", "p-1", "o-1"]);
        assert_eq!(first.events[0].time_millis, 1_795_341_600_500);
        let second = db.archive_page("A", &all(3, first.cursor.clone())).unwrap();
        assert_eq!(
            (ids(&second), second.cursor),
            (vec!["o-3".to_string()], None)
        );

        let orders = ArchiveQuery {
            source: Some("bulkhead.orders".into()),
            aggregate_id: Some("o-1".into()),
            ..all(10, None)
        };
        assert_eq!(ids(&db.archive_page("A", &orders).unwrap()), ["o-1", "o-1"]);
        let shipped = ArchiveQuery {
            detail_type: Some("OrderShipped".into()),
            ..all(10, None)
        };
        assert_eq!(ids(&db.archive_page("A", &shipped).unwrap()), ["o-1"]);
        let window = ArchiveQuery {
            from_millis: Some(1_795_341_601_000),
            to_millis: Some(1_795_341_602_000),
            ..all(10, None)
        };
        assert_eq!(ids(&db.archive_page("A", &window).unwrap()), ["p-1", "o-1"]);
        assert!(
            db.archive_page("B", &all(10, None))
                .unwrap()
                .events
                .is_empty()
        );
        assert!(db.archive_page("A", &all(0, None)).is_err());
        assert!(db.archive_page("A", &all(5, Some("x".into()))).is_err());
    }
}
