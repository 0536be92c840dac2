//! Batches as Lambda delivers them, each record decoded on its own. A record that does not
//! decode fails alone, at its place, as a batch item failure, instead of failing the whole
//! invocation and every good record with it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// One record of a batch: decoded, or kept as the JSON that did not decode.
#[derive(Debug)]
pub enum Record<T> {
    Decoded(T),
    Undecodable { raw: Box<RawValue>, error: String },
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Record<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(match serde_json::from_str(raw.get()) {
            Ok(record) => Record::Decoded(record),
            Err(e) => Record::Undecodable {
                error: e.to_string(),
                raw,
            },
        })
    }
}

impl<T> Record<T> {
    /// A string at `path` in an undecodable record's JSON: how the record is named when it
    /// is reported.
    pub fn raw_string(&self, path: &[&str]) -> Option<String> {
        let Record::Undecodable { raw, .. } = self else {
            return None;
        };
        let value: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
        path.iter()
            .try_fold(&value, |v, key| v.get(key))?
            .as_str()
            .map(String::from)
    }
}

/// A batch, `{"Records": [...]}`, as the stream and queue event sources send it.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct Batch<T> {
    #[serde(rename = "Records")]
    pub records: Vec<Record<T>>,
}

impl<T: DeserializeOwned> Batch<T> {
    pub fn decoded(records: impl IntoIterator<Item = T>) -> Self {
        Batch {
            records: records.into_iter().map(Record::Decoded).collect(),
        }
    }

    /// Decodes a batch from JSON text; fails only when the batch itself is not one.
    pub fn from_json(json: &str) -> crate::Result<Self> {
        Ok(serde_json::from_str(json)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Message {
        id: String,
        n: i64,
    }

    #[test]
    fn a_record_that_does_not_decode_is_kept_with_its_place_and_its_id() {
        let batch: Batch<Message> = Batch::from_json(
            r#"{"Records": [{"id": "a", "n": 1}, {"id": "b", "n": "one"}, 7, {"id": "c", "n": 3}]}"#,
        )
        .unwrap();
        assert_eq!(batch.records.len(), 4);
        assert!(matches!(&batch.records[0], Record::Decoded(m) if m.id == "a"));
        assert_eq!(batch.records[1].raw_string(&["id"]).as_deref(), Some("b"));
        assert!(matches!(&batch.records[2], Record::Undecodable { .. }));
        assert_eq!(batch.records[2].raw_string(&["id"]), None);
        assert!(matches!(&batch.records[3], Record::Decoded(m) if m.n == 3));
        assert!(Batch::<Message>::from_json(r#"{"records": []}"#).is_err());
    }
}
