//! The API's OpenAPI document, from the same declarations as the routers.
//!
//! A service declares each operation once, with `#[utoipa::path]` on its handler, and
//! gathers them with `utoipa_axum::routes!` into an [`OpenApiRouter`]. From that one value,
//! [`router`] builds the axum router (and enforces each operation's roles, read from its
//! security requirement), and [`Fragment::new`] takes the service's part of the document.
//! [`document`] merges the parts and adds what every operation shares:
//!
//! - the bearer JWT scheme, and `Problem` for every 4xx and 5xx;
//! - 400, 401, 413 and 503 on every operation, 403 on every one that needs a role (the
//!   gateway, the extractors and the role check answer them, whatever the handler);
//! - an error status declared without a description is the shared response of that status;
//! - `Idempotent-Replayed` on the successes of operations that take `Idempotency-Key`,
//!   and the shared `ETag` header wherever a response names one;
//! - response objects are closed (`additionalProperties: false`): serde writes exactly
//!   their fields, and `#[serde(flatten)]` parts are merged into one object.

use crate::http::{Caller, Problem, Role, with_fallbacks};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

/// The name of the security scheme; its scopes are the roles that may call an operation.
pub const BEARER: &str = "bearerAuth";

/// The headers of a command: optimistic concurrency, idempotency and correlation.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct CommandHeaders {
    /// Optimistic concurrency: the version the command expects, as `3`, `"3"` or `W/"3"`;
    /// `*` means any version. A stale version answers 412 `version-mismatch` with
    /// `currentVersion`; anything that is not a version number answers 400
    /// `invalid-if-match`. Without it, a command applies to the current state and retries a
    /// lost race up to 8 times, then answers 409 `conflict`.
    #[param(rename = "If-Match", example = "1")]
    if_match: Option<String>,
    /// 1 to 255 visible ASCII characters (else 400 `invalid-idempotency-key`), scoped to the
    /// caller and kept 24 hours. A repeat with the same method, path and body answers the
    /// first response again with `Idempotent-Replayed: true` and applies nothing; the same key
    /// with a different request answers 422 `idempotency-key-reused`.
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    idempotency_key: Option<String>,
    /// Carried into the events a command publishes as `correlationId` (ignored when empty or
    /// over 128 characters; the request id is used instead).
    #[param(rename = "X-Correlation-Id")]
    correlation_id: Option<String>,
}

/// The schema of a `u64` parameter (for `#[param(schema_with = ...)]`): an integer from 0,
/// without utoipa's `format: int64`, which would cap it at `i64::MAX`, below what the
/// handler accepts. [`document`] moves the description to the parameter.
pub fn unsigned(description: &str) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .description(Some(description))
        .build()
}

/// Who may call each routed operation, by `METHOD /path`: the roles, any of which will do,
/// or none for any caller with a valid token.
type Access = HashMap<String, Vec<Role>>;

/// The router of a service's declared routes, with its state. Before a handler runs, the
/// caller must be authenticated (401) and have one of the roles of the operation's security
/// requirement (403).
///
/// Panics when an operation declares no security or a role that is not a [`Role`]: like
/// axum's own overlapping routes, a mistake in the declarations that every test catches.
pub fn router<S: Clone + Send + Sync + 'static>(
    routes: OpenApiRouter<S>,
    state: S,
) -> axum::Router {
    let (router, doc) = routes.split_for_parts();
    let access = Arc::new(access(&doc));
    let router = router
        .route_layer(axum::middleware::from_fn_with_state(access, authorize))
        .with_state(state);
    with_fallbacks(router).layer(axum::middleware::from_fn(crate::http::observe))
}

fn access(doc: &utoipa::openapi::OpenApi) -> Access {
    let paths = serde_json::to_value(&doc.paths).expect("paths serialize");
    let mut access = Access::new();
    for (path, method, op) in operations(&paths) {
        let name = format!("{} {path}", method.to_uppercase());
        let requirements = op["security"]
            .as_array()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| panic!("{name} declares no security"));
        let mut roles = vec![];
        let mut anyone = false;
        for requirement in requirements {
            let scopes = requirement[BEARER]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: a security requirement without {BEARER}"));
            anyone |= scopes.is_empty();
            for scope in scopes {
                let role = scope.as_str().unwrap_or_default().parse();
                roles.push(role.unwrap_or_else(|e| panic!("{name}: {e}")));
            }
        }
        access.insert(name, if anyone { vec![] } else { roles });
    }
    access
}

async fn authorize(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &()).await {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    // axum answers HEAD with the GET handler.
    let method = if parts.method == Method::HEAD {
        Method::GET
    } else {
        parts.method.clone()
    };
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let Some(roles) = route.and_then(|r| access.get(&format!("{method} {r}"))) else {
        tracing::error!(?route, %method, "a routed operation without declared access");
        return Problem::internal().into_response();
    };
    if !roles.is_empty() && !roles.iter().any(|r| caller.has_role(*r)) {
        let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
        return Problem::forbidden(&names.join(" or ")).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// One service's part of the document: its operations under its tag, and their schemas.
pub struct Fragment {
    tag: String,
    description: String,
    doc: Value,
}

impl Fragment {
    pub fn new<S: Clone + Send + Sync + 'static>(
        tag: &str,
        description: &str,
        routes: OpenApiRouter<S>,
    ) -> Fragment {
        let doc = serde_json::to_value(routes.into_openapi()).expect("the document serializes");
        Fragment {
            tag: tag.into(),
            description: description.into(),
            doc,
        }
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Every operation of `paths`: its path, method and definition.
fn operations(paths: &Value) -> Vec<(String, String, Value)> {
    let mut out = vec![];
    for (path, item) in paths.as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if METHODS.contains(&method.as_str()) {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    out
}

/// The shared answer of each error status, by its component name.
const SHARED_RESPONSES: [(&str, &str); 9] = [
    ("400", "BadRequest"),
    ("401", "Unauthorized"),
    ("403", "Forbidden"),
    ("404", "NotFound"),
    ("409", "Conflict"),
    ("412", "PreconditionFailed"),
    ("413", "PayloadTooLarge"),
    ("415", "UnsupportedMediaType"),
    ("503", "ServiceUnavailable"),
];

/// The whole document: the services' fragments, in the order given, with what they share.
///
/// Panics when two fragments declare the same operation, or the same schema name for two
/// different schemas.
pub fn document(fragments: impl IntoIterator<Item = Fragment>) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let mut tags = vec![];
    for fragment in fragments {
        tags.push(json!({ "name": fragment.tag, "description": fragment.description }));
        for (path, method, mut op) in operations(&fragment.doc["paths"]) {
            op["tags"] = json!([fragment.tag]);
            let item = paths.entry(path.clone()).or_insert_with(|| json!({}));
            if item.get(&method).is_some() {
                panic!("{} {path} is declared twice", method.to_uppercase());
            }
            let op = conventions(op);
            assert!(
                !has_null(&op),
                "{} {path}: a null in {op}",
                method.to_uppercase()
            );
            item[&method] = op;
        }
        let declared = fragment.doc["components"]["schemas"].as_object().cloned();
        for (name, schema) in declared.into_iter().flatten() {
            match schemas.get(&name) {
                Some(other) if *other != schema => panic!("two different schemas named {name}"),
                _ => schemas.insert(name, schema),
            };
        }
    }
    let shared = shared_components();
    let mut schemas = close_objects(schemas);
    schemas.insert("Problem".into(), shared["schemas"]["Problem"].clone());
    let schemas = referenced(&Value::Object(paths.clone()), schemas);
    let services: Vec<&str> = tags.iter().filter_map(|t| t["name"].as_str()).collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Bulkhead HTTP API",
            "version": "1.0.0",
            "description": format!(
                "The HTTP API of Bulkhead's services ({}), behind one API Gateway HTTP API with a \
                 JWT authorizer. Every operation needs `Authorization: Bearer <JWT>`: a missing or \
                 bad token answers 401, the wrong role 403; each operation's security requirement \
                 names the roles that may call it (any one of them will do; none: any valid \
                 token). Every error is `application/problem+json` with a stable `code`. A path \
                 that matches no route answers 404 `no-route`. Commands answer the aggregate's id \
                 and new version; reads answer the version as an `ETag`. Money is integer cents. \
                 This document is generated from the services' code; the devstack serves it at \
                 `GET /openapi.json`.",
                services.join(", ")
            ),
        },
        "servers": [{
            "url": "http://127.0.0.1:3000",
            "description": "The devstack (`cargo run -p devstack`).",
        }],
        "security": [{ BEARER: [] }],
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": shared["securitySchemes"],
            "headers": shared["headers"],
            "responses": shared["responses"],
            "schemas": schemas,
        },
    })
}

/// Whether `value` holds a JSON null anywhere: OpenAPI has no use for one, and a stray one
/// (from indexing a missing key) breaks tools.
fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().any(has_null),
        Value::Array(items) => items.iter().any(has_null),
        _ => false,
    }
}

/// One operation, with the conventions of the module's documentation applied.
fn conventions(mut op: Value) -> Value {
    let idempotent = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["name"] == "Idempotency-Key");
    let needs_role = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r[BEARER].as_array().is_some_and(|s| !s.is_empty()));
    for param in op["parameters"].as_array_mut().into_iter().flatten() {
        // `schema_with` drops the field's doc comment: its schema carries it instead.
        if param.get("description").is_none()
            && let Some(description) = param["schema"]
                .as_object_mut()
                .and_then(|s| s.remove("description"))
        {
            param["description"] = description;
        }
        // An optional `Option<T>` parameter is absent, never JSON null.
        if let Some(types) = param["schema"]["type"].as_array()
            && let [only] = &types.iter().filter(|t| *t != "null").collect::<Vec<_>>()[..]
        {
            param["schema"]["type"] = (*only).clone();
        }
    }
    let responses = op["responses"]
        .as_object_mut()
        .expect("an operation has responses");
    for (status, response) in responses.iter_mut() {
        if status.starts_with('2') {
            if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut)
                && headers.contains_key("ETag")
            {
                headers.insert("ETag".into(), reference("headers", "ETag"));
            }
            if idempotent {
                response["headers"]["Idempotent-Replayed"] =
                    reference("headers", "IdempotentReplayed");
            }
            // utoipa 5 writes a link's `operationId` as `operation_id` (fixed in utoipa 6).
            for link in response
                .get_mut("links")
                .and_then(Value::as_object_mut)
                .into_iter()
                .flat_map(|links| links.values_mut())
            {
                if let Some(id) = link.as_object_mut().and_then(|l| l.remove("operation_id")) {
                    link["operationId"] = id;
                }
            }
        } else if response["description"] == "" {
            let name = SHARED_RESPONSES
                .iter()
                .find(|(s, _)| s == status)
                .unwrap_or_else(|| panic!("no shared answer for {status}; describe it"))
                .1;
            *response = reference("responses", name);
        } else if response.get("content").is_none() {
            response["content"] = problem_content();
        }
    }
    for (status, name) in SHARED_RESPONSES {
        let always = ["400", "401", "413", "503"].contains(&status);
        if (always || (status == "403" && needs_role)) && !responses.contains_key(status) {
            responses.insert(status.into(), reference("responses", name));
        }
    }
    let mut sorted: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    responses.extend(sorted);
    op
}

fn reference(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

fn problem_content() -> Value {
    json!({ "application/problem+json": { "schema": reference("schemas", "Problem") } })
}

/// Merges `allOf` parts (from `#[serde(flatten)]`) into one object, and closes objects that
/// say nothing of other properties.
fn close_objects(schemas: Map<String, Value>) -> Map<String, Value> {
    let resolve = |value: &Value| -> Value {
        match value["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                schemas.get(name).cloned().unwrap_or(Value::Null)
            }
            None => value.clone(),
        }
    };
    let mut out = Map::new();
    for (name, schema) in &schemas {
        let mut schema = schema.clone();
        if let Some(parts) = schema["allOf"].as_array() {
            let mut merged = json!({ "type": "object", "properties": {}, "required": [] });
            for part in parts.iter().map(&resolve) {
                assert_eq!(part["type"], "object", "{name}: allOf of a non-object");
                for (key, value) in part["properties"].as_object().into_iter().flatten() {
                    merged["properties"][key] = value.clone();
                }
                for required in part["required"].as_array().into_iter().flatten() {
                    merged["required"]
                        .as_array_mut()
                        .unwrap()
                        .push(required.clone());
                }
            }
            if let Some(description) = schema.get("description") {
                merged["description"] = description.clone();
            }
            schema = merged;
        }
        if schema["type"] == "object" && schema.get("additionalProperties").is_none() {
            schema["additionalProperties"] = json!(false);
        }
        out.insert(name.clone(), schema);
    }
    out
}

/// The schemas that `paths` use, directly or through other schemas, and `Problem`.
fn referenced(paths: &Value, schemas: Map<String, Value>) -> Map<String, Value> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    out.push(name.to_string());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut pending = vec!["Problem".to_string()];
    walk(paths, &mut pending);
    let mut kept = Map::new();
    while let Some(name) = pending.pop() {
        if !kept.contains_key(&name)
            && let Some(schema) = schemas.get(&name)
        {
            walk(schema, &mut pending);
            kept.insert(name, schema.clone());
        }
    }
    kept
}

/// What every operation shares: the security scheme, the problem, the shared answers.
fn shared_components() -> Value {
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
    let problem =
        |description: &str| json!({ "description": description, "content": problem_content() });
    json!({
        "securitySchemes": {
            BEARER: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": format!(
                    "A JWT that API Gateway's JWT authorizer accepts (the template's JwtIssuer and \
                     JwtAudience; in the devstack, HS256 with BULKHEAD_DEV_JWT_SECRET, see \
                     `devstack token`). Handlers read `sub` and the roles from `cognito:groups`: \
                     {}. An operation's requirement lists the roles that may call it.",
                    roles.join(", ")
                ),
            }
        },
        "headers": {
            "ETag": {
                "description": "The version read, as a strong entity tag; send it back as `If-Match`.",
                "required": true,
                "schema": { "type": "string", "pattern": "^\"[0-9]+\"$" },
            },
            "IdempotentReplayed": {
                "description": "`true` when this is the stored answer to an earlier request with \
                                the same Idempotency-Key; nothing was applied.",
                "schema": { "type": "string", "enum": ["true"] },
            },
        },
        "responses": {
            "BadRequest": problem(
                "Bad request: `malformed-json` (a body that is not JSON), \
                 `invalid-sku`/`invalid-order-id` (a path id that is not 1 to 64 of \
                 `A-Z a-z 0-9 - _`), `invalid-if-match`, `invalid-idempotency-key`, \
                 `invalid-query` (a query parameter that is missing, unknown, repeated or does \
                 not parse), `invalid-limit`, `invalid-cursor`, `invalid-status`, \
                 `invalid-date`, `invalid-range`, `range-too-long`, as the operation applies."
            ),
            "Unauthorized": {
                "description": "`unauthorized`: the bearer token is missing, malformed, expired, \
                                badly signed, for another issuer or audience, or has no `sub`.",
                "headers": {
                    "WWW-Authenticate": {
                        "description": "`Bearer`, when the gateway refused the token.",
                        "schema": { "type": "string" },
                    }
                },
                "content": problem_content(),
            },
            "Forbidden": problem(
                "`forbidden`: the token has none of the roles this operation needs (its \
                 security requirement)."
            ),
            "NotFound": problem(
                "`not-found`: there is no such resource, or the caller may not see it. \
                 `no-route` when a path parameter is empty, so that the path matches no route."
            ),
            "Conflict": problem(
                "`conflict`: without If-Match, the command lost the race for the aggregate 8 \
                 times in a row; `currentVersion` is the version now. Read it and try again."
            ),
            "PreconditionFailed": problem(
                "`version-mismatch`: If-Match does not name the current version, which is in \
                 `currentVersion`. Checked after visibility and the rules: a command that breaks \
                 a rule answers 422, one on an order the caller may not see 404, even with a \
                 stale If-Match."
            ),
            "PayloadTooLarge": problem(
                "`body-too-large`: a JSON body over 64 KB, or any request over the gateway's 10 MB."
            ),
            "UnsupportedMediaType": problem(
                "`unsupported-media-type`: the body's Content-Type is not `application/json` \
                 (or `application/*+json`)."
            ),
            "ServiceUnavailable": problem(
                "`service-down`: the service that owns this route is down (in the devstack, \
                 `POST /_devstack/faults`)."
            ),
        },
        "schemas": {
            "Problem": {
                "type": "object",
                "description": "An RFC 9457 problem: every error answer of the API.",
                "required": ["type", "title", "status", "code", "detail"],
                "properties": {
                    "type": {
                        "type": "string",
                        "pattern": "^urn:bulkhead:problem:[a-z-]+$",
                        "description": "`urn:bulkhead:problem:<code>`",
                    },
                    "title": { "type": "string", "description": "The status's reason phrase." },
                    "status": { "type": "integer", "minimum": 400, "maximum": 599 },
                    "code": {
                        "type": "string",
                        "pattern": "^[a-z-]+$",
                        "description": "Stable and machine-readable, such as `invalid-quantity`.",
                    },
                    "detail": { "type": "string" },
                    "currentVersion": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "With `version-mismatch`, `conflict` and `view-behind`.",
                    },
                    "minVersion": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "With `view-behind`.",
                    },
                },
                "additionalProperties": true,
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use lambda_http::request::RequestContext;
    use tower::ServiceExt;
    use utoipa_axum::routes;

    /// A staff-only operation.
    #[utoipa::path(post, path = "/things/{id}", operation_id = "shipThing",
        params(("id" = String, Path), CommandHeaders),
        responses((status = 200, description = "Shipped."), (status = 409)),
        security(("bearerAuth" = ["staff"]), ("bearerAuth" = ["merchandiser"])))]
    async fn ship() -> &'static str {
        "shipped"
    }

    /// Any caller.
    #[utoipa::path(get, path = "/things/{id}", operation_id = "getThing",
        params(("id" = String, Path)),
        responses((status = 200, description = "A thing.", headers(("ETag" = String)))),
        security(("bearerAuth" = [])))]
    async fn read() -> &'static str {
        "thing"
    }

    fn routes() -> OpenApiRouter {
        OpenApiRouter::default().routes(routes!(ship, read))
    }

    async fn call(method: &str, roles: Option<&str>) -> u16 {
        let mut request = Request::builder()
            .method(method)
            .uri("/things/t1")
            .body(Body::empty())
            .unwrap();
        if let Some(roles) = roles {
            let context = serde_json::from_value(json!({
                "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "p",
                "http": { "method": method, "path": "/things/t1", "protocol": "HTTP/1.1",
                          "sourceIp": "127.0.0.1", "userAgent": "test" },
                "requestId": "r", "routeKey": "$default", "stage": "$default",
                "time": "", "timeEpoch": 0,
                "authorizer": { "jwt": { "claims": { "sub": "s", "cognito:groups": roles },
                                         "scopes": null } },
            }))
            .unwrap();
            request
                .extensions_mut()
                .insert(RequestContext::ApiGatewayV2(context));
        }
        let response = router(routes(), ()).oneshot(request).await.unwrap();
        response.status().as_u16()
    }

    #[tokio::test]
    async fn the_router_enforces_the_declared_roles() {
        assert_eq!(call("POST", None).await, 401);
        assert_eq!(call("POST", Some("[customer]")).await, 403);
        assert_eq!(call("POST", Some("[merchandiser]")).await, 200);
        assert_eq!(call("POST", Some("[customer staff]")).await, 200);
        assert_eq!(call("GET", Some("[]")).await, 200);
        assert_eq!(call("GET", None).await, 401);
    }

    /// A role that is no `Role`.
    #[utoipa::path(get, path = "/admin", responses((status = 200, description = "Hm.")),
        security(("bearerAuth" = ["admin"])))]
    async fn admin() {}

    #[test]
    #[should_panic(expected = "GET /admin: \"admin\" is not a role")]
    fn a_declared_role_that_is_no_role_stops_the_router() {
        let _ = router(OpenApiRouter::default().routes(routes!(admin)), ());
    }

    #[test]
    fn the_document_applies_the_shared_conventions() {
        let doc = document([Fragment::new("things", "Things.", routes())]);
        let ship = &doc["paths"]["/things/{id}"]["post"];
        assert_eq!(ship["tags"], json!(["things"]));
        let statuses: Vec<&String> = ship["responses"].as_object().unwrap().keys().collect();
        assert_eq!(statuses, ["200", "400", "401", "403", "409", "413", "503"]);
        assert_eq!(
            ship["responses"]["409"]["$ref"],
            "#/components/responses/Conflict"
        );
        assert_eq!(
            ship["responses"]["200"]["headers"]["Idempotent-Replayed"]["$ref"],
            "#/components/headers/IdempotentReplayed"
        );
        let read = &doc["paths"]["/things/{id}"]["get"];
        assert!(read["responses"].get("403").is_none());
        assert_eq!(
            read["responses"]["200"]["headers"]["ETag"]["$ref"],
            "#/components/headers/ETag"
        );
        assert!(
            doc["info"]["description"]
                .as_str()
                .unwrap()
                .contains("services (things)")
        );
    }
}
