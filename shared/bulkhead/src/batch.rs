//! Batches as Lambda delivers them, each record decoded on its own. A record that does not
//! decode fails alone, at its place, as a batch item failure, instead of failing the whole
//! invocation and every good record with it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// One record of a batch: decoded, or named by its id and the reason it did not decode.
#[derive(Debug)]
pub enum Record<T> {
    Decoded(T),
    Undecodable { id: Option<String>, error: String },
}

/// How one record of a batch is read. A record that does not decode must come back as
/// [`Record::Undecodable`], never as an error, which would fail the whole batch.
pub trait Decode: Sized {
    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Record<Self>, D::Error>;
}

impl<T: DeserializeOwned> Record<T> {
    /// Reads a record in two passes, for any type: its JSON is kept first, then decoded.
    /// `id` is where its identifier is, for naming it if it does not decode.
    pub fn from_whole<'de, D: Deserializer<'de>>(
        deserializer: D,
        id: &[&str],
    ) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(match serde_json::from_str(raw.get()) {
            Ok(record) => Record::Decoded(record),
            Err(e) => Record::Undecodable {
                id: string_at(&raw, id),
                error: e.to_string(),
            },
        })
    }
}

/// The string at `path` in a JSON text, if there is one.
fn string_at(json: &RawValue, path: &[&str]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json.get()).ok()?;
    path.iter()
        .try_fold(&value, |v, key| v.get(key))?
        .as_str()
        .map(String::from)
}

impl Decode for aws_lambda_events::event::sqs::SqsMessage {
    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Record<Self>, D::Error> {
        Record::from_whole(deserializer, &["messageId"])
    }
}

impl<'de, T: Decode> Deserialize<'de> for Record<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::decode(deserializer)
    }
}

/// A batch, `{"Records": [...]}`, as the stream and queue event sources send it.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Decode"))]
pub struct Batch<T> {
    #[serde(rename = "Records")]
    pub records: Vec<Record<T>>,
}

impl<T: Decode> Batch<T> {
    pub fn decoded(records: impl IntoIterator<Item = T>) -> Self {
        Batch {
            records: records.into_iter().map(Record::Decoded).collect(),
        }
    }

    /// Decodes a batch from JSON text; fails only when the batch itself is not one.
    pub fn from_json(json: impl AsRef<[u8]>) -> crate::Result<Self> {
        Ok(serde_json::from_slice(json.as_ref())?)
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

    impl Decode for Message {
        fn decode<'de, D: Deserializer<'de>>(d: D) -> Result<Record<Self>, D::Error> {
            Record::from_whole(d, &["id"])
        }
    }

    fn id(record: &Record<Message>) -> Option<&str> {
        match record {
            Record::Undecodable { id, .. } => id.as_deref(),
            Record::Decoded(_) => None,
        }
    }

    #[test]
    fn a_record_that_does_not_decode_is_kept_with_its_place_and_its_id() {
        let batch: Batch<Message> = Batch::from_json(
            r#"{"Records": [{"id": "a", "n": 1}, {"id": "b", "n": "one"}, 7, {"id": "c", "n": 3}]}"#,
        )
        .unwrap();
        assert_eq!(batch.records.len(), 4);
        assert!(matches!(&batch.records[0], Record::Decoded(m) if m.id == "a"));
        assert_eq!(id(&batch.records[1]), Some("b"));
        assert!(matches!(&batch.records[2], Record::Undecodable { .. }));
        assert_eq!(id(&batch.records[2]), None);
        assert!(matches!(&batch.records[3], Record::Decoded(m) if m.n == 3));
        assert!(Batch::<Message>::from_json(r#"{"records": []}"#).is_err());
    }
}
