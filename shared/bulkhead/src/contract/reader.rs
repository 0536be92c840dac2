//! Consumers' tolerant readers held against producers' contracts, and impact analysis.
//!
//! A listener reads each event's `state` into a type of its own (`listen(..).on(set, apply)`);
//! its schema, as that type deserializes, is what the consumer relies on. Every field it
//! requires must be one the producer guarantees, with a type the reader accepts, and every
//! value of a producer's enum must be one the reader takes.

use super::compat::{join, properties, required, types};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// Where a reader expects more than the producer's schema promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gap {
    /// The reader reads a field the producer does not publish.
    Missing { path: String },
    /// The reader requires a field the producer may leave out.
    NotGuaranteed { path: String },
    /// The producer may send a JSON type the reader does not accept.
    TypeMismatch {
        path: String,
        reader: String,
        producer: String,
    },
    /// The producer may send an enum value the reader does not take.
    UnreadValue { path: String, value: String },
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::Missing { path } => write!(f, "{path}: read, but the producer has no such field"),
            Gap::NotGuaranteed { path } => {
                write!(
                    f,
                    "{path}: required by the reader, optional in the producer"
                )
            }
            Gap::TypeMismatch {
                path,
                reader,
                producer,
            } => write!(
                f,
                "{path}: the reader takes {reader}, the producer sends {producer}"
            ),
            Gap::UnreadValue { path, value } => {
                write!(
                    f,
                    "{path}: the producer may send {value}, which the reader does not take"
                )
            }
        }
    }
}

/// Every gap between a reader's schema and the producer's schema of the same value.
pub fn gaps(reader: &Value, producer: &Value) -> Vec<Gap> {
    let mut gaps = vec![];
    check(reader, producer, "", &mut gaps);
    gaps
}

fn accepts(reader: &BTreeSet<String>, producer: &str) -> bool {
    reader.is_empty()
        || reader.contains(producer)
        || (producer == "integer" && reader.contains("number"))
}

fn check(reader: &Value, producer: &Value, path: &str, gaps: &mut Vec<Gap>) {
    let at = if path.is_empty() { "(root)" } else { path };
    let (reader_types, producer_types) = (types(reader), types(producer));
    // A producer that sends anything fits only a reader of anything.
    let mismatch = if producer_types.is_empty() {
        !reader_types.is_empty()
    } else {
        producer_types.iter().any(|t| !accepts(&reader_types, t))
    };
    if mismatch {
        gaps.push(Gap::TypeMismatch {
            path: at.into(),
            reader: show(&reader_types),
            producer: show(&producer_types),
        });
        return;
    }
    if let Some(taken) = reader["enum"].as_array() {
        match producer["enum"].as_array() {
            Some(sent) => {
                gaps.extend(
                    sent.iter()
                        .filter(|v| !taken.contains(v))
                        .map(|v| Gap::UnreadValue {
                            path: at.into(),
                            value: v.to_string(),
                        }),
                )
            }
            None => gaps.push(Gap::UnreadValue {
                path: at.into(),
                value: "any value".into(),
            }),
        }
    }
    let (reader_required, producer_required) = (required(reader), required(producer));
    let producer_properties = properties(producer);
    for (field, read) in properties(reader) {
        let here = join(path, field);
        let Some((_, sent)) = producer_properties.iter().find(|(name, _)| *name == field) else {
            gaps.push(Gap::Missing { path: here });
            continue;
        };
        if reader_required.contains(field) && !producer_required.contains(field) {
            gaps.push(Gap::NotGuaranteed { path: here.clone() });
        }
        check(read, sent, &here, gaps);
    }
    if let (Some(read), Some(sent)) = (reader.get("items"), producer.get("items")) {
        check(read, sent, &format!("{path}[]"), gaps);
    }
}

fn show(types: &BTreeSet<String>) -> String {
    if types.is_empty() {
        "any".into()
    } else {
        types.iter().cloned().collect::<Vec<_>>().join("|")
    }
}

/// Every field path a schema describes, depth first (`lines[].sku`).
pub fn fields(schema: &Value) -> Vec<String> {
    let mut found = vec![];
    collect(schema, "", &mut found);
    found
}

fn collect(schema: &Value, path: &str, found: &mut Vec<String>) {
    for (field, sub) in properties(schema) {
        let here = join(path, field);
        found.push(here.clone());
        collect(sub, &here, found);
    }
    if let Some(items) = schema.get("items") {
        collect(items, &format!("{path}[]"), found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn producer() -> Value {
        json!({
            "type": "object",
            "required": ["id", "status", "lines"],
            "properties": {
                "id": { "type": "string" },
                "note": { "type": ["string", "null"] },
                "status": { "type": "string", "enum": ["PLACED", "SHIPPED"] },
                "totalCents": { "type": "integer" },
                "lines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["sku"],
                        "properties": { "sku": { "type": "string" } }
                    }
                }
            }
        })
    }

    #[test]
    fn a_reader_of_guaranteed_fields_fits_and_each_kind_of_gap_is_caught() {
        let cases = vec![
            (
                "reads guaranteed fields, an optional one optionally, a status as a string, an integer as a number",
                json!({
                    "type": "object", "required": ["id", "status", "lines"],
                    "properties": {
                        "id": { "type": "string" },
                        "note": { "type": ["string", "null"] },
                        "totalCents": { "type": ["number", "null"] },
                        "status": { "type": "string" },
                        "lines": { "type": "array", "items": { "type": "object", "required": ["sku"], "properties": { "sku": { "type": "string" } } } }
                    }
                }),
                vec![],
            ),
            (
                "a field nobody publishes",
                json!({ "type": "object", "properties": { "customerId": { "type": "string" } } }),
                vec![Gap::Missing {
                    path: "customerId".into(),
                }],
            ),
            (
                "a field the producer does not guarantee",
                json!({ "type": "object", "required": ["totalCents"], "properties": { "totalCents": { "type": "integer" } } }),
                vec![Gap::NotGuaranteed {
                    path: "totalCents".into(),
                }],
            ),
            (
                "a nested field read as another type",
                json!({ "type": "object", "properties": { "lines": { "type": "array", "items": { "type": "object", "properties": { "sku": { "type": "integer" } } } } } }),
                vec![Gap::TypeMismatch {
                    path: "lines[].sku".into(),
                    reader: "integer".into(),
                    producer: "string".into(),
                }],
            ),
            (
                "a nullable field read as never null",
                json!({ "type": "object", "properties": { "note": { "type": "string" } } }),
                vec![Gap::TypeMismatch {
                    path: "note".into(),
                    reader: "string".into(),
                    producer: "null|string".into(),
                }],
            ),
            (
                "an enum that misses a value",
                json!({ "type": "object", "properties": { "status": { "type": "string", "enum": ["PLACED"] } } }),
                vec![Gap::UnreadValue {
                    path: "status".into(),
                    value: "\"SHIPPED\"".into(),
                }],
            ),
        ];
        for (case, reader, expected) in cases {
            assert_eq!(gaps(&reader, &producer()), expected, "{case}");
        }
    }

    #[test]
    fn fields_are_listed_depth_first() {
        assert_eq!(
            fields(&producer()),
            ["id", "lines", "lines[].sku", "note", "status", "totalCents"]
        );
    }
}
