//! An item's DynamoDB JSON (`{"name": {"S": "…"}, …}`, as a stream record holds its images)
//! read straight into a typed value, in one pass.
//!
//! [`super::from_item`] reads an [`super::Item`], so text must first become attribute maps,
//! each string and number its own allocation, which are then read and dropped. This reads
//! the text into `T` as it goes, borrowing strings where `T` borrows, by the same rules as
//! `serde_dynamo`:
//! - `N` is the number type asked for; asked for anything, an `i64`, else a `u64`, else an
//!   `f64`;
//! - `NULL` is `None`, or `()`;
//! - an enum is an `S` (a unit variant) or an `M` of one key (the variant and its value);
//! - `L`, `SS`, `NS` and `BS` are sequences, and `B` and `BS` hold base64.

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Error as _, IgnoredAny, IntoDeserializer,
    MapAccess, SeqAccess, VariantAccess, Visitor,
};
use std::fmt;

/// Reads an item's DynamoDB JSON as `T`.
pub fn from_str<'a, T: Deserialize<'a>>(json: &'a str) -> crate::Result<T> {
    let mut json = serde_json::Deserializer::from_str(json);
    let value = read(&mut json)?;
    json.end()?;
    Ok(value)
}

/// Reads the item's DynamoDB JSON that `deserializer` is at as `T`: an image within a
/// larger document, read where it stands ([`crate::trigger::ImageTypes`]).
pub fn read<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    T::deserialize(ItemText(deserializer))
}

/// The type of an attribute value: the one key of its object.
#[derive(Clone, Copy)]
enum Tag {
    S,
    N,
    B,
    Bool,
    Null,
    M,
    L,
    Ss,
    Ns,
    Bs,
}

/// Read as an identifier, matched as text: a derived enum went through serde_json's
/// variant access for each of the 45 values of an order's image.
impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tag, D::Error> {
        struct TagName;
        impl Visitor<'_> for TagName {
            type Value = Tag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attribute type (S, N, B, BOOL, NULL, M, L, SS, NS or BS)")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Tag, E> {
                Ok(match name {
                    "S" => Tag::S,
                    "N" => Tag::N,
                    "M" => Tag::M,
                    "L" => Tag::L,
                    "B" => Tag::B,
                    "BOOL" => Tag::Bool,
                    "NULL" => Tag::Null,
                    "SS" => Tag::Ss,
                    "NS" => Tag::Ns,
                    "BS" => Tag::Bs,
                    other => return Err(E::unknown_variant(other, &TAGS)),
                })
            }
        }
        deserializer.deserialize_identifier(TagName)
    }
}

const TAGS: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];

/// What the value's type asked for: `Option` and enums read the attribute's type first.
#[derive(Clone, Copy)]
enum Want {
    Any,
    Option,
    Enum,
}

macro_rules! all_to_any_but_option_and_newtype {
    () => {
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            visitor.visit_some(self)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Self::Error> {
            visitor.visit_newtype_struct(self)
        }
    };
}

/// A whole item: a map of names to attribute values.
struct ItemText<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ItemText<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Attributes(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Variant(visitor))
    }

    /// Passed over, but still only as a map: an item is one.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    all_to_any_but_option_and_newtype!();
}

/// One attribute value, `{"S": "…"}`.
struct Attribute<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Attribute<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Tagged(Want::Any, visitor))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Tagged(Want::Option, visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Tagged(Want::Enum, visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_ignored_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct AttributeSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for AttributeSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Attribute(deserializer))
    }
}

/// Reads an attribute value's object: its type, then its payload as that type says.
struct Tagged<V>(Want, V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Tagged<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an attribute value, such as {"S": "text"}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V::Value, A::Error> {
        let Tagged(want, visitor) = self;
        let Some(tag) = map.next_key::<Tag>()? else {
            return Err(A::Error::custom("an attribute value without its type"));
        };
        let value = match (want, tag) {
            (Want::Option, Tag::Null) => {
                map.next_value::<IgnoredAny>()?;
                visitor.visit_none()?
            }
            (Want::Option, tag) => visitor.visit_some(Payload { tag, map: &mut map })?,
            (want, tag) => map.next_value_seed(PayloadSeed(want, tag, visitor))?,
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(A::Error::custom("an attribute value of more than one type"));
        }
        Ok(value)
    }
}

/// The payload of an attribute value whose type has been read, for an `Option`'s `Some`.
struct Payload<'a, A> {
    tag: Tag,
    map: &'a mut A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Payload<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        self.map
            .next_value_seed(PayloadSeed(Want::Any, self.tag, visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.map
            .next_value_seed(PayloadSeed(Want::Enum, self.tag, visitor))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        self.map.next_value::<IgnoredAny>()?;
        visitor.visit_unit()
    }

    all_to_any_but_option_and_newtype!();
}

struct PayloadSeed<V>(Want, Tag, V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for PayloadSeed<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, payload: D) -> Result<V::Value, D::Error> {
        let PayloadSeed(want, tag, visitor) = self;
        match (want, tag) {
            (Want::Enum, Tag::S) => payload.deserialize_str(UnitVariant(visitor)),
            (Want::Enum, Tag::M) => payload.deserialize_map(Variant(visitor)),
            (Want::Enum, _) => Err(D::Error::custom("an enum is an S, or an M of one key")),
            (_, Tag::S | Tag::Ss) => payload.deserialize_any(visitor),
            (_, Tag::N) => NumberText(payload).deserialize_any(visitor),
            (_, Tag::B) => BinaryText(payload).deserialize_any(visitor),
            (_, Tag::Bool) => payload.deserialize_bool(visitor),
            (_, Tag::Null) => {
                IgnoredAny::deserialize(payload)?;
                visitor.visit_unit()
            }
            (_, Tag::M) => payload.deserialize_map(Attributes(visitor)),
            (_, tag @ (Tag::L | Tag::Ns | Tag::Bs)) => {
                payload.deserialize_seq(Elements(tag, visitor))
            }
        }
    }
}

/// An `M`'s payload, or a whole item: names to attribute values.
struct Attributes<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Attributes<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of attribute values")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(AttributeMap(map))
    }
}

struct AttributeMap<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for AttributeMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(AttributeSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// An `L`'s, `NS`'s or `BS`'s payload: its elements, each read as the tag says.
struct Elements<V>(Tag, V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Elements<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of attribute values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.1.visit_seq(ElementSeq(self.0, seq))
    }
}

struct ElementSeq<A>(Tag, A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for ElementSeq<A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        match self.0 {
            Tag::Ns => self.1.next_element_seed(NumberSeed(seed)),
            Tag::Bs => self.1.next_element_seed(BinarySeed(seed)),
            _ => self.1.next_element_seed(AttributeSeed(seed)),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.1.size_hint()
    }
}

/// A deserializer, and its seed, of an attribute's text read as `$visitor` reads it.
macro_rules! text_deserializer {
    ($name:ident, $seed:ident, $visitor:ident) => {
        struct $name<D>(D);

        impl<'de, D: Deserializer<'de>> Deserializer<'de> for $name<D> {
            type Error = D::Error;

            fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.0.deserialize_str($visitor(visitor))
            }

            all_to_any_but_option_and_newtype!();

            fn deserialize_enum<V: Visitor<'de>>(
                self,
                _name: &'static str,
                _variants: &'static [&'static str],
                visitor: V,
            ) -> Result<V::Value, D::Error> {
                self.deserialize_any(visitor)
            }

            fn deserialize_ignored_any<V: Visitor<'de>>(
                self,
                visitor: V,
            ) -> Result<V::Value, D::Error> {
                self.0.deserialize_ignored_any(visitor)
            }
        }

        struct $seed<S>(S);

        impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for $seed<S> {
            type Value = S::Value;

            fn deserialize<E: Deserializer<'de>>(
                self,
                deserializer: E,
            ) -> Result<S::Value, E::Error> {
                self.0.deserialize($name(deserializer))
            }
        }
    };
}

text_deserializer!(NumberText, NumberSeed, Number);
text_deserializer!(BinaryText, BinarySeed, Binary);

/// An `N`'s text read as a number.
struct Number<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Number<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number as text")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<V::Value, E> {
        if let Ok(n) = text.parse::<i64>() {
            self.0.visit_i64(n)
        } else if let Ok(n) = text.parse::<u64>() {
            self.0.visit_u64(n)
        } else {
            match text.parse::<f64>() {
                Ok(n) => self.0.visit_f64(n),
                Err(_) => Err(E::invalid_value(de::Unexpected::Str(text), &"a number")),
            }
        }
    }
}

/// A `B`'s text read as bytes.
struct Binary<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Binary<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("bytes as base64")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<V::Value, E> {
        use base64::Engine;
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => self.0.visit_byte_buf(bytes),
            Err(_) => Err(E::invalid_value(de::Unexpected::Str(text), &"base64")),
        }
    }
}

/// An `S`'s text as a unit variant.
struct UnitVariant<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for UnitVariant<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a variant's name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<V::Value, E> {
        self.0.visit_enum(name.into_deserializer())
    }
}

/// An `M` of one key as a variant and its value.
struct Variant<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Variant<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of one variant to its value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(VariantMap(map))
    }
}

struct VariantMap<A>(A);

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for VariantMap<A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(
        mut self,
        seed: S,
    ) -> Result<(S::Value, Self), A::Error> {
        match self.0.next_key_seed(seed)? {
            Some(variant) => Ok((variant, self)),
            None => Err(A::Error::custom("an enum's M without its variant")),
        }
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for VariantMap<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        self.0.next_value::<IgnoredAny>().map(drop)
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        mut self,
        seed: S,
    ) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(AttributeSeed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(
        mut self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(AttributeSeed(AnyOf(visitor)))
    }

    fn struct_variant<V: Visitor<'de>>(
        mut self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(AttributeSeed(AnyOf(visitor)))
    }
}

/// A visitor as a seed: whatever the value is, visited.
struct AnyOf<V>(V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for AnyOf<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        deserializer.deserialize_any(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Item, from_item, to_item};
    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    /// Reads `json` both ways: in one pass, and through an `Item` as before.
    fn both<T: serde::de::DeserializeOwned>(json: &str) -> (crate::Result<T>, crate::Result<T>) {
        let item = serde_json::from_str::<Item>(json).map_err(crate::Error::from);
        (from_str(json), item.and_then(from_item))
    }

    fn text_of<T: Serialize>(value: &T) -> String {
        serde_json::to_string(&to_item(value).unwrap()).unwrap()
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    enum Status {
        Placed,
        Shipped,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Point,
        Circle(f64),
        Pair(u8, String),
        Rect { w: u32, h: u32 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Line {
        sku: String,
        quantity: i64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        id: String,
        status: Status,
        lines: Vec<Line>,
        shapes: Vec<Shape>,
        note: Option<String>,
        missing: Option<u32>,
        nested: Option<Option<bool>>,
        big: u64,
        negative: i32,
        ratio: f64,
        labels: BTreeMap<String, u16>,
        id_newtype: Sku,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sku(String);

    /// The shape of a stored record: `Versioned<S>` flattens its state.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        pk: String,
        version: u64,
        #[serde(flatten)]
        state: Inner,
    }

    fn sample() -> Record {
        Record {
            pk: "ORDER#o-1".into(),
            version: 7,
            state: Inner {
                id: "o-1 \"quoted\" \u{e9}".into(),
                status: Status::Shipped,
                lines: vec![
                    Line {
                        sku: "A1".into(),
                        quantity: 2,
                    },
                    Line {
                        sku: "B2".into(),
                        quantity: -1,
                    },
                ],
                shapes: vec![
                    Shape::Point,
                    Shape::Circle(1.5),
                    Shape::Pair(3, "x".into()),
                    Shape::Rect { w: 2, h: 3 },
                ],
                note: Some("n".into()),
                missing: None,
                nested: Some(Some(false)),
                big: u64::MAX,
                negative: -5,
                ratio: 0.25,
                labels: [("a".to_string(), 1), ("b".to_string(), 2)].into(),
                id_newtype: Sku("A1".into()),
            },
        }
    }

    #[test]
    fn a_stored_record_reads_back_as_it_was_written_and_as_serde_dynamo_reads_it() {
        let text = text_of(&sample());
        let (fast, slow) = both::<Record>(&text);
        assert_eq!(fast.unwrap(), sample());
        assert_eq!(slow.unwrap(), sample());
        assert!(text.contains(r#""missing":{"NULL":true}"#), "{text}");
        assert!(text.contains(r#""status":{"S":"SHIPPED"}"#), "{text}");
    }

    #[test]
    fn strings_are_borrowed_where_the_type_borrows() {
        #[derive(Deserialize)]
        struct Borrowing<'a> {
            pk: &'a str,
        }
        let text = r#"{"pk": {"S": "ORDER#o-1"}, "other": {"L": [{"N": "1"}]}}"#;
        assert_eq!(from_str::<Borrowing>(text).unwrap().pk, "ORDER#o-1");
    }

    #[test]
    fn sets_and_binary_read_as_sequences_and_bytes() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Sets {
            tags: Vec<String>,
            counts: Vec<i64>,
            blob: serde_bytes_like::Bytes,
            blobs: Vec<serde_bytes_like::Bytes>,
        }
        let text = r#"{"tags": {"SS": ["a", "b"]}, "counts": {"NS": ["1", "-2"]},
                       "blob": {"B": "aGk="}, "blobs": {"BS": ["aGk=", ""]}}"#;
        let (fast, slow) = both::<Sets>(text);
        let fast = fast.unwrap();
        assert_eq!(fast, slow.unwrap());
        assert_eq!(fast.tags, ["a", "b"]);
        assert_eq!(fast.counts, [1, -2]);
        assert_eq!(fast.blob.0, b"hi");
        assert_eq!(fast.blobs[1].0, b"");
    }

    /// Bytes from `visit_bytes` or `visit_byte_buf`, without a dependency for it.
    mod serde_bytes_like {
        #[derive(Debug, PartialEq)]
        pub struct Bytes(pub Vec<u8>);

        impl<'de> serde::Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl serde::de::Visitor<'_> for Visit {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                        Ok(Bytes(v.to_vec()))
                    }
                    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                        Ok(Bytes(v))
                    }
                }
                d.deserialize_bytes(Visit)
            }
        }
    }

    #[test]
    fn what_does_not_fit_the_type_is_an_error_that_names_it() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Counted {
            n: u8,
        }
        for (text, says) in [
            (r#"{"n": {"N": "x"}}"#, "a number"),
            (r#"{"n": {"N": "300"}}"#, "u8"),
            (r#"{"n": {"S": "1"}}"#, "invalid type"),
            (r#"{"n": {}}"#, "without its type"),
            (r#"{"n": {"N": "1", "S": "1"}}"#, "more than one type"),
            (r#"{"n": {"Q": "1"}}"#, "unknown variant"),
            (r#"{"n": {"N": "1"}} trailing"#, "trailing"),
        ] {
            let error = from_str::<Counted>(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
            assert!(both::<Counted>(text).1.is_err(), "serde_dynamo took {text}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\"\\\\ é]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_item_reads_as_serde_dynamo_reads_it(value in json_value()) {
            let text = text_of(&json!({ "v": value }));
            let (fast, slow) = both::<Value>(&text);
            prop_assert_eq!(fast.unwrap(), slow.unwrap());
        }
    }
}
