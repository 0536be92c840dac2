//! The API's OpenAPI document: the parts of every API function of the registry, merged.

use crate::registry::{Handler, registry};

/// The whole document, its parts in the order of their functions' names.
pub fn document() -> serde_json::Value {
    let mut apis: Vec<_> = registry()
        .into_iter()
        .filter_map(|(name, handler)| match handler {
            Handler::Http(_, fragment) => Some((name, fragment)),
            _ => None,
        })
        .collect();
    apis.sort_by_key(|(name, _)| *name);
    bulkhead::openapi::document(apis.into_iter().map(|(_, fragment)| fragment()))
}

/// The document as `openapi.json` holds it: pretty JSON and a final newline.
pub fn text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("the document serializes");
    text.push('\n');
    text
}
