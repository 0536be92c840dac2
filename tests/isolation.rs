//! Isolation: every route of the template, as every kind of caller, and as the wrong
//! customer. Missing, expired and forged tokens answer 401; no role reaches a route that is
//! not its own; no customer reads or changes another customer's order.
//!
//! The system says most of it: the routes come from `template.yaml`, the roles from
//! [`Role::ALL`] (one identity per role), and who may call each route from the security
//! requirement of its operation in the generated OpenAPI document. What no declaration says
//! is in `ROUTES`: which routes only show the owner's orders, and what a request needs to
//! get past its parsing. A route of the template missing there fails the test.

use bulkhead::http::Role;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use system_tests::*;

const OWNER: &str = "alice";
const OTHER: &str = "bob";
/// The sku of the owner's order, and one that only a merchandiser's allowed DELETE ends.
const SKU: &str = "ISO-1";
const SECOND_SKU: &str = "ISO-2";
const SPARE_SKU: &str = "ISO-SPARE";

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    NoToken,
    Expired,
    WrongSecret,
    WrongAudience,
    Unsigned,
    Garbage,
    /// A customer: the owner of the orders under test.
    Owner,
    /// The owner's own `sub` without the customer role: a customer whose group was revoked.
    OwnerWithoutRole,
    OtherCustomer,
    /// A caller with this one role (customers are the owner and the other customer).
    Only(Role),
    NoRoles,
    UnknownRole,
}

/// Every identity: the refused tokens, the customers, one per other role, and no role.
fn identities() -> Vec<Who> {
    let mut all = vec![
        Who::NoToken,
        Who::Expired,
        Who::WrongSecret,
        Who::WrongAudience,
        Who::Unsigned,
        Who::Garbage,
        Who::Owner,
        Who::OwnerWithoutRole,
        Who::OtherCustomer,
    ];
    all.extend(
        Role::ALL
            .into_iter()
            .filter(|r| *r != Role::Customer)
            .map(Who::Only),
    );
    all.extend([Who::NoRoles, Who::UnknownRole]);
    all
}

fn names(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.name().to_string()).collect()
}

impl Who {
    /// Whether the gateway should accept the token.
    fn authenticated(self) -> bool {
        !matches!(
            self,
            Who::NoToken
                | Who::Expired
                | Who::WrongSecret
                | Who::WrongAudience
                | Who::Unsigned
                | Who::Garbage
        )
    }

    fn sub(self) -> String {
        match self {
            Who::Owner
            | Who::OwnerWithoutRole
            | Who::Expired
            | Who::WrongSecret
            | Who::WrongAudience
            | Who::Unsigned
            | Who::NoToken
            | Who::Garbage => OWNER.into(),
            Who::OtherCustomer => OTHER.into(),
            Who::Only(role) => format!("{role}-1"),
            Who::NoRoles => "nora".into(),
            Who::UnknownRole => "eve".into(),
        }
    }

    /// The groups in the token.
    fn groups(self) -> Vec<String> {
        match self {
            Who::Owner | Who::OtherCustomer => names(&[Role::Customer]),
            Who::Only(role) => names(&[role]),
            Who::NoRoles | Who::OwnerWithoutRole => vec![],
            // Near misses of every role: another case; and roles that do not exist.
            Who::UnknownRole => Role::ALL
                .iter()
                .flat_map(|r| {
                    let name = r.name();
                    [name.to_uppercase(), name[..1].to_uppercase() + &name[1..]]
                })
                .chain(["admin".into(), "superuser".into()])
                .collect(),
            // Every role at once: a forged or expired token that got through would be obvious.
            _ => names(&Role::ALL),
        }
    }

    fn has(self, role: Role) -> bool {
        self.authenticated() && self.groups().iter().any(|g| g == role.name())
    }

    /// Whether the gateway passes this caller on as the owner.
    fn is_owner(self) -> bool {
        self.authenticated() && self.sub() == OWNER
    }

    /// Whether this caller may see the owner's orders at all.
    fn may_see_owners_orders(self) -> bool {
        self.is_owner() || self.has(Role::Staff)
    }
}

/// Which of the orders a caller with the route's roles reaches; what the document's
/// security cannot say.
#[derive(Clone, Copy, Debug)]
enum Scope {
    /// Every caller with the role gets the answer (a list of one's own orders, too).
    All,
    /// Only the caller's own orders: others with the role get 404, as if it did not exist.
    Own,
    /// Staff reach any order, customers only their own (others 404).
    OwnUnlessStaff,
}

/// The body a route needs to get past its parsing.
#[derive(Clone, Copy, Debug)]
enum Body {
    None,
    Product,
    Order,
    Line,
}

/// What the allowed callers act on, so that their answer is exact: the owner's order is
/// only ever read; writes go to fresh orders of the owner in the state the rule needs.
#[derive(Clone, Copy, Debug)]
enum Target {
    Main,
    FreshPlaced,
    FreshShipped,
    SpareSku,
}

/// What the test knows of a route beyond the document.
struct Route {
    method: &'static str,
    path: &'static str,
    scope: Scope,
    /// The status the allowed callers get.
    ok: u16,
    query: &'static str,
    body: Body,
    allowed_on: Target,
}

const fn route(method: &'static str, path: &'static str, scope: Scope, ok: u16) -> Route {
    Route {
        method,
        path,
        scope,
        ok,
        query: "",
        body: Body::None,
        allowed_on: Target::Main,
    }
}

impl Route {
    const fn query(mut self, query: &'static str) -> Route {
        self.query = query;
        self
    }
    const fn body(mut self, body: Body) -> Route {
        self.body = body;
        self
    }
    const fn on(mut self, target: Target) -> Route {
        self.allowed_on = target;
        self
    }
}

/// Every route of the template. A route missing here fails the test: adding a route means
/// deciding whose orders it shows and how to call it.
const ROUTES: &[Route] = &[
    route("PUT", "/products/{sku}", Scope::All, 200).body(Body::Product),
    route("GET", "/products/{sku}", Scope::All, 200),
    route("DELETE", "/products/{sku}", Scope::All, 200).on(Target::SpareSku),
    route("POST", "/orders", Scope::All, 201).body(Body::Order),
    route("GET", "/orders/{id}", Scope::OwnUnlessStaff, 200),
    route("POST", "/orders/{id}/lines", Scope::Own, 200)
        .body(Body::Line)
        .on(Target::FreshPlaced),
    route("DELETE", "/orders/{id}/lines/{sku}", Scope::Own, 200).on(Target::FreshPlaced),
    route("POST", "/orders/{id}/cancel", Scope::Own, 200).on(Target::FreshPlaced),
    route("POST", "/orders/{id}/ship", Scope::All, 200).on(Target::FreshPlaced),
    route("POST", "/orders/{id}/deliver", Scope::All, 200).on(Target::FreshShipped),
    route("GET", "/tracking/orders", Scope::All, 200).query("limit=100"),
    route("GET", "/tracking/orders/{id}", Scope::Own, 200),
    route("GET", "/fulfillment/orders", Scope::All, 200).query("status=PLACED&limit=100"),
    route("GET", "/fulfillment/orders/{id}", Scope::All, 200),
    route("GET", "/sales/daily", Scope::All, 200).query("from=2024-01-01&to=2024-01-07"),
    route("GET", "/sales/products", Scope::All, 200).query("day=2024-01-01&limit=5"),
    route("GET", "/notifications", Scope::All, 200).query("limit=100"),
];

/// A route of the template, with the roles that may call it from the document.
struct Rule {
    route: &'static Route,
    /// Any one of them will do; none: any valid token.
    roles: Vec<Role>,
}

/// The roles of each operation of the generated document, by `METHOD /path`: the union of
/// its security requirements' roles, or none when one requirement needs no role.
fn roles_from_the_document() -> BTreeMap<String, Vec<Role>> {
    let doc = devstack::openapi::document();
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let requirements = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no security in the document"));
            let mut roles = vec![];
            let mut anyone = false;
            for requirement in requirements {
                for scopes in requirement.as_object().unwrap().values() {
                    let scopes = scopes.as_array().unwrap();
                    anyone |= scopes.is_empty();
                    for scope in scopes {
                        let role = scope.as_str().unwrap().parse::<Role>();
                        roles.push(role.unwrap_or_else(|e| panic!("{name}: {e}")));
                    }
                }
            }
            out.insert(name, if anyone { vec![] } else { roles });
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Ok(u16),
    Unauthorized,
    Forbidden,
    /// 404: the order is hidden from this caller.
    Hidden,
}

impl Expect {
    fn of(rule: &Rule, who: Who) -> Expect {
        if !who.authenticated() {
            return Expect::Unauthorized;
        }
        if !rule.roles.is_empty() && !rule.roles.iter().any(|r| who.has(*r)) {
            return Expect::Forbidden;
        }
        let sees = match rule.route.scope {
            Scope::All => true,
            Scope::Own => who.is_owner(),
            Scope::OwnUnlessStaff => who.may_see_owners_orders(),
        };
        if sees {
            Expect::Ok(rule.route.ok)
        } else {
            Expect::Hidden
        }
    }

    fn status_and_code(self) -> (u16, Option<&'static str>) {
        match self {
            Expect::Ok(status) => (status, None),
            Expect::Unauthorized => (401, Some("unauthorized")),
            Expect::Forbidden => (403, Some("forbidden")),
            Expect::Hidden => (404, Some("not-found")),
        }
    }
}

/// base64url without padding, for a hand-made unsigned token.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The tokens of every identity.
struct Tokens(Vec<(Who, Option<String>)>);

impl Tokens {
    fn new(template: &devstack::template::Template) -> Tokens {
        let (issuer, audience) = (&template.jwt_issuer, &template.jwt_audience);
        let auth = devstack::auth::Auth::new(SECRET, issuer, audience);
        let mint = |auth: &devstack::auth::Auth, who: Who, ttl: i64| {
            auth.token(&who.sub(), &who.groups(), ttl).unwrap()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let unsigned = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none","typ":"JWT"}"#),
            base64url(
                json!({
                    "sub": OWNER, "cognito:groups": names(&Role::ALL), "iss": issuer, "aud": audience,
                    "iat": now, "exp": now + 3600, "token_use": "id",
                })
                .to_string()
                .as_bytes()
            )
        );
        let mut tokens = vec![];
        for who in identities() {
            let token = match who {
                Who::NoToken => None,
                // Well past the validator's leeway.
                Who::Expired => Some(mint(&auth, who, -3600)),
                Who::WrongSecret => Some(mint(
                    &devstack::auth::Auth::new("not-the-secret", issuer, audience),
                    who,
                    3600,
                )),
                Who::WrongAudience => Some(mint(
                    &devstack::auth::Auth::new(SECRET, issuer, "someone-else"),
                    who,
                    3600,
                )),
                Who::Unsigned => Some(unsigned.clone()),
                Who::Garbage => Some("not-a-jwt".into()),
                _ => Some(mint(&auth, who, 3600)),
            };
            tokens.push((who, token));
        }
        Tokens(tokens)
    }

    fn of(&self, who: Who) -> Option<&str> {
        self.0.iter().find(|(w, _)| *w == who).unwrap().1.as_deref()
    }
}

#[derive(Default)]
struct Tally {
    requests: usize,
    unauthorized: usize,
    cross_reads: usize,
    cross_writes: usize,
    escalations: usize,
    failures: Vec<String>,
}

/// The ids of the owner's orders, which no one but the owner and staff may see.
#[derive(Default)]
struct Secrets {
    order_ids: Vec<String>,
}

impl Secrets {
    fn leaked_in(&self, body: &Value) -> Option<String> {
        let text = body.to_string();
        if text.contains(&format!("\"{OWNER}\"")) {
            return Some(format!("the owner's customer id {OWNER:?}"));
        }
        self.order_ids
            .iter()
            .find(|id| text.contains(id.as_str()))
            .map(|id| format!("the owner's order {id}"))
    }
}

fn fill(path: &str, id: &str, sku: &str) -> Result<String, String> {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => Ok(id.to_string()),
            "{sku}" => Ok(sku.to_string()),
            s if s.starts_with('{') => Err(format!("no value for the path parameter {s}")),
            s => Ok(s.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|segments| segments.join("/"))
}

fn body_of(body: Body) -> Option<Value> {
    match body {
        Body::None => None,
        Body::Product => Some(json!({"name": "Isolation anchor", "priceCents": 1300})),
        Body::Order => Some(json!({"lines": [{"sku": SKU, "quantity": 1}]})),
        Body::Line => Some(json!({"sku": SKU, "quantity": 1})),
    }
}

/// Sends one request of the matrix and checks its answer against the table.
async fn attempt(
    stack: &Stack,
    tokens: &Tokens,
    secrets: &Secrets,
    tally: &mut Tally,
    rule: &Rule,
    who: Who,
    (id, sku): (&str, &str),
) {
    let expected = Expect::of(rule, who);
    let mut path = match fill(rule.route.path, id, sku) {
        Ok(path) => path,
        Err(e) => {
            tally
                .failures
                .push(format!("{} {}: {e}", rule.route.method, rule.route.path));
            return;
        }
    };
    if !rule.route.query.is_empty() {
        path = format!("{path}?{}", rule.route.query);
    }
    let method = Method::from_bytes(rule.route.method.as_bytes()).unwrap();
    let reply = stack
        .send(method, &path, tokens.of(who), body_of(rule.route.body), &[])
        .await;
    tally.requests += 1;
    let status = reply.status.as_u16();
    let what = format!("{who:?} {} {path}", rule.route.method);
    let (want, code) = expected.status_and_code();
    if status == 401 {
        tally.unauthorized += 1;
    }
    if status != want {
        tally.failures.push(format!(
            "{what}: expected {want} ({expected:?}), got {status} {}",
            reply.body
        ));
    }
    if reply.status.is_success() {
        match expected {
            Expect::Ok(_) => {}
            Expect::Hidden if rule.route.method == "GET" => tally.cross_reads += 1,
            Expect::Hidden => tally.cross_writes += 1,
            Expect::Unauthorized | Expect::Forbidden => tally.escalations += 1,
        }
        if !who.may_see_owners_orders()
            && let Some(leak) = secrets.leaked_in(&reply.body)
        {
            tally.cross_reads += 1;
            tally
                .failures
                .push(format!("{what}: answered {leak}: {}", reply.body));
        }
    }
    if reply.status.is_client_error() {
        let content_type = reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type != "application/problem+json" || reply.body["status"] != status {
            tally.failures.push(format!(
                "{what}: {status} is not problem+json ({content_type:?}): {}",
                reply.body
            ));
        }
        if status == want && code.is_some_and(|code| reply.body["code"] != code) {
            tally.failures.push(format!(
                "{what}: expected code {code:?}, got {}",
                reply.body
            ));
        }
        if status == 401
            && reply
                .headers
                .get("www-authenticate")
                .is_none_or(|v| v != "Bearer")
        {
            tally
                .failures
                .push(format!("{what}: 401 without WWW-Authenticate: Bearer"));
        }
    }
}

/// What the owner's data looks like, read by the owner and by staff.
async fn snapshot(stack: &Stack, tokens: &Tokens, main: &str) -> Value {
    stack.drain().await;
    let owner = tokens.of(Who::Owner).unwrap();
    let staff = tokens.of(Who::Only(Role::Staff)).unwrap();
    let other = tokens.of(Who::OtherCustomer).unwrap();
    let ids = |list: Value| -> Vec<Value> {
        list["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].clone())
            .collect()
    };
    json!({
        "order": stack.get(&format!("/orders/{main}"), owner).await.expect(200),
        "tracked": stack.get(&format!("/tracking/orders/{main}"), owner).await.expect(200),
        "work": stack.get(&format!("/fulfillment/orders/{main}"), staff).await.expect(200),
        "product": stack.get(&format!("/products/{SKU}"), owner).await.expect(200),
        "spare": stack.get(&format!("/products/{SPARE_SKU}"), owner).await.expect(200),
        "ownerList": ids(stack.get("/tracking/orders?limit=100", owner).await.expect(200)),
        "otherList": ids(stack.get("/tracking/orders?limit=100", other).await.expect(200)),
        "placed": ids(stack.get("/fulfillment/orders?status=PLACED&limit=100", staff).await.expect(200)),
    })
}

#[tokio::test]
async fn every_route_as_every_role_and_as_the_wrong_customer() {
    let template = devstack::template::Template::load(&template_path()).unwrap();

    // Every route of the template, with its roles from the document and its line in ROUTES.
    let routes: Vec<String> = template
        .functions
        .iter()
        .flat_map(|f| f.routes.iter().map(|r| format!("{} {}", r.method, r.path)))
        .collect();
    assert!(!routes.is_empty(), "the template has no routes");
    let mut documented = roles_from_the_document();
    let known = |r: &&Route| routes.contains(&format!("{} {}", r.method, r.path));
    let stale: Vec<String> = ROUTES
        .iter()
        .filter(|r| !known(r))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        stale.is_empty(),
        "ROUTES names routes the template lacks: {stale:?}"
    );
    let mut missing = vec![];
    let mut rules = vec![];
    for name in &routes {
        let roles = documented.remove(name).unwrap_or_else(|| {
            panic!("{name} is routed by template.yaml but not in the generated OpenAPI document")
        });
        match ROUTES
            .iter()
            .find(|r| format!("{} {}", r.method, r.path) == *name)
        {
            Some(route) => rules.push(Rule { route, roles }),
            None => missing.push(name.clone()),
        }
    }
    assert!(
        missing.is_empty(),
        "routes of template.yaml without a line in ROUTES of tests/isolation.rs (say whose \
         orders each shows, and how to call it): {missing:?}"
    );
    let identities = identities();

    // Real data: products, the owner's order, another customer's order.
    let stack = Stack::start().await;
    let tokens = Tokens::new(&template);
    stack.product(SKU, "Isolation anchor", 1200).await;
    stack.product(SECOND_SKU, "Isolation buoy", 300).await;
    stack.product(SPARE_SKU, "Isolation spare", 50).await;
    let lines = json!([{"sku": SKU, "quantity": 2}, {"sku": SECOND_SKU, "quantity": 1}]);
    let main = stack.order(OWNER, lines.clone()).await;
    let others = stack
        .order(OTHER, json!([{"sku": SECOND_SKU, "quantity": 3}]))
        .await;
    let mut secrets = Secrets {
        order_ids: vec![main.clone()],
    };
    let before = snapshot(&stack, &tokens, &main).await;
    assert_eq!(before["order"]["customerId"], OWNER);
    assert_eq!(before["order"]["version"], 1);
    assert_eq!(before["tracked"]["version"], 1);
    assert_eq!(before["ownerList"], json!([main]));
    assert_eq!(before["otherList"], json!([others]));

    // Every refusal first, on the owner's own order: none of them may change anything.
    let mut tally = Tally::default();
    for rule in &rules {
        for who in identities.iter().copied() {
            if !matches!(Expect::of(rule, who), Expect::Ok(_)) {
                attempt(
                    &stack,
                    &tokens,
                    &secrets,
                    &mut tally,
                    rule,
                    who,
                    (&main, SKU),
                )
                .await;
            }
        }
    }
    let after_refusals = snapshot(&stack, &tokens, &main).await;
    if after_refusals != before {
        tally.cross_writes += 1;
        tally.failures.push(format!(
            "refused requests changed the owner's data:\nbefore {before}\nafter  {after_refusals}"
        ));
    }

    // Then every allowed caller, each on data in the state its rule needs.
    let staff = tokens.of(Who::Only(Role::Staff)).unwrap().to_string();
    for rule in &rules {
        for who in identities.iter().copied() {
            if !matches!(Expect::of(rule, who), Expect::Ok(_)) {
                continue;
            }
            let target = match rule.route.allowed_on {
                Target::Main => (main.clone(), SKU),
                Target::SpareSku => (main.clone(), SPARE_SKU),
                Target::FreshPlaced | Target::FreshShipped => {
                    let fresh = stack.order(OWNER, lines.clone()).await;
                    if matches!(rule.route.allowed_on, Target::FreshShipped) {
                        stack
                            .send(
                                Method::POST,
                                &format!("/orders/{fresh}/ship"),
                                Some(&staff),
                                None,
                                &[],
                            )
                            .await
                            .expect(200);
                    }
                    secrets.order_ids.push(fresh.clone());
                    (fresh, SKU)
                }
            };
            attempt(
                &stack,
                &tokens,
                &secrets,
                &mut tally,
                rule,
                who,
                (&target.0, target.1),
            )
            .await;
        }
    }

    // The owner's order is as it was; each customer's list holds only their own orders.
    let after = snapshot(&stack, &tokens, &main).await;
    for part in ["order", "tracked", "work"] {
        if after[part] != before[part] {
            tally.cross_writes += 1;
            tally.failures.push(format!(
                "the owner's {part} changed: {} -> {}",
                before[part], after[part]
            ));
        }
    }
    let tracking = |who: Who| {
        let token = tokens.of(who).unwrap().to_string();
        let reply = stack.get("/tracking/orders?limit=100", &token);
        async move { reply.await.expect(200)["orders"].clone() }
    };
    let (owner_list, other_list) = (
        tracking(Who::Owner).await,
        tracking(Who::OtherCustomer).await,
    );
    for order in owner_list.as_array().unwrap() {
        secrets
            .order_ids
            .push(order["id"].as_str().unwrap().to_string());
    }
    for order in other_list.as_array().unwrap() {
        assert_eq!(order["customerId"], OTHER, "{order}");
        if secrets.leaked_in(order).is_some() {
            tally.cross_reads += 1;
        }
    }
    for order in owner_list.as_array().unwrap() {
        assert_eq!(order["customerId"], OWNER, "{order}");
        assert_ne!(order["id"], others.as_str());
    }
    assert!(
        other_list
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == others.as_str()),
        "the other customer sees their own order: {other_list}"
    );
    assert!(
        owner_list
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == main.as_str()),
        "the owner sees their own order: {owner_list}"
    );

    let summary = format!(
        "isolation: {} requests, {} cross-customer reads, {} cross-customer writes, {} role escalations, {} 401s",
        tally.requests,
        tally.cross_reads,
        tally.cross_writes,
        tally.escalations,
        tally.unauthorized
    );
    println!("{summary}");
    assert!(
        tally.failures.is_empty(),
        "{summary}\n{}",
        tally.failures.join("\n")
    );
    assert_eq!(
        (tally.cross_reads, tally.cross_writes, tally.escalations),
        (0, 0, 0),
        "{summary}"
    );
    let refused_tokens = identities.iter().filter(|w| !w.authenticated()).count();
    assert_eq!(
        tally.unauthorized,
        refused_tokens * rules.len(),
        "{summary}"
    );
    assert_eq!(tally.requests, identities.len() * rules.len(), "{summary}");
}
