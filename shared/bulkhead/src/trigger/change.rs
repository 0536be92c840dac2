//! A change of one item, as a DynamoDB stream record reports it.
//!
//! The record is read only as far as the trigger needs. Its images stay the record's
//! DynamoDB JSON text until the ACL reads them as its own types, in one pass
//! ([`crate::store::item_json`]): no attribute maps are built, copied or dropped.

use crate::batch::{Decode, Record};
use crate::store::flat::Name;
use crate::store::{Item, Key, item_json};
use crate::{Error, Result};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// What a stream record says happened to an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

/// An item's image in a stream record: its DynamoDB JSON, a map read on demand.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct Image(Box<RawValue>);

impl<'de> Deserialize<'de> for Image {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Box::<RawValue>::deserialize(deserializer)?;
        match json.get().starts_with('{') {
            true => Ok(Image(json)),
            false => Err(serde::de::Error::custom("an image is a map of attributes")),
        }
    }
}

impl Image {
    /// The image of an item, as a stream record would hold it.
    pub fn of(item: &Item) -> Result<Image> {
        Ok(Image(serde_json::value::to_raw_value(item)?))
    }

    /// The image read as `T`, with the rules of [`crate::store::from_item`].
    pub fn read<'a, T: Deserialize<'a>>(&'a self) -> Result<T> {
        item_json::from_str(self.0.get())
    }
}

/// A decoded stream record: the item's key, and its images before and after.
#[derive(Clone, Debug)]
pub struct Change {
    pub kind: ChangeKind,
    pub key: Key,
    pub old: Option<Image>,
    pub new: Option<Image>,
}

impl Change {
    /// The change a stream record describes. Its images are moved out of the record; the
    /// rest of the record (its sequence number and time) stays. A record without its key or
    /// the images its kind needs is malformed. An image is checked only when it is read, so
    /// an ACL that passes over a record by its key reads none of it.
    pub fn take_from(record: &mut StreamRecord) -> Result<Change> {
        let kind = match record.event_name.as_str() {
            "INSERT" => ChangeKind::Insert,
            "MODIFY" => ChangeKind::Modify,
            "REMOVE" => ChangeKind::Remove,
            other => return Err(Error::Malformed(format!("unknown event name {other:?}"))),
        };
        let change = Change {
            kind,
            key: Key::of(&record.dynamodb.keys)?,
            old: record.dynamodb.old_image.take(),
            new: record.dynamodb.new_image.take(),
        };
        let consistent = match kind {
            ChangeKind::Insert => change.new.is_some(),
            ChangeKind::Modify => change.new.is_some() && change.old.is_some(),
            ChangeKind::Remove => change.old.is_some(),
        };
        if !consistent {
            return Err(Error::Malformed(format!(
                "{kind:?} record without its images"
            )));
        }
        Ok(change)
    }

    /// The item's partition key.
    pub fn pk(&self) -> &str {
        &self.key.pk
    }

    pub fn new_as<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.new.as_ref().map(Image::read).transpose()
    }

    pub fn old_as<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.old.as_ref().map(Image::read).transpose()
    }

    /// The old and new images read as `T`.
    pub fn images_as<T: DeserializeOwned>(&self) -> Result<(Option<T>, Option<T>)> {
        Ok((self.old_as()?, self.new_as()?))
    }
}

/// A DynamoDB stream record, as Lambda delivers it, read only as far as the trigger needs.
#[derive(Debug)]
pub struct StreamRecord {
    pub event_name: String,
    pub dynamodb: StreamData,
}

/// The `dynamodb` part of a stream record.
#[derive(Debug)]
pub struct StreamData {
    pub keys: Item,
    pub new_image: Option<Image>,
    pub old_image: Option<Image>,
    pub sequence_number: Option<String>,
    /// Seconds since the epoch.
    pub approximate_creation_date_time: Option<f64>,
}

/// A stream record is read in one pass over its JSON: each part is kept as its JSON text,
/// the images to be read by the ACL, the rest read at once. A record whose parts do not
/// decode fails alone, with its sequence number if it has one.
impl Decode for StreamRecord {
    fn decode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Record<Self>, D::Error> {
        let parts = deserializer.deserialize_any(RecordParts::default())?;
        let id = parts.dynamodb.as_ref().and_then(|data| {
            let raw = data.sequence_number.as_ref()?;
            serde_json::from_str(raw.get()).ok()
        });
        Ok(match parts.record() {
            Ok(record) => Record::Decoded(record),
            Err(error) => Record::Undecodable { id, error },
        })
    }
}

type Part = Option<Box<RawValue>>;

/// The parts of a stream record that the trigger reads, as JSON text.
#[derive(Default)]
struct RecordParts {
    object: bool,
    event_name: Part,
    dynamodb: Option<DataParts>,
}

#[derive(Default)]
struct DataParts {
    object: bool,
    keys: Part,
    new_image: Part,
    old_image: Part,
    sequence_number: Part,
    created: Part,
}

fn read<'a, T: Deserialize<'a>>(
    part: &'a Part,
    name: &str,
) -> std::result::Result<Option<T>, String> {
    part.as_ref()
        .map(|raw| serde_json::from_str(raw.get()))
        .transpose()
        .map_err(|e| format!("{name}: {e}"))
}

impl RecordParts {
    fn record(&self) -> std::result::Result<StreamRecord, String> {
        let data = match &self.dynamodb {
            _ if !self.object => return Err("a stream record is an object".into()),
            Some(data) if data.object => data,
            _ => return Err("a stream record without its dynamodb object".into()),
        };
        Ok(StreamRecord {
            event_name: read(&self.event_name, "eventName")?.ok_or("no eventName")?,
            dynamodb: StreamData {
                keys: read(&data.keys, "Keys")?.unwrap_or_default(),
                new_image: read(&data.new_image, "NewImage")?,
                old_image: read(&data.old_image, "OldImage")?,
                sequence_number: read(&data.sequence_number, "SequenceNumber")?,
                approximate_creation_date_time: read(&data.created, "ApproximateCreationDateTime")?,
            },
        })
    }
}

/// A visitor of a JSON object's parts, which takes any other JSON as "not an object".
macro_rules! parts_visitor {
    ($parts:ident, |$this:ident, $name:ident, $map:ident| $take:block) => {
        impl<'de> Visitor<'de> for $parts {
            type Value = $parts;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut $map: A) -> std::result::Result<$parts, A::Error> {
                let mut $this = $parts {
                    object: true,
                    ..$parts::default()
                };
                while let Some(Name($name)) = $map.next_key()? $take
                Ok($this)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<$parts, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok($parts::default())
            }

            fn visit_bool<E>(self, _: bool) -> std::result::Result<$parts, E> {
                Ok($parts::default())
            }

            fn visit_i64<E>(self, _: i64) -> std::result::Result<$parts, E> {
                Ok($parts::default())
            }

            fn visit_u64<E>(self, _: u64) -> std::result::Result<$parts, E> {
                Ok($parts::default())
            }

            fn visit_f64<E>(self, _: f64) -> std::result::Result<$parts, E> {
                Ok($parts::default())
            }

            fn visit_str<E>(self, _: &str) -> std::result::Result<$parts, E> {
                Ok($parts::default())
            }

            fn visit_unit<E>(self) -> std::result::Result<$parts, E> {
                Ok($parts::default())
            }
        }

        impl<'de> Deserialize<'de> for $parts {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<$parts, D::Error> {
                deserializer.deserialize_any($parts::default())
            }
        }
    };
}

parts_visitor!(RecordParts, |parts, name, map| {
    match &*name {
        "eventName" => parts.event_name = Some(map.next_value()?),
        "dynamodb" => parts.dynamodb = Some(map.next_value()?),
        _ => drop(map.next_value::<IgnoredAny>()?),
    }
});

parts_visitor!(DataParts, |parts, name, map| {
    let part = match &*name {
        "Keys" => &mut parts.keys,
        "NewImage" => &mut parts.new_image,
        "OldImage" => &mut parts.old_image,
        "SequenceNumber" => &mut parts.sequence_number,
        "ApproximateCreationDateTime" => &mut parts.created,
        _ => {
            map.next_value::<IgnoredAny>()?;
            continue;
        }
    };
    *part = Some(map.next_value()?);
});

impl StreamData {
    /// When the change was written, in milliseconds since the epoch, to the second.
    pub fn written_at_ms(&self) -> Option<i64> {
        self.approximate_creation_date_time
            .map(|seconds| (seconds * 1000.0) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Batch;

    fn outcome(record: &Record<StreamRecord>) -> (Option<&str>, Option<&str>) {
        match record {
            Record::Decoded(r) => (r.dynamodb.sequence_number.as_deref(), None),
            Record::Undecodable { id, error } => (id.as_deref(), Some(error.as_str())),
        }
    }

    #[test]
    fn each_record_is_read_in_one_pass_and_a_bad_one_fails_alone_with_its_sequence_number() {
        let keys = r##"{"pk": {"S": "P"}, "sk": {"S": "#"}}"##;
        let batch: Batch<StreamRecord> = Batch::from_json(&format!(
            r#"{{"Records": [
                {{"eventName": "MODIFY", "eventID": "x", "dynamodb": {{"Keys": {keys},
                  "NewImage": {{"n": {{"N": "2"}}}}, "OldImage": {{"n": {{"N": "1"}}}},
                  "SequenceNumber": "1", "ApproximateCreationDateTime": 1.5, "SizeBytes": 9}}}},
                7,
                {{"eventName": "INSERT", "dynamodb": {{"Keys": "x", "SequenceNumber": "3"}}}},
                {{"dynamodb": {{"Keys": {keys}, "SequenceNumber": "4"}}}},
                {{"eventName": "INSERT", "dynamodb": {{"Keys": {keys}, "NewImage": "text",
                  "SequenceNumber": "5"}}}},
                {{"eventName": "INSERT", "dynamodb": [1, 2]}},
                {{"eventName": "INSERT", "Keys": {keys}, "SequenceNumber": "7"}}
            ]}}"#
        ))
        .unwrap();
        let outcomes: Vec<_> = batch.records.iter().map(outcome).collect();
        assert_eq!(outcomes[0], (Some("1"), None));
        assert_eq!(outcomes[1], (None, Some("a stream record is an object")));
        assert!(outcomes[2].0 == Some("3") && outcomes[2].1.unwrap().starts_with("Keys:"));
        assert_eq!(outcomes[3], (Some("4"), Some("no eventName")));
        assert!(outcomes[4].1.unwrap().contains("an image is a map"));
        assert_eq!(outcomes[5].0, None);
        assert_eq!(
            outcomes[6],
            (None, Some("a stream record without its dynamodb object"))
        );

        let Record::Decoded(mut record) = batch.records.into_iter().next().unwrap() else {
            unreachable!()
        };
        assert_eq!(record.dynamodb.written_at_ms(), Some(1500));
        let change = Change::take_from(&mut record).unwrap();
        assert_eq!((change.kind, change.pk()), (ChangeKind::Modify, "P"));
        let (old, new) = change.images_as::<serde_json::Value>().unwrap();
        assert_eq!(
            (old.unwrap()["n"].clone(), new.unwrap()["n"].clone()),
            (1.into(), 2.into())
        );
    }
}
