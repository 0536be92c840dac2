//! The EventBridge schema registry in `template.yaml`: one `AWS::EventSchemas::Schema` per
//! event type and version, its content the committed contract, at the end of its producer's
//! block between two marker lines, written by `devstack contracts --out DIR`.

use super::problem;
use bulkhead::contract::Contract;
use std::collections::BTreeMap;

/// The marker lines around a producer's schemas.
pub fn markers(service: &str) -> (String, String) {
    (
        format!(
            "  # {service} contracts: generated from shared/contracts by `devstack contracts`; do not edit"
        ),
        format!("  # end of {service} contracts"),
    )
}

/// The logical id of a contract's schema: `OrdersOrderPlacedV1Schema`.
pub fn logical_id(contract: &Contract) -> String {
    let service = contract.service();
    let mut chars = service.chars();
    let service: String = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    format!(
        "{service}{}V{}Schema",
        contract.event_type, contract.version
    )
}

/// The name of a contract's schema in the registry: `bulkhead.orders@OrderPlaced-v1`.
pub fn schema_name(contract: &Contract) -> String {
    format!(
        "{}@{}-v{}",
        contract.source, contract.event_type, contract.version
    )
}

/// The resources of a producer's contracts, as the template holds them.
fn block(contracts: &[&Contract]) -> crate::Result<String> {
    let mut text = String::new();
    for contract in contracts {
        let compact =
            serde_json::to_string(&contract.schema).map_err(|e| problem(e.to_string()))?;
        // A JSON string is a YAML double-quoted scalar.
        let content = serde_json::to_string(&compact).map_err(|e| problem(e.to_string()))?;
        text.push_str(&format!(
            "  {}:\n    Type: AWS::EventSchemas::Schema\n    Properties:\n      \
             RegistryName: !GetAtt BulkheadSchemaRegistry.RegistryName\n      \
             SchemaName: {}\n      Type: JSONSchemaDraft4\n      \
             Description: {} schemaVersion {}, from shared/contracts/{}\n      \
             Content: {content}\n",
            logical_id(contract),
            schema_name(contract),
            contract.event_type,
            contract.version,
            contract.path(),
        ));
    }
    Ok(text)
}

/// `template` with every producer's schemas written between its markers. A producer
/// without both markers is an error: add them at the end of its block.
pub fn rewrite(template: &str, contracts: &BTreeMap<String, Contract>) -> crate::Result<String> {
    let mut by_service: BTreeMap<&str, Vec<&Contract>> = BTreeMap::new();
    for contract in contracts.values() {
        by_service
            .entry(contract.service())
            .or_default()
            .push(contract);
    }
    let mut text = template.to_string();
    for (service, contracts) in by_service {
        let (start, end) = markers(service);
        let missing = || {
            problem(format!(
                "template.yaml has no lines {start:?} and {end:?} for {service}'s schemas: add \
                 them at the end of its block"
            ))
        };
        let from = text.find(&format!("{start}\n")).ok_or_else(missing)? + start.len() + 1;
        let to = from + text[from..].find(&format!("{end}\n")).ok_or_else(missing)?;
        text.replace_range(from..to, &block(&contracts)?);
    }
    Ok(text)
}

/// Whether the template's schemas are the committed contracts, in the registry's format.
pub fn matches(template: &str, contracts: &BTreeMap<String, Contract>) -> crate::Result<bool> {
    Ok(rewrite(template, contracts)? == template)
}

/// What a schema resource's `Content` must be: the contract, compact.
pub fn content(contract: &Contract) -> String {
    serde_json::to_string(&contract.schema).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead::event::EventSet;

    #[test]
    fn a_producers_schemas_go_between_its_markers_and_nowhere_else() {
        const SET: EventSet = EventSet {
            source: "bulkhead.things",
            types: &["ThingDone"],
        };
        let c = Contract::of::<u32, String>(SET, "ThingDone", 3);
        let contracts = BTreeMap::from([(c.path(), c.clone())]);
        let (start, end) = markers("things");
        let template = format!("Resources:\n  A: 1\n{start}\n  Old: 2\n{end}\n  B: 3\n");
        let written = rewrite(&template, &contracts).unwrap();
        assert!(written.contains("  ThingsThingDoneV3Schema:\n"));
        assert!(written.contains("SchemaName: bulkhead.things@ThingDone-v3\n"));
        assert!(!written.contains("Old: 2"));
        assert!(written.ends_with(&format!("{end}\n  B: 3\n")));
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            &written.replace("!GetAtt BulkheadSchemaRegistry.RegistryName", "r"),
        )
        .unwrap();
        let text = yaml["Resources"]["ThingsThingDoneV3Schema"]["Properties"]["Content"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(text, content(&c));
        assert!(matches(&written, &contracts).unwrap());
        assert!(rewrite("Resources: {}\n", &contracts).is_err());
    }
}
