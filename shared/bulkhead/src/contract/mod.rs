//! Event contracts: the JSON Schema of every public event type and version, generated from
//! the Rust types a producer's ACL publishes, never written by hand.
//!
//! - [`Contract`]: one event type and version, its schema the envelope with that type's
//!   `change` and `state` in it.
//! - [`compat`]: whether a new schema of the same version would break a consumer or an
//!   archived event.
//! - [`reader`]: a consumer's tolerant reader held against the producer's schema, and which
//!   consumers read each field (impact analysis).
//! - [`upcast`]: older versions raised to the newest where consumers read events.
//!
//! Schemas are JSON Schema draft 4 (what the EventBridge schema registry takes as
//! `JSONSchemaDraft4`), every subschema inline, so that each file reads on its own.

pub mod compat;
pub mod reader;
pub mod upcast;

use crate::event::{EventSet, PublicEvent};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The meta-schema of every contract.
pub const META_SCHEMA: &str = "http://json-schema.org/draft-04/schema#";

/// The schema of one public event type at one `schemaVersion`: what its producer promises.
#[derive(Clone, Debug, PartialEq)]
pub struct Contract {
    /// The `source` of the producer, `bulkhead.<service>`.
    pub source: &'static str,
    pub event_type: &'static str,
    pub version: u32,
    /// The JSON Schema of the event's `detail`.
    pub schema: Value,
}

/// What a producer declares beside its ACL: a contract per event type and version it has
/// published, current and past.
pub type Contracts = fn() -> Vec<Contract>;

impl Contract {
    /// The contract of `event_type` at `version`, whose `change` is a `C` and `state` an `S`,
    /// as the producer serializes them.
    pub fn of<C: JsonSchema, S: JsonSchema>(
        publishes: EventSet,
        event_type: &'static str,
        version: u32,
    ) -> Contract {
        let mut schema = envelope();
        schema["title"] = json!(format!("{event_type} v{version}"));
        schema["description"] = json!(format!(
            "The detail of {event_type} events of schemaVersion {version}, from {}.",
            publishes.source
        ));
        let properties = &mut schema["properties"];
        properties["type"] = json!({ "type": "string", "enum": [event_type] });
        properties["schemaVersion"] = json!({ "type": "integer", "enum": [version] });
        properties["change"] = schema_of::<C>(Direction::Serialize);
        properties["state"] = schema_of::<S>(Direction::Serialize);
        Contract {
            source: publishes.source,
            event_type,
            version,
            schema,
        }
    }

    /// The producing service: the source without `bulkhead.`.
    pub fn service(&self) -> &str {
        self.source.trim_start_matches("bulkhead.")
    }

    /// Where the contract is committed, relative to the contracts folder.
    pub fn path(&self) -> String {
        file_name(self.service(), self.event_type, self.version)
    }

    /// The schema of the event's `state` or `change`.
    pub fn part(&self, part: &str) -> &Value {
        &self.schema["properties"][part]
    }
}

/// Where the contract of `event_type` at `version` of `service` is committed.
pub fn file_name(service: &str, event_type: &str, version: u32) -> String {
    format!("{service}/{event_type}.v{version}.json")
}

/// The committed text of a schema: pretty JSON and a final newline.
pub fn text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Whether a schema describes what a type serializes to (a producer's promise) or what it
/// deserializes from (a consumer's reader: fields with defaults are not required).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Serialize,
    Deserialize,
}

/// The draft 4 schema of `T`, every subschema inline.
pub fn schema_of<T: JsonSchema>(direction: Direction) -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    let settings = match direction {
        Direction::Serialize => settings.for_serialize(),
        Direction::Deserialize => settings.for_deserialize(),
    };
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("title");
    }
    draft4(&mut schema);
    schema
}

/// The envelope every public event shares: `change` and `state` are any JSON here, and each
/// event type's contract says what they hold.
pub fn envelope() -> Value {
    let mut schema = schema_of::<PublicEvent>(Direction::Serialize);
    let object = schema.as_object_mut().expect("an object schema");
    let mut ordered = Map::new();
    ordered.insert("$schema".into(), json!(META_SCHEMA));
    ordered.insert("title".into(), json!("PublicEvent"));
    ordered.extend(std::mem::take(object));
    Value::Object(ordered)
}

/// Rewrites what draft 7 allows and draft 4 does not: boolean schemas and `const`.
fn draft4(schema: &mut Value) {
    match schema {
        Value::Bool(true) => *schema = json!({}),
        Value::Bool(false) => *schema = json!({ "not": {} }),
        Value::Object(object) => {
            if let Some(value) = object.remove("const") {
                object.insert("enum".into(), json!([value]));
            }
            for (keyword, value) in object.iter_mut() {
                match keyword.as_str() {
                    "properties" | "patternProperties" | "definitions" => {
                        if let Some(map) = value.as_object_mut() {
                            map.values_mut().for_each(draft4);
                        }
                    }
                    "items" | "allOf" | "anyOf" | "oneOf" => match value {
                        Value::Array(list) => list.iter_mut().for_each(draft4),
                        other => draft4(other),
                    },
                    "not" => draft4(value),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// What in a schema draft 4 does not know, by path: an empty list for a draft 4 schema.
pub fn draft4_violations(schema: &Value) -> Vec<String> {
    let mut found = vec![];
    walk_draft4(schema, "#", &mut found);
    found
}

fn walk_draft4(schema: &Value, at: &str, found: &mut Vec<String>) {
    const NOT_DRAFT4: [&str; 10] = [
        "const",
        "$defs",
        "contains",
        "propertyNames",
        "if",
        "then",
        "else",
        "examples",
        "prefixItems",
        "unevaluatedProperties",
    ];
    let Some(object) = schema.as_object() else {
        found.push(format!("{at}: a schema that is not an object"));
        return;
    };
    for (keyword, value) in object {
        let here = format!("{at}/{keyword}");
        if NOT_DRAFT4.contains(&keyword.as_str()) {
            found.push(format!("{here}: not a draft 4 keyword"));
        }
        match keyword.as_str() {
            "exclusiveMinimum" | "exclusiveMaximum" if !value.is_boolean() => {
                found.push(format!("{here}: a boolean in draft 4"))
            }
            "properties" | "patternProperties" | "definitions" => {
                for (name, sub) in value.as_object().into_iter().flatten() {
                    walk_draft4(sub, &format!("{here}/{name}"), found);
                }
            }
            "items" | "allOf" | "anyOf" | "oneOf" => match value {
                Value::Array(list) => {
                    for (i, sub) in list.iter().enumerate() {
                        walk_draft4(sub, &format!("{here}/{i}"), found);
                    }
                }
                other => walk_draft4(other, &here, found),
            },
            "not" => walk_draft4(value, &here, found),
            "additionalProperties" | "additionalItems" if !value.is_boolean() => {
                walk_draft4(value, &here, found)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(JsonSchema, serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Change {
        line_count: u32,
        note: Option<String>,
        anything: Value,
    }

    const SET: EventSet = EventSet {
        source: "bulkhead.things",
        types: &["ThingDone"],
    };

    #[test]
    fn a_contract_is_the_envelope_with_its_change_and_state_in_draft_4() {
        let contract = Contract::of::<Change, Change>(SET, "ThingDone", 2);
        assert_eq!(contract.path(), "things/ThingDone.v2.json");
        let schema = &contract.schema;
        assert_eq!(schema["$schema"], META_SCHEMA);
        assert_eq!(schema["properties"]["type"]["enum"], json!(["ThingDone"]));
        assert_eq!(schema["properties"]["schemaVersion"]["enum"], json!([2]));
        let change = contract.part("change");
        assert_eq!(change["properties"]["lineCount"]["type"], "integer");
        assert_eq!(change["properties"]["anything"], json!({}));
        let required = schema["required"].as_array().unwrap();
        for field in [
            "id",
            "type",
            "schemaVersion",
            "aggregate",
            "change",
            "state",
        ] {
            assert!(required.contains(&json!(field)), "{field} required");
        }
        assert_eq!(draft4_violations(schema), Vec::<String>::new());
    }

    #[test]
    fn what_draft_4_lacks_is_found() {
        let schema = json!({
            "properties": {
                "a": { "const": 1 },
                "b": { "type": "integer", "exclusiveMinimum": 0 },
                "c": true
            },
            "additionalProperties": false
        });
        let found = draft4_violations(&schema);
        assert_eq!(found.len(), 3, "{found:?}");
    }
}
