//! The OpenAPI document (`openapi.json`) against the system: it is what the services' route
//! declarations generate, it names exactly the routes of `template.yaml` (which are what the
//! devstack's router serves), the devstack serves it, every documented operation is really
//! routed, answers a status the document declares, and every operation is secured, by roles
//! that exist, with its errors in problem+json.

use bulkhead::http::Role;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use system_tests::*;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn document_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json")).unwrap()
}

fn document() -> Value {
    serde_json::from_str(&document_text()).expect("openapi.json is JSON")
}

/// The command that rewrites `openapi.json` from the code.
const REGENERATE: &str = "cargo run -p devstack -- openapi > openapi.json";

#[test]
fn the_committed_document_is_the_one_the_code_generates() {
    let committed = document_text();
    let generated = devstack::openapi::text();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "openapi.json is not what the routes' declarations generate (first difference at \
             line {}: committed {:?}, generated {:?}). It is generated, not edited: change the \
             #[utoipa::path] declarations, then regenerate it with\n\n    {REGENERATE}\n",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end>"),
            generated.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

/// One documented operation: its method (upper case), path template and definition.
struct Operation {
    method: String,
    path: String,
    op: Value,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                out.push(Operation {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    op: op.clone(),
                });
            }
        }
    }
    out
}

/// Follows a local `$ref` (`#/components/...`), if the value is one.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{reference} is not a local reference"));
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} points at nothing"));
            resolve(doc, target)
        }
        None => value,
    }
}

/// Every `$ref` anywhere in a value.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_has_exactly_the_routes_of_the_template() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|o| (o.method, o.path))
        .collect();
    let template = devstack::template::Template::load(&template_path()).unwrap();
    let routed: BTreeSet<(String, String)> = template
        .functions
        .iter()
        .flat_map(|f| &f.routes)
        .map(|r| (r.method.to_uppercase(), r.path.clone()))
        .collect();
    assert!(
        routed.len() >= 15,
        "the template has too few routes: {routed:?}"
    );
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from openapi.json: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
}

#[test]
fn every_operation_is_secured_and_answers_its_errors_in_problem_json() {
    let doc = document();
    let mut refs = vec![];
    references(&doc, &mut refs);
    for r in &refs {
        resolve(&doc, &json!({ "$ref": r }));
    }
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let problem = &doc["components"]["schemas"]["Problem"];
    for required in ["type", "title", "status", "code", "detail"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&json!(required)),
            "Problem must require {required}"
        );
    }
    let mut ids = BTreeSet::new();
    for Operation { method, path, op } in operations(&doc) {
        let name = format!("{method} {path}");
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(
            ids.insert(id.to_string()),
            "{name}: operationId {id:?} is not unique"
        );

        let security = op["security"].as_array().unwrap_or_else(|| {
            panic!("{name} declares no security of its own");
        });
        assert!(!security.is_empty(), "{name}: empty security");
        for requirement in security {
            let requirement = requirement.as_object().unwrap();
            assert!(!requirement.is_empty(), "{name}: an anonymous alternative");
            for (scheme, roles) in requirement {
                let scheme = &schemes[scheme];
                assert_eq!(
                    (&scheme["type"], &scheme["scheme"], &scheme["bearerFormat"]),
                    (&json!("http"), &json!("bearer"), &json!("JWT")),
                    "{name}: not a bearer JWT scheme"
                );
                for role in roles.as_array().expect("a list of roles") {
                    let role = role.as_str().unwrap_or_default();
                    assert!(role.parse::<Role>().is_ok(), "{name}: {role:?} is no Role");
                }
            }
        }
        let anyone = security.iter().any(|r| {
            r.as_object()
                .unwrap()
                .values()
                .all(|roles| roles == &json!([]))
        });
        assert_eq!(
            op["responses"].get("403").is_some(),
            !anyone,
            "{name}: 403 is declared exactly when a role is needed"
        );

        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{name}: no 2xx"
        );
        for status in ["401", "503"] {
            assert!(responses.contains_key(status), "{name}: no {status}");
        }
        for (status, response) in responses {
            let response = resolve(&doc, response);
            let content = response["content"].as_object();
            if status.starts_with('4') || status.starts_with('5') {
                let content = content.unwrap_or_else(|| panic!("{name} {status}: no content"));
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{name} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{name} {status}"
                );
            } else if status.starts_with('2') {
                let content = content.unwrap_or_else(|| panic!("{name} {status}: no content"));
                assert!(content.contains_key("application/json"), "{name} {status}");
            }
        }

        let params: Vec<&Value> = op["parameters"]
            .as_array()
            .map(|p| p.iter().map(|p| resolve(&doc, p)).collect())
            .unwrap_or_default();
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let declared: BTreeSet<&str> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{name}: path parameters are required");
                p["name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(in_path, declared, "{name}: path parameters");
    }
}

/// A request for the operation that the router should accept: path parameters filled with
/// a valid id, required query parameters with their example, and `{}` as a body.
fn request_for(doc: &Value, operation: &Operation) -> (String, Option<Value>) {
    let mut path = operation.path.clone();
    let mut query = vec![];
    for param in operation.op["parameters"].as_array().into_iter().flatten() {
        let param = resolve(doc, param);
        let name = param["name"].as_str().unwrap();
        match param["in"].as_str().unwrap() {
            "path" => path = path.replace(&format!("{{{name}}}"), "x1"),
            "query" if param["required"] == true => {
                let example = param["example"].as_str().unwrap_or_else(|| {
                    panic!("{name}: a required query parameter needs an example")
                });
                query.push(format!("{name}={example}"));
            }
            _ => {}
        }
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let body = operation.op.get("requestBody").map(|_| json!({}));
    (path, body)
}

#[tokio::test]
async fn the_devstack_serves_the_document_and_routes_every_operation() {
    let stack = Stack::start().await;
    let reply = Stack::reply(stack.raw(Method::GET, "/openapi.json")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/json"
    );
    let doc = document();
    assert_eq!(reply.body, doc, "the devstack serves another document");

    // The check below can fail: an unrouted path is the gateway's no-route.
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
    let everyone = stack.token("openapi", &roles);
    stack
        .send(Method::GET, "/products", Some(&everyone), None, &[])
        .await
        .problem(404, Some("no-route"));

    let operations = operations(&doc);
    assert!(operations.len() >= 15);
    for operation in &operations {
        let name = format!("{} {}", operation.method, operation.path);
        let method = Method::from_bytes(operation.method.as_bytes()).unwrap();
        let (path, body) = request_for(&doc, operation);
        let declared: BTreeSet<u16> = operation.op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|s| s.parse().unwrap())
            .collect();

        let reply = stack
            .send(method.clone(), &path, Some(&everyone), body.clone(), &[])
            .await;
        let status = reply.status.as_u16();
        assert!(
            !(status == 404 && reply.body["code"] == "no-route"),
            "{name}: the router does not serve {path}: {:?}",
            reply.body
        );
        assert!(
            declared.contains(&status),
            "{name}: {path} answered {status}, which the document does not declare: {:?}",
            reply.body
        );
        if status >= 400 {
            reply.problem(status, None);
        }

        // Without a token the gateway refuses it, as the document says.
        stack
            .send(method, &path, None, body, &[])
            .await
            .problem(401, Some("unauthorized"));
    }
}
