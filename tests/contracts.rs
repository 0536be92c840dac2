//! Event contracts, held on both sides: the committed schemas (`shared/contracts/`) are
//! what the producers' types generate, a committed version never changes in a way that
//! breaks its consumers or archived events, every listener reads only what the producers
//! guarantee, the template's schema registry holds the same schemas, the README's impact
//! table is what `devstack contracts --impact` prints, and the devstack refuses to publish
//! an event that its contract does not describe or that no contract covers.

use bulkhead::batch::Batch;
use bulkhead::bus::{Bus, BusEntry};
use bulkhead::event::{EventSet, EventToPublish};
use bulkhead::listener::{Delivered, listen};
use bulkhead::trigger::{Change, Trigger};
use devstack::contracts::{self, impact, registry, validate};
use devstack::infra::Infra;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn committed_dir() -> PathBuf {
    root().join("shared/contracts")
}

/// A copy of the committed contracts to tamper with.
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in contracts::committed(&committed_dir()).unwrap() {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    dir
}

fn edit(dir: &Path, path: &str, change: impl FnOnce(&mut Value)) {
    let file = dir.join(path);
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    change(&mut schema);
    std::fs::write(file, bulkhead::contract::text(&schema)).unwrap();
}

#[test]
fn the_committed_contracts_are_what_the_producers_types_generate() {
    let differences = contracts::differences(&committed_dir()).unwrap();
    assert!(
        differences.is_empty(),
        "shared/contracts differs from the declarations (cargo run -p devstack -- contracts \
         --out shared/contracts):\n{}",
        differences.join("\n")
    );
    let files = contracts::files().unwrap();
    let published: usize = devstack::registry::contracts().len();
    assert_eq!(
        files.len(),
        published + 1,
        "a file per contract, and the envelope"
    );
}

#[test]
fn the_gate_tells_a_compatible_change_from_a_break_and_refuses_to_write_a_break() {
    // The code now leaves out a field the committed version has: a break.
    let dir = copy();
    edit(dir.path(), "orders/OrderPlaced.v1.json", |s| {
        s["properties"]["state"]["properties"]["discountCents"] = json!({ "type": "integer" });
    });
    let found = contracts::differences(dir.path()).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("needs a new schemaVersion")
            && found[0].contains("state.discountCents: removed"),
        "{found:?}"
    );
    let refused = contracts::write(dir.path()).unwrap_err().to_string();
    assert!(refused.contains("new schemaVersion"), "{refused}");
    let kept = std::fs::read_to_string(dir.path().join("orders/OrderPlaced.v1.json")).unwrap();
    assert!(kept.contains("discountCents"), "nothing written");

    // The code now adds an optional field (here: the committed copy lacks one): compatible.
    let dir = copy();
    edit(dir.path(), "orders/OrderShipped.v1.json", |s| {
        s["properties"]
            .as_object_mut()
            .unwrap()
            .remove("correlationId");
    });
    let found = contracts::differences(dir.path()).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("differs compatibly"), "{found:?}");
    contracts::write(dir.path()).unwrap();
    assert!(contracts::differences(dir.path()).unwrap().is_empty());

    // A published version that is no longer declared, and one never committed.
    let dir = copy();
    std::fs::write(dir.path().join("orders/OrderRefunded.v1.json"), "{}").unwrap();
    std::fs::remove_file(dir.path().join("catalog/ProductCreated.v1.json")).unwrap();
    let found = contracts::differences(dir.path()).unwrap().join("\n");
    assert!(
        found.contains("orders/OrderRefunded.v1.json: committed but no longer declared"),
        "{found}"
    );
    assert!(
        found.contains("catalog/ProductCreated.v1.json: not committed"),
        "{found}"
    );
}

#[test]
fn every_listener_reads_only_what_the_producers_guarantee() {
    let dir = tempfile::tempdir().unwrap();
    let (_template, _infra, functions) = system_tests::embedded_system(dir.path());
    let gaps = impact::gaps(&functions).unwrap();
    assert!(
        gaps.is_empty(),
        "consumers rely on more than producers promise:\n{}",
        gaps.join("\n")
    );
}

/// A consumer that reads a discount the orders service never publishes, requires the
/// correlation-free `placedAt` as a number, and takes an event nobody publishes.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Greedy {
    discount_cents: i64,
    placed_at: i64,
    status: String,
}

async fn ignore(_: (), _: Delivered, _: Greedy) -> bulkhead::Result<()> {
    Ok(())
}

#[test]
fn a_consumer_that_relies_on_more_than_is_published_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (_template, _infra, mut functions) = system_tests::embedded_system(dir.path());
    let (spec, _) = functions.listeners[0].clone();
    const SET: EventSet = EventSet {
        source: "bulkhead.orders",
        types: &["OrderShipped", "OrderRefunded"],
    };
    let greedy = listen(()).on(SET, ignore).listener();
    functions.listeners = vec![(spec.clone(), greedy)];
    let gaps = impact::gaps(&functions).unwrap();
    let name = &spec.name;
    assert_eq!(
        gaps,
        [
            format!(
                "{name} reads OrderShipped v2: state.discountCents: read, but the producer has no such field"
            ),
            format!(
                "{name} reads OrderShipped v2: state.placedAt: the reader takes integer, the producer sends string"
            ),
            format!(
                "{name}: declares OrderRefunded from bulkhead.orders, which no producer publishes"
            ),
        ]
    );
}

#[test]
fn the_templates_schema_registry_holds_the_committed_contracts() {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let declared = contracts::declared().unwrap();
    assert!(
        registry::matches(&template, &declared).unwrap(),
        "template.yaml's schemas differ from the contracts (cargo run -p devstack -- contracts \
         --out shared/contracts)"
    );
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &template.replace("!GetAtt BulkheadSchemaRegistry.RegistryName", "registry"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let resources = yaml["Resources"].as_mapping().unwrap();
    let schemas: Vec<_> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::EventSchemas::Schema"))
        .collect();
    assert_eq!(
        schemas.len(),
        declared.len(),
        "one schema resource per contract"
    );
    for contract in declared.values() {
        let resource = &yaml["Resources"][registry::logical_id(contract).as_str()];
        let content: Value =
            serde_json::from_str(resource["Properties"]["Content"].as_str().unwrap()).unwrap();
        let committed: Value = serde_json::from_str(
            &std::fs::read_to_string(committed_dir().join(contract.path())).unwrap(),
        )
        .unwrap();
        assert_eq!(content, committed, "{}", contract.path());
        assert_eq!(resource["Properties"]["Type"], "JSONSchemaDraft4");
    }
}

#[test]
fn the_readme_impact_table_is_what_the_command_prints() {
    let dir = tempfile::tempdir().unwrap();
    let (_template, _infra, functions) = system_tests::embedded_system(dir.path());
    let table = impact::table(&functions).unwrap();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(&table),
        "README.md's impact table differs from `cargo run -p devstack -- contracts --impact`:\n{table}"
    );
    let rows = table.lines().count() - 2;
    assert!(rows > 20, "a row per field: {rows}");
}

fn entry(event: &Value) -> BusEntry {
    BusEntry {
        source: "bulkhead.orders".into(),
        detail_type: event["type"].as_str().unwrap().into(),
        detail: event.to_string(),
        time: "2026-11-22T10:00:00.000Z".into(),
    }
}

fn sample_events() -> Vec<Value> {
    let trigger_events =
        bulkhead::trigger::events_of(orders::acl::acl, &orders::acl::samples().unwrap()).unwrap();
    let catalog =
        bulkhead::trigger::events_of(catalog::acl::acl, &catalog::acl::samples().unwrap()).unwrap();
    trigger_events
        .iter()
        .chain(&catalog)
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

#[test]
fn every_sample_event_matches_its_contract() {
    let contracts = validate::Contracts::load(&committed_dir()).unwrap();
    let events = sample_events();
    assert!(events.len() >= 9);
    for event in events {
        let mut entry = entry(&event);
        if event["aggregate"]["type"] == "product" {
            entry.source = "bulkhead.catalog".into();
        }
        contracts.check(&entry).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn the_devstack_refuses_an_event_its_contract_does_not_describe_and_publishes_nothing_after_it()
 {
    let dir = tempfile::tempdir().unwrap();
    let (template, infra, _functions) = system_tests::embedded_system(dir.path());
    let contracts = Arc::new(validate::Contracts::load(&committed_dir()).unwrap());
    let bus = validate::ContractBus::new(infra.bus(&template.buses[0]).unwrap(), contracts.clone());
    let good: Vec<Value> = sample_events()
        .into_iter()
        .filter(|e| e["aggregate"]["type"] == "order")
        .collect();
    let mut renamed = good[1].clone();
    let total = renamed["state"]
        .as_object_mut()
        .unwrap()
        .remove("total")
        .unwrap();
    renamed["state"]["totalCents"] = total["amountCents"].clone();
    let mut unversioned = good[2].clone();
    unversioned["schemaVersion"] = json!(9);
    let mut undeclared = good[2].clone();
    undeclared["type"] = json!("OrderRefunded");
    for (bad, why) in [
        (renamed, "does not match its contract"),
        (
            unversioned,
            "no contract covers bulkhead.orders OrderLineRemoved v9",
        ),
        (
            undeclared,
            "no contract covers bulkhead.orders OrderRefunded v2",
        ),
    ] {
        let before = infra.archived().await.unwrap().len();
        let entries = [entry(&good[0]), entry(&bad), entry(&good[3])];
        let outcomes = bus.put_events(&entries).await.unwrap();
        assert!(outcomes[0].is_ok());
        let refused = outcomes[1].as_ref().unwrap_err();
        assert_eq!(refused.code, "MalformedDetail");
        assert!(refused.message.contains(why), "{}", refused.message);
        assert!(
            outcomes[2].is_err(),
            "nothing after the refused entry is put"
        );
        assert_eq!(
            infra.archived().await.unwrap().len(),
            before + 1,
            "only the good entry before it"
        );
    }
}

#[test]
fn a_malformed_or_missing_contract_is_a_clear_error() {
    let dir = copy();
    std::fs::write(dir.path().join("orders/OrderShipped.v1.json"), "{ not json").unwrap();
    let error = validate::Contracts::load(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("OrderShipped.v1.json: not JSON"), "{error}");

    let dir = copy();
    std::fs::write(
        dir.path().join("orders/OrderShipped.v1.json"),
        r#"{"type": 5}"#,
    )
    .unwrap();
    let error = validate::Contracts::load(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("OrderShipped.v1.json: not a draft 4 schema"),
        "{error}"
    );

    let dir = copy();
    std::fs::write(dir.path().join("orders/OrderShipped.json"), "{}").unwrap();
    let error = validate::Contracts::load(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("not named <service>/<EventType>.v<N>.json"),
        "{error}"
    );

    let empty = tempfile::tempdir().unwrap();
    let error = validate::Contracts::load(empty.path())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("no contracts in"), "{error}");
}

/// The orders ACL, but an `OrderShipped` loses its state's `total`.
fn careless(change: Change) -> bulkhead::Result<Option<EventToPublish>> {
    let Some(event) = orders::acl::acl(change)? else {
        return Ok(None);
    };
    let mut event = event.parsed()?;
    if event.event_type == "OrderShipped" {
        event.state.as_object_mut().unwrap().remove("total");
    }
    Ok(Some(event.to_publish()?))
}

#[tokio::test]
async fn a_trigger_whose_event_breaks_its_contract_fails_at_that_record_and_publishes_it_never() {
    let dir = tempfile::tempdir().unwrap();
    let (template, infra, _functions) = system_tests::embedded_system(dir.path());
    let contracts = Arc::new(validate::Contracts::load(&committed_dir()).unwrap());
    let bus = validate::ContractBus::new(infra.bus(&template.buses[0]).unwrap(), contracts);
    let trigger = Trigger::new(Arc::new(bus), orders::acl::PUBLISHES, careless);
    let history = orders::acl::samples().unwrap().remove(0);
    let records: Vec<Value> = history
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let keys = bulkhead::store::Key::of(item).unwrap().to_item();
            let mut change = json!({ "Keys": keys, "NewImage": item, "SequenceNumber": format!("{i}"), "SizeBytes": 1 });
            if i > 0 {
                change["OldImage"] = serde_json::to_value(&history[i - 1]).unwrap();
            }
            let name = if i == 0 { "INSERT" } else { "MODIFY" };
            json!({ "eventID": format!("{i}"), "eventName": name, "awsRegion": "us-east-1", "dynamodb": change })
        })
        .collect();
    let event = Batch::from_json(json!({ "Records": records }).to_string()).unwrap();
    let response = trigger.handle_batch(event, None).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        [Some("3".to_string())],
        "the shipment, the fourth record, fails"
    );
    let published: Vec<String> = infra
        .archived()
        .await
        .unwrap()
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        published,
        ["OrderPlaced", "OrderLineAdded", "OrderLineRemoved"]
    );
}

#[test]
fn each_trigger_has_a_contract_for_exactly_the_events_it_declares() {
    let dir = tempfile::tempdir().unwrap();
    let (_template, _infra, functions) = system_tests::embedded_system(dir.path());
    let declared = contracts::declared().unwrap();
    let newest = impact::newest(&declared);
    for (function, trigger) in &functions.triggers {
        let publishes = trigger.publishes();
        let mut covered: Vec<&str> = newest
            .keys()
            .filter(|(source, _)| *source == publishes.source)
            .map(|(_, event_type)| *event_type)
            .collect();
        let mut types = publishes.types.to_vec();
        covered.sort();
        types.sort();
        assert_eq!(
            covered, types,
            "{}: contracts for its events",
            function.name
        );
    }
    assert_eq!(newest.len(), 9, "9 public event types");
}

#[test]
fn an_older_version_that_no_upcaster_raises_fails_its_readers() {
    let dir = tempfile::tempdir().unwrap();
    let (_template, _infra, functions) = system_tests::embedded_system(dir.path());
    let declared = contracts::declared().unwrap();
    let raised_by_nobody = |_: &str, _: &str, _: u32| false;
    let gaps = impact::gaps_with(&functions, &declared, raised_by_nobody);
    // Every listener of order events, for each of the six types it reads at v2.
    let readers: usize = functions
        .listeners
        .iter()
        .map(|(_, l)| {
            [
                "OrderPlaced",
                "OrderLineAdded",
                "OrderLineRemoved",
                "OrderCancelled",
                "OrderShipped",
                "OrderDelivered",
            ]
            .iter()
            .filter(|t| l.takes("bulkhead.orders", t))
            .count()
        })
        .sum();
    assert!(readers >= 6 * 3, "{readers}");
    assert_eq!(gaps.len(), readers, "{gaps:#?}");
    assert!(
        gaps.iter()
            .all(|g| g.ends_with("and the archive's v1 has no upcaster to raise it")),
        "{gaps:#?}"
    );
}
