//! The compatibility gate: may a producer publish under the same `schemaVersion` with a new
//! schema?
//!
//! Two readers rely on a version's schema. Consumers read fields of it, so a field must not
//! disappear, change type or stop being guaranteed. The archive holds every event ever
//! published under it and replays them, so what old events hold must stay valid: a field
//! must not become required, a new field must not be required, and an enum must not lose a
//! value. Adding an optional field breaks neither. A break needs a new `schemaVersion`.

use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// One way a new schema breaks a consumer or an archived event, at a field's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Break {
    /// The field is gone (removed, or renamed: a rename is a removal and an addition).
    Removed { path: String },
    /// The field's JSON type changed.
    TypeChanged {
        path: String,
        old: String,
        new: String,
    },
    /// An optional field became required: archived events without it no longer match.
    NowRequired { path: String },
    /// A new field is required: archived events do not have it.
    AddedRequired { path: String },
    /// A required field became optional: consumers relied on it.
    NoLongerGuaranteed { path: String },
    /// An enum lost values (or a free value became an enum): archived events hold them.
    EnumNarrowed { path: String, lost: String },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::Removed { path } => write!(f, "{path}: removed or renamed"),
            Break::TypeChanged { path, old, new } => {
                write!(f, "{path}: type changed from {old} to {new}")
            }
            Break::NowRequired { path } => write!(f, "{path}: optional field made required"),
            Break::AddedRequired { path } => write!(f, "{path}: new field is required"),
            Break::NoLongerGuaranteed { path } => {
                write!(f, "{path}: required field made optional")
            }
            Break::EnumNarrowed { path, lost } => write!(f, "{path}: enum narrowed, {lost}"),
        }
    }
}

/// Every break from `old` to `new`, two schemas of one event type and version. Empty when
/// the new schema may ship under the same `schemaVersion`.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<Break> {
    let mut breaks = vec![];
    compare(old, new, "", &mut breaks);
    breaks
}

/// The JSON types a schema allows; empty for any.
pub(crate) fn types(schema: &Value) -> BTreeSet<String> {
    let mut types: BTreeSet<String> = match &schema["type"] {
        Value::String(t) => [t.clone()].into(),
        Value::Array(list) => list
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => BTreeSet::new(),
    };
    if types.is_empty() && schema.get("properties").is_some() {
        types.insert("object".into());
    }
    types
}

pub(crate) fn required(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(String::from))
        .collect()
}

pub(crate) fn properties(schema: &Value) -> Vec<(&String, &Value)> {
    schema["properties"]
        .as_object()
        .map(|p| p.iter().collect())
        .unwrap_or_default()
}

pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn show(types: &BTreeSet<String>) -> String {
    if types.is_empty() {
        "any".into()
    } else {
        types.iter().cloned().collect::<Vec<_>>().join("|")
    }
}

fn compare(old: &Value, new: &Value, path: &str, breaks: &mut Vec<Break>) {
    let at = if path.is_empty() { "(root)" } else { path };
    let (old_types, new_types) = (types(old), types(new));
    if old_types != new_types {
        breaks.push(Break::TypeChanged {
            path: at.into(),
            old: show(&old_types),
            new: show(&new_types),
        });
        return;
    }
    match (old["enum"].as_array(), new["enum"].as_array()) {
        (Some(old_values), Some(new_values)) => {
            let lost: Vec<String> = old_values
                .iter()
                .filter(|v| !new_values.contains(v))
                .map(Value::to_string)
                .collect();
            if !lost.is_empty() {
                breaks.push(Break::EnumNarrowed {
                    path: at.into(),
                    lost: format!("lost {}", lost.join(", ")),
                });
            }
        }
        (None, Some(_)) => breaks.push(Break::EnumNarrowed {
            path: at.into(),
            lost: "any value was allowed".into(),
        }),
        _ => {}
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        match (old[keyword].as_array(), new[keyword].as_array()) {
            (Some(o), Some(n)) if o.len() == n.len() => {
                for (i, (o, n)) in o.iter().zip(n).enumerate() {
                    compare(o, n, &format!("{at}/{keyword}/{i}"), breaks);
                }
            }
            (None, None) => {}
            _ => breaks.push(Break::TypeChanged {
                path: at.into(),
                old: format!("{keyword} {}", old[keyword]),
                new: format!("{keyword} {}", new[keyword]),
            }),
        }
    }
    let (old_required, new_required) = (required(old), required(new));
    let new_properties = properties(new);
    for (field, old_field) in properties(old) {
        let here = join(path, field);
        let Some((_, new_field)) = new_properties.iter().find(|(name, _)| *name == field) else {
            breaks.push(Break::Removed { path: here });
            continue;
        };
        match (old_required.contains(field), new_required.contains(field)) {
            (false, true) => breaks.push(Break::NowRequired { path: here.clone() }),
            (true, false) => breaks.push(Break::NoLongerGuaranteed { path: here.clone() }),
            _ => {}
        }
        compare(old_field, new_field, &here, breaks);
    }
    for (field, _) in &new_properties {
        if old
            .get("properties")
            .is_some_and(|p| p.get(field).is_none())
            && new_required.contains(*field)
        {
            breaks.push(Break::AddedRequired {
                path: join(path, field),
            });
        }
    }
    if let (Some(o), Some(n)) = (old.get("items"), new.get("items")) {
        compare(o, n, &format!("{path}[]"), breaks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The state of an order, as a producer might first publish it.
    fn order() -> Value {
        json!({
            "type": "object",
            "required": ["id", "status", "lines", "totalCents"],
            "properties": {
                "id": { "type": "string" },
                "note": { "type": ["string", "null"] },
                "status": { "type": "string", "enum": ["PLACED", "SHIPPED", "CANCELLED"] },
                "totalCents": { "type": "integer", "format": "int64" },
                "lines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["sku", "quantity"],
                        "properties": {
                            "sku": { "type": "string" },
                            "quantity": { "type": "integer" }
                        }
                    }
                }
            }
        })
    }

    fn edit(change: impl FnOnce(&mut Value)) -> Value {
        let mut schema = order();
        change(&mut schema);
        schema
    }

    fn drop_required(schema: &mut Value, field: &str) {
        let list = schema["required"].as_array_mut().unwrap();
        list.retain(|f| f != field);
    }

    #[test]
    fn each_kind_of_break_is_caught_and_an_optional_addition_passes() {
        let cases: Vec<(&str, Value, Vec<Break>)> = vec![
            ("unchanged", order(), vec![]),
            (
                "an optional field added",
                edit(|s| s["properties"]["giftWrap"] = json!({ "type": "boolean" })),
                vec![],
            ),
            (
                "an enum widened",
                edit(|s| {
                    s["properties"]["status"]["enum"] =
                        json!(["PLACED", "SHIPPED", "CANCELLED", "LOST"])
                }),
                vec![],
            ),
            (
                "a field removed",
                edit(|s| {
                    s["properties"].as_object_mut().unwrap().remove("note");
                }),
                vec![Break::Removed {
                    path: "note".into(),
                }],
            ),
            (
                "a field renamed",
                edit(|s| {
                    let total = s["properties"]
                        .as_object_mut()
                        .unwrap()
                        .remove("totalCents")
                        .unwrap();
                    s["properties"]["total"] = total;
                    s["required"] = json!(["id", "status", "lines", "total"]);
                }),
                vec![
                    Break::Removed {
                        path: "totalCents".into(),
                    },
                    Break::AddedRequired {
                        path: "total".into(),
                    },
                ],
            ),
            (
                "a nested field removed",
                edit(|s| {
                    s["properties"]["lines"]["items"]["properties"]
                        .as_object_mut()
                        .unwrap()
                        .remove("quantity");
                }),
                vec![Break::Removed {
                    path: "lines[].quantity".into(),
                }],
            ),
            (
                "a type changed",
                edit(|s| s["properties"]["totalCents"] = json!({ "type": "string" })),
                vec![Break::TypeChanged {
                    path: "totalCents".into(),
                    old: "integer".into(),
                    new: "string".into(),
                }],
            ),
            (
                "a field made nullable",
                edit(|s| s["properties"]["id"]["type"] = json!(["string", "null"])),
                vec![Break::TypeChanged {
                    path: "id".into(),
                    old: "string".into(),
                    new: "null|string".into(),
                }],
            ),
            (
                "an optional field made required",
                edit(|s| s["required"] = json!(["id", "status", "lines", "totalCents", "note"])),
                vec![Break::NowRequired {
                    path: "note".into(),
                }],
            ),
            (
                "a required field made optional",
                edit(|s| drop_required(s, "totalCents")),
                vec![Break::NoLongerGuaranteed {
                    path: "totalCents".into(),
                }],
            ),
            (
                "a required field added",
                edit(|s| {
                    s["properties"]["currency"] = json!({ "type": "string" });
                    s["required"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!("currency"));
                }),
                vec![Break::AddedRequired {
                    path: "currency".into(),
                }],
            ),
            (
                "an enum narrowed",
                edit(|s| s["properties"]["status"]["enum"] = json!(["PLACED", "SHIPPED"])),
                vec![Break::EnumNarrowed {
                    path: "status".into(),
                    lost: "lost \"CANCELLED\"".into(),
                }],
            ),
            (
                "a free string made an enum",
                edit(|s| s["properties"]["id"]["enum"] = json!(["o-1"])),
                vec![Break::EnumNarrowed {
                    path: "id".into(),
                    lost: "any value was allowed".into(),
                }],
            ),
        ];
        for (case, new, expected) in cases {
            assert_eq!(breaking_changes(&order(), &new), expected, "{case}");
        }
    }

    #[test]
    fn breaks_read_as_sentences() {
        let text = Break::NowRequired {
            path: "state.note".into(),
        }
        .to_string();
        assert_eq!(text, "state.note: optional field made required");
    }
}
