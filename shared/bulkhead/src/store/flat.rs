//! A record stored flat beside a wrapper's own attributes in one item (`Versioned`'s
//! bookkeeping, a view `Row`'s keys), read in one pass.
//!
//! `#[serde(flatten)]` reads every attribute the wrapper does not name into serde's buffer
//! first, and the record from that buffer: each string and number of the record is read
//! twice, allocated and dropped once more. Here the wrapper's own attributes are picked out
//! as the map goes by, and the record reads the rest straight from the input.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// The wrapper's own attributes, taken from the map as they come.
pub trait Own<'de>: Default {
    /// Reads `key`'s value from `map` if `key` is one of the wrapper's, and says whether it was.
    fn take<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// Reads a map as the wrapper's own attributes and the record `R` made of the rest.
pub fn deserialize<'de, D, O, R>(deserializer: D) -> Result<(O, R), D::Error>
where
    D: Deserializer<'de>,
    O: Own<'de>,
    R: Deserialize<'de>,
{
    deserializer.deserialize_map(Flat(PhantomData))
}

struct Flat<O, R>(PhantomData<(O, R)>);

impl<'de, O: Own<'de>, R: Deserialize<'de>> Visitor<'de> for Flat<O, R> {
    type Value = (O, R);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(O, R), A::Error> {
        let mut own = O::default();
        let rest = Rest {
            map: &mut map,
            own: &mut own,
        };
        let record = R::deserialize(de::value::MapAccessDeserializer::new(rest))?;
        // A record that stops reading early leaves attributes behind: read them too, so
        // that none of the wrapper's is missed.
        let mut rest = Rest {
            map: &mut map,
            own: &mut own,
        };
        while rest.next_key::<de::IgnoredAny>()?.is_some() {
            rest.next_value::<de::IgnoredAny>()?;
        }
        Ok((own, record))
    }
}

/// The map without the wrapper's attributes.
struct Rest<'a, A, O> {
    map: &'a mut A,
    own: &'a mut O,
}

impl<'de, A: MapAccess<'de>, O: Own<'de>> MapAccess<'de> for Rest<'_, A, O> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(Name(name)) = self.map.next_key()? {
            if !self.own.take(&name, self.map)? {
                let name: de::value::CowStrDeserializer<A::Error> = name.into_deserializer();
                return seed.deserialize(name).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// An attribute's name, borrowed from the input where it can be.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attribute name")
            }
            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }
            fn visit_str<E>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }
            fn visit_string<E>(self, name: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_identifier(Visit)
    }
}

#[cfg(test)]
mod tests {
    use crate::command::Versioned;
    use crate::listener::snapshot::Row;
    use crate::store::{Key, from_item, item_json, to_item};
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Order {
        id: String,
        lines: Vec<(String, u32)>,
        note: Option<String>,
    }

    fn order() -> Versioned<Order> {
        Versioned {
            pk: "ORDER#o-1".into(),
            sk: "#".into(),
            version: 3,
            updated_at: "t".into(),
            correlation_id: Some("c".into()),
            causation_id: None,
            state: Order {
                id: "o-1".into(),
                lines: vec![("A1".into(), 2)],
                note: None,
            },
        }
    }

    #[test]
    fn a_flat_item_reads_back_as_written_through_every_reader() {
        let item = to_item(&order()).unwrap();
        let text = serde_json::to_string(&item).unwrap();
        let back: Versioned<Order> = from_item(item).unwrap();
        let fast: Versioned<Order> = item_json::from_str(&text).unwrap();
        for read in [back, fast] {
            assert_eq!(
                (read.pk, read.version, read.correlation_id, read.state),
                ("ORDER#o-1".into(), 3, Some("c".into()), order().state)
            );
        }
        let row = Row::new(Key::new("p", "s"), json!({"a": 1})).indexed("g".into(), "h".into());
        let read: Row<serde_json::Value> = from_item(to_item(&row).unwrap()).unwrap();
        assert_eq!(read, row);
    }

    #[test]
    fn the_wrappers_attributes_are_found_wherever_they_are_and_required_ones_are_named() {
        let read: Versioned<serde_json::Value> = serde_json::from_value(json!({
            "id": "o-1", "pk": "P", "extra": [1], "version": 2, "sk": "#", "updatedAt": "t"
        }))
        .unwrap();
        assert_eq!((read.pk.as_str(), read.version), ("P", 2));
        assert_eq!(read.state, json!({"id": "o-1", "extra": [1]}));
        assert_eq!(read.correlation_id, None);

        // A record that reads only some attributes leaves the rest to the wrapper.
        #[derive(Debug, Deserialize)]
        struct Nothing {}
        let read: Versioned<Nothing> = serde_json::from_value(
            json!({"a": 1, "pk": "P", "sk": "#", "updatedAt": "t", "version": 1}),
        )
        .unwrap();
        assert_eq!(read.version, 1);

        let error = serde_json::from_value::<Versioned<Order>>(
            json!({"pk": "P", "sk": "#", "updatedAt": "t", "id": "o", "lines": []}),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("missing field `version`"),
            "{error}"
        );
    }
}
