//! The adversarial suite: a fresh devstack driven over HTTP with hundreds of distinct hostile
//! or clumsy requests. Each probe has the status the README documents for it; then no answer
//! may be a 5xx, no answer to anyone but the victim (or staff) may carry the victim's orders,
//! and every view must converge exactly to the write model.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use system_tests::*;

const VICTIM: &str = "bob";

struct Probe {
    what: String,
    method: Method,
    path: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    expect: &'static [u16],
}

fn probe(what: impl Into<String>, method: Method, path: impl Into<String>) -> Probe {
    Probe {
        what: what.into(),
        method,
        path: path.into(),
        token: None,
        headers: vec![],
        body: None,
        expect: &[],
    }
}

impl Probe {
    fn token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn json(self, body: Value) -> Self {
        self.raw_body("application/json", body.to_string().into_bytes())
    }
    fn raw_body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers
            .push(("content-type".into(), content_type.into()));
        self.body = Some(body);
        self
    }
    fn expect(mut self, statuses: &'static [u16]) -> Self {
        self.expect = statuses;
        self
    }
    fn key(&self) -> String {
        format!(
            "{} {} {:?} {:?} {:?}",
            self.method, self.path, self.token, self.headers, self.body
        )
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Tokens the gateway must refuse (401), signed with the right secret unless forged.
fn refused_tokens(issuer: &str, audience: &str) -> Vec<(String, String)> {
    let sign = |claims: Value, alg: Algorithm, secret: &str| {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let t = now();
    let base = json!({
        "sub": "alice", "cognito:groups": ["customer", "staff"], "iss": issuer, "aud": audience,
        "iat": t, "exp": t + 3600, "token_use": "id",
    });
    let with = |key: &str, value: Value| {
        let mut claims = base.clone();
        claims[key] = value;
        sign(claims, Algorithm::HS256, SECRET)
    };
    let good = sign(base.clone(), Algorithm::HS256, SECRET);
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let mut flipped = signature.to_string();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let mut without_exp = base.clone();
    without_exp.as_object_mut().unwrap().remove("exp");
    vec![
        (
            "bad signature".into(),
            format!("{head}.{payload}.{flipped}"),
        ),
        (
            "wrong secret".into(),
            sign(base.clone(), Algorithm::HS256, "not-the-secret"),
        ),
        (
            "alg none".into(),
            format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "alg None".into(),
            format!("{}.{payload}.", b64(r#"{"alg":"None"}"#)),
        ),
        ("HS512".into(), sign(base.clone(), Algorithm::HS512, SECRET)),
        ("expired".into(), with("exp", json!(t - 3600))),
        ("no exp".into(), sign(without_exp, Algorithm::HS256, SECRET)),
        ("future nbf".into(), with("nbf", json!(t + 3600))),
        ("future iat".into(), with("iat", json!(t + 3600))),
        (
            "wrong iss".into(),
            with("iss", json!("https://evil.example")),
        ),
        ("iss array".into(), with("iss", json!([issuer]))),
        ("wrong aud".into(), with("aud", json!("someone-else"))),
        ("garbage".into(), "not-a-jwt".into()),
        ("two parts".into(), format!("{head}.{payload}")),
        (
            "payload not json".into(),
            format!("{head}.{}.{signature}", b64("not json")),
        ),
        ("empty".into(), String::new()),
    ]
}

/// Tokens the gateway may pass, but that must grant nothing beyond customer.
fn odd_group_tokens(issuer: &str, audience: &str) -> Vec<(String, String)> {
    let t = now();
    [
        json!(["customer,staff"]),
        json!(["customer staff"]),
        json!(["\"staff\""]),
        json!([["staff"]]),
        json!({"staff": true}),
        json!(["Staff"]),
        json!(["staff "]),
        json!(["customer", 7]),
    ]
    .into_iter()
    .map(|groups| {
        let claims = json!({
            "sub": "mallory", "cognito:groups": groups, "iss": issuer, "aud": audience,
            "iat": t, "exp": t + 3600, "token_use": "id",
        });
        (
            format!("groups {groups}"),
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap(),
        )
    })
    .collect()
}

/// The routes of the template, with the path parameters filled in.
fn routes(id: &str, sku: &str) -> Vec<(Method, String)> {
    let template = devstack::template::Template::load(&template_path()).unwrap();
    let mut all = vec![];
    for function in &template.functions {
        for route in &function.routes {
            let path = route.path.replace("{id}", id).replace("{sku}", sku);
            all.push((route.method.parse::<Method>().unwrap(), path));
        }
    }
    all.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    all
}

struct Outcome {
    status: u16,
    problem: bool,
    body: String,
}

async fn send(client: &reqwest::Client, url: &str, p: &Probe) -> Outcome {
    let mut request = client.request(p.method.clone(), format!("{url}{}", p.path));
    if let Some(token) = &p.token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (k, v) in &p.headers {
        request = request.header(k, v);
    }
    if let Some(body) = &p.body {
        request = request.body(body.clone());
    }
    let response = request.send().await.expect("the devstack answers");
    let status = response.status().as_u16();
    let problem = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/problem+json");
    let body = String::from_utf8_lossy(&response.bytes().await.unwrap()).into_owned();
    Outcome {
        status,
        problem,
        body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_clumsy_requests_get_their_documented_answers() {
    let started = std::time::Instant::now();
    let stack = Stack::start().await;
    let template = devstack::template::Template::load(&template_path()).unwrap();
    let (issuer, audience) = (&template.jwt_issuer, &template.jwt_audience);
    let alice = stack.token("alice", &["customer"]);
    let bob = stack.token(VICTIM, &["customer"]);
    let staff = stack.token("sam", &["staff"]);
    let merch = stack.token("mia", &["merchandiser"]);
    let marketing = stack.token("meg", &["marketing"]);
    for sku in ["ADV-1", "ADV-2"] {
        stack.product(sku, "Thing", 1250).await;
    }
    // (order id, its owner's token): every order any probe creates joins this list.
    let mut orders: Vec<(String, String)> = vec![];
    for (who, token) in [("alice", &alice), (VICTIM, &bob)] {
        for quantity in [1, 2, 3] {
            let id = stack
                .order(who, json!([{"sku": "ADV-1", "quantity": quantity}]))
                .await;
            orders.push((id, token.clone()));
        }
    }
    let alices = orders[0].0.clone();
    let bobs: Vec<String> = orders[3..].iter().map(|(id, _)| id.clone()).collect();
    stack.drain().await;

    let mut probes: Vec<Probe> = vec![];

    // Forged and malformed tokens on every route.
    for (what, token) in refused_tokens(issuer, audience) {
        for (method, path) in routes(&alices, "ADV-1") {
            probes.push(
                probe(format!("{what}: {method} {path}"), method, path)
                    .token(&token)
                    .expect(&[401]),
            );
        }
    }
    for (what, token) in odd_group_tokens(issuer, audience) {
        for path in [
            "/fulfillment/orders".to_string(),
            format!("/fulfillment/orders/{}", bobs[0]),
        ] {
            probes.push(
                probe(format!("{what}: GET {path}"), Method::GET, path)
                    .token(&token)
                    .expect(&[401, 403]),
            );
        }
        probes.push(
            probe(
                format!("{what}: ship"),
                Method::POST,
                format!("/orders/{}/ship", bobs[0]),
            )
            .token(&token)
            .expect(&[401, 403]),
        );
        probes.push(
            probe(
                format!("{what}: read another's order"),
                Method::GET,
                format!("/orders/{}", bobs[0]),
            )
            .token(&token)
            .expect(&[401, 403, 404]),
        );
    }
    for header in [
        "Basic YWxpY2U6eA==",
        "Bearer",
        "bearer  x.y.z",
        "Token abc",
        &format!("Bearer {alice} {alice}"),
    ] {
        probes.push(
            probe(
                format!("authorization {header:.20}"),
                Method::GET,
                "/tracking/orders",
            )
            .header("authorization", header)
            .expect(&[401]),
        );
    }

    // Cross-customer access on every route: alice at bob's orders.
    for bob_order in &bobs {
        for (method, path) in routes(bob_order, "ADV-1") {
            let expect: &'static [u16] = match (method.as_str(), path.as_str()) {
                (_, p) if p.starts_with("/products") && method == Method::GET => &[200],
                (_, p) if p.starts_with("/products") => &[403],
                ("POST", "/orders") => continue,
                (_, p) if p.ends_with("/ship") || p.ends_with("/deliver") => &[403],
                (_, p) if p.starts_with("/fulfillment") || p.starts_with("/sales") => &[403],
                ("GET", "/tracking/orders") | ("GET", "/notifications") => &[200],
                _ => &[404],
            };
            let p = probe(
                format!("alice at bob's: {method} {path}"),
                method.clone(),
                path.clone(),
            )
            .token(&alice);
            let p = match method.as_str() {
                "POST" if path.ends_with("/lines") => {
                    p.json(json!({"sku": "ADV-2", "quantity": 1}))
                }
                _ => p,
            };
            probes.push(p.expect(expect));
            if method == Method::POST && path.contains("/orders/") {
                probes.push(
                    probe(
                        format!("alice at bob's with If-Match: {method} {path}"),
                        method,
                        path,
                    )
                    .token(&alice)
                    .header("if-match", "1")
                    .json(json!({"sku": "ADV-2", "quantity": 1}))
                    .expect(&[404, 403, 422]),
                );
            }
        }
        for query in [
            "",
            "?minVersion=1&maxWaitMs=0",
            "?minVersion=999&maxWaitMs=0",
        ] {
            probes.push(
                probe(
                    "alice at bob's tracking",
                    Method::GET,
                    format!("/tracking/orders/{bob_order}{query}"),
                )
                .token(&alice)
                .expect(if query.is_empty() { &[404] } else { &[412] }),
            );
        }
    }

    // Tampered cursors.
    let first_page = stack
        .get("/tracking/orders?limit=1", &alice)
        .await
        .expect(200);
    let cursor = first_page["cursor"].as_str().unwrap().to_string();
    let bob_cursor = stack
        .get("/tracking/orders?limit=1", &bob)
        .await
        .expect(200)["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let staff_cursor = stack
        .get("/fulfillment/orders?limit=1", &staff)
        .await
        .expect(200)["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tampered = vec![
        cursor[..cursor.len() / 2].to_string(),
        format!("{cursor}A"),
        format!("A{cursor}"),
        cursor.chars().rev().collect(),
        "eyJwayI6ImJvYiJ9".into(),
        "%00".into(),
        "not a cursor".into(),
        "null".into(),
        "x".repeat(2000),
    ];
    for i in [0, 3, 7, cursor.len() - 2] {
        let mut bytes = cursor.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        tampered.push(String::from_utf8(bytes).unwrap());
    }
    for bad in &tampered {
        let encoded: String = form_encode(bad);
        for (path, token) in [
            ("/tracking/orders", &alice),
            ("/notifications", &alice),
            ("/fulfillment/orders", &staff),
        ] {
            probes.push(
                probe(
                    format!("tampered cursor on {path}"),
                    Method::GET,
                    format!("{path}?limit=1&cursor={encoded}"),
                )
                .token(token)
                .expect(&[400]),
            );
        }
    }
    probes.push(
        probe(
            "staff's fulfillment cursor on tracking",
            Method::GET,
            format!("/tracking/orders?cursor={}", form_encode(&staff_cursor)),
        )
        .token(&alice)
        .expect(&[400]),
    );
    probes.push(
        probe(
            "bob's cursor as alice",
            Method::GET,
            format!("/tracking/orders?cursor={}", form_encode(&bob_cursor)),
        )
        .token(&alice)
        .expect(&[400]),
    );

    // Extreme numbers.
    for (price, expect) in [
        (json!(0), &[422][..]),
        (json!(-1), &[422]),
        (json!(1), &[200, 201]),
        (json!(100_000_000), &[200, 201]),
        (json!(100_000_001), &[422]),
        (json!(i64::MAX), &[422]),
        (json!(u64::MAX), &[422]),
        (json!(9_007_199_254_740_993u64), &[422]),
        (json!(1.5), &[422]),
        (json!("12"), &[422]),
        (json!(null), &[422]),
        (json!(-0.0), &[422]),
    ] {
        let expect: &'static [u16] = if expect == [422] { &[422] } else { &[200, 201] };
        probes.push(
            probe(format!("price {price}"), Method::PUT, "/products/ADV-X")
                .token(&merch)
                .json(json!({"name": "Extreme", "priceCents": price}))
                .expect(expect),
        );
    }
    for raw in [
        "1e400",
        "99999999999999999999",
        "-9223372036854775809",
        "1e2",
        "0x10",
        "NaN",
        "Infinity",
    ] {
        probes.push(
            probe(format!("price {raw}"), Method::PUT, "/products/ADV-X")
                .token(&merch)
                .raw_body(
                    "application/json",
                    format!(r#"{{"name":"E","priceCents":{raw}}}"#).into_bytes(),
                )
                .expect(&[400, 422]),
        );
    }
    for quantity in [
        json!(0),
        json!(-1),
        json!(10_001),
        json!(i64::MAX),
        json!(1.5),
        json!("1"),
        json!(null),
        json!(u64::MAX),
    ] {
        probes.push(
            probe(format!("quantity {quantity}"), Method::POST, "/orders")
                .token(&alice)
                .json(json!({"lines": [{"sku": "ADV-1", "quantity": quantity}]}))
                .expect(&[422]),
        );
        probes.push(
            probe(
                format!("add quantity {quantity}"),
                Method::POST,
                format!("/orders/{alices}/lines"),
            )
            .token(&alice)
            .json(json!({"sku": "ADV-2", "quantity": quantity}))
            .expect(&[422]),
        );
    }
    for limit in [
        "0",
        "-1",
        "101",
        "abc",
        "1e3",
        "99999999999999999999",
        "1.0",
        "",
        "%00",
        "100%",
    ] {
        for (path, token) in [
            ("/tracking/orders", &alice),
            ("/notifications", &alice),
            ("/fulfillment/orders", &staff),
            ("/sales/products", &marketing),
        ] {
            probes.push(
                probe(
                    format!("limit {limit} on {path}"),
                    Method::GET,
                    format!("{path}?limit={limit}"),
                )
                .token(token)
                .expect(&[400]),
            );
        }
    }
    for (query, expect) in [
        ("minVersion=-1", &[400][..]),
        ("minVersion=abc", &[400]),
        ("minVersion=99999999999999999999", &[400]),
        ("minVersion=9007199254740993&maxWaitMs=0", &[400, 412]),
        ("minVersion=1&maxWaitMs=-1", &[400]),
        ("minVersion=1&maxWaitMs=99999999999", &[200, 400]),
        ("minVersion=0", &[200, 400]),
        ("maxWaitMs=abc", &[400]),
    ] {
        let expect: &'static [u16] = match expect {
            [400] => &[400],
            [400, 412] => &[400, 412],
            _ => &[200, 400],
        };
        probes.push(
            probe(
                format!("tracking {query}"),
                Method::GET,
                format!("/tracking/orders/{alices}?{query}"),
            )
            .token(&alice)
            .expect(expect),
        );
        probes.push(
            probe(
                format!("fulfillment {query}"),
                Method::GET,
                format!("/fulfillment/orders/{alices}?{query}"),
            )
            .token(&staff)
            .expect(expect),
        );
    }
    for query in [
        "from=2026-13-01&to=2026-13-02",
        "from=0000-01-01&to=9999-12-31",
        "from=2026-01-02&to=2026-01-01",
        "from=x&to=y",
        "from=2026-02-30&to=2026-03-01",
        "day=+2026-01-01",
        "from=2026-01-01",
    ] {
        probes.push(
            probe(
                format!("sales {query}"),
                Method::GET,
                format!("/sales/daily?{query}"),
            )
            .token(&marketing)
            .expect(&[400]),
        );
    }

    // Separators and odd characters in ids, skus, subs and idempotency keys.
    for bad in [
        "A%23B",
        "A%00",
        "A%2FB",
        "%C3%A9",
        "A%20B",
        &"A".repeat(65),
        "%F0%9F%98%80",
        "A%0D%0AX",
        "A%25",
        "A+B",
        "A.B",
    ] {
        probes.push(
            probe(
                format!("sku {bad}"),
                Method::GET,
                format!("/products/{bad}"),
            )
            .token(&alice)
            .expect(&[400]),
        );
        probes.push(
            probe(
                format!("put sku {bad}"),
                Method::PUT,
                format!("/products/{bad}"),
            )
            .token(&merch)
            .json(json!({"name": "N", "priceCents": 1}))
            .expect(&[400]),
        );
        probes.push(
            probe(
                format!("delete line {bad}"),
                Method::DELETE,
                format!("/orders/{alices}/lines/{bad}"),
            )
            .token(&alice)
            .expect(&[400]),
        );
        for path in [
            format!("/orders/{bad}"),
            format!("/tracking/orders/{bad}"),
            format!("/orders/{bad}/cancel"),
        ] {
            let method = if path.ends_with("cancel") {
                Method::POST
            } else {
                Method::GET
            };
            probes.push(
                probe(format!("id {bad}"), method, path)
                    .token(&alice)
                    .expect(&[400]),
            );
        }
    }
    for sku in ["A#B", "A\u{0}", "A/B", "é", "A B", "x".repeat(65).as_str()] {
        probes.push(
            probe(format!("sku in body {sku:?}"), Method::POST, "/orders")
                .token(&alice)
                .json(json!({"lines": [{"sku": sku, "quantity": 1}]}))
                .expect(&[400, 422]),
        );
    }
    let odd_subs = [
        "vic#k", "vic", "bob#", "#bob", "b/o/b", "bób", "bob\u{0}", "ALICE",
    ];
    for sub in odd_subs {
        let token = stack.token(sub, &["customer"]);
        probes.push(
            probe(
                format!("sub {sub:?} reads bob's"),
                Method::GET,
                format!("/orders/{}", bobs[0]),
            )
            .token(&token)
            .expect(&[404]),
        );
        probes.push(
            probe(
                format!("sub {sub:?} lists"),
                Method::GET,
                "/tracking/orders",
            )
            .token(&token)
            .expect(&[200]),
        );
        probes.push(
            probe(
                format!("sub {sub:?} notifications"),
                Method::GET,
                "/notifications",
            )
            .token(&token)
            .expect(&[200]),
        );
    }
    for (i, key) in [
        "k#x",
        "x",
        "#",
        "a#b#c",
        "é",
        "k\u{7f}",
        &"k".repeat(256),
        "",
        " ",
        "k x",
    ]
    .iter()
    .enumerate()
    {
        let valid =
            !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic());
        let p = probe(format!("idempotency key {key:?}"), Method::POST, "/orders")
            .token(&stack.token(odd_subs[i % 2], &["customer"]));
        let p = if key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            p.header("idempotency-key", key)
        } else {
            p
        };
        probes.push(
            p.json(json!({"lines": [{"sku": "ADV-2", "quantity": 1}]}))
                .expect(
                    if valid || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                        &[201]
                    } else {
                        &[400]
                    },
                ),
        );
    }

    // Odd content types and shapes.
    let line = json!({"sku": "ADV-1", "quantity": 1});
    let mut deep = String::new();
    for _ in 0..5000 {
        deep.push('[');
    }
    for (what, content_type, body, expect) in [
        (
            "array for object",
            "application/json",
            json!([line]).to_string(),
            &[422][..],
        ),
        (
            "lines as tuples",
            "application/json",
            r#"{"lines":[["ADV-1",1]]}"#.to_string(),
            &[422],
        ),
        (
            "lines an object",
            "application/json",
            json!({"lines": line}).to_string(),
            &[422],
        ),
        (
            "unknown field",
            "application/json",
            json!({"lines": [line], "customerId": VICTIM}).to_string(),
            &[422],
        ),
        ("no lines", "application/json", "{}".to_string(), &[422]),
        (
            "empty lines",
            "application/json",
            r#"{"lines":[]}"#.to_string(),
            &[422],
        ),
        ("null", "application/json", "null".to_string(), &[422]),
        (
            "a string",
            "application/json",
            r#""lines""#.to_string(),
            &[422],
        ),
        (
            "truncated",
            "application/json",
            r#"{"lines":[{"sku":"ADV-1""#.to_string(),
            &[400],
        ),
        (
            "trailing",
            "application/json",
            format!("{} x", json!({"lines": [line]})),
            &[400],
        ),
        // serde_json keeps the last of duplicate keys, as most parsers do.
        (
            "duplicate keys",
            "application/json",
            r#"{"lines":[],"lines":[{"sku":"ADV-1","quantity":1}]}"#.to_string(),
            &[201, 400, 422],
        ),
        (
            "deep nesting",
            "application/json",
            deep.clone(),
            &[400, 422],
        ),
        (
            "deep object",
            "application/json",
            format!("{}{}", r#"{"a":"#.repeat(3000), "}".repeat(3000)),
            &[400, 422],
        ),
        (
            "text/plain",
            "text/plain",
            json!({"lines": [line]}).to_string(),
            &[415],
        ),
        (
            "form",
            "application/x-www-form-urlencoded",
            "lines=1".to_string(),
            &[415],
        ),
        ("xml", "application/xml", "<lines/>".to_string(), &[415]),
        (
            "json; charset=latin1",
            "application/json; charset=latin1",
            json!({"lines": [line]}).to_string(),
            &[201, 415],
        ),
        (
            "huge",
            "application/json",
            format!(r#"{{"lines":[],"x":"{}"}}"#, "a".repeat(70_000)),
            &[413],
        ),
        (
            "51 lines",
            "application/json",
            json!({"lines": (0..51).map(|_| line.clone()).collect::<Vec<_>>()}).to_string(),
            &[422],
        ),
        (
            "bom",
            "application/json",
            format!("\u{feff}{}", json!({"lines": [line]})),
            &[400, 201],
        ),
    ] {
        let expect: &'static [u16] = Box::leak(expect.to_vec().into_boxed_slice());
        probes.push(
            probe(format!("body {what}"), Method::POST, "/orders")
                .token(&alice)
                .raw_body(content_type, body.into_bytes())
                .expect(expect),
        );
    }
    probes.push(
        probe("non-utf8 body", Method::POST, "/orders")
            .token(&alice)
            .raw_body("application/json", vec![0xff, 0xfe, b'{', b'}'])
            .expect(&[400]),
    );
    probes.push(
        probe("no content type", Method::POST, "/orders")
            .token(&alice)
            .expect(&[400, 415, 422]),
    );
    probes.push(
        probe("unknown route", Method::GET, "/orders/x/y/z")
            .token(&alice)
            .expect(&[404]),
    );
    probes.push(
        probe("wrong method", Method::PATCH, format!("/orders/{alices}"))
            .token(&alice)
            .expect(&[404, 405]),
    );

    // The admin surface from a foreign origin or host.
    for (what, headers, method, path) in [
        (
            "foreign origin",
            vec![("origin", "http://evil.example")],
            Method::POST,
            "/_devstack/faults",
        ),
        (
            "null origin",
            vec![("origin", "null")],
            Method::POST,
            "/_devstack/faults",
        ),
        (
            "file origin",
            vec![("origin", "file://")],
            Method::POST,
            "/_devstack/faults",
        ),
        (
            "lookalike origin",
            vec![("origin", "http://localhost.evil.example")],
            Method::POST,
            "/_devstack/faults",
        ),
        (
            "rebinding host",
            vec![("host", "evil.example")],
            Method::POST,
            "/_devstack/faults",
        ),
        (
            "rebinding host status",
            vec![("host", "evil.example:3000")],
            Method::GET,
            "/_devstack/status",
        ),
        (
            "foreign origin status",
            vec![("origin", "https://evil.example")],
            Method::GET,
            "/_devstack/status",
        ),
        (
            "foreign origin redrive",
            vec![("origin", "http://evil.example")],
            Method::POST,
            "/_devstack/queues/TrackingDLQ/redrive",
        ),
        (
            "foreign origin table",
            vec![("origin", "http://evil.example")],
            Method::PUT,
            "/_devstack/tables/OrdersTable/items",
        ),
        (
            "foreign origin api",
            vec![("origin", "http://evil.example")],
            Method::GET,
            "/tracking/orders",
        ),
        (
            "rebinding host api",
            vec![("host", "attacker.example")],
            Method::GET,
            "/tracking/orders",
        ),
    ] {
        let mut p = probe(format!("admin {what}"), method, path).token(&alice);
        for (k, v) in headers {
            p = p.header(k, v);
        }
        probes.push(p.json(json!({"killRate": 1})).expect(&[403]));
    }
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        probes.push(
            probe(
                format!("admin write as {content_type}"),
                Method::POST,
                "/_devstack/faults",
            )
            .raw_body(content_type, br#"{"killRate":1}"#.to_vec())
            .expect(&[415]),
        );
    }

    // Run them, 16 at a time.
    let client = reqwest::Client::new();
    let url = Arc::new(stack.url.clone());
    let mut distinct = HashSet::new();
    for p in &probes {
        distinct.insert(p.key());
    }
    let probes = Arc::new(probes);
    let mut outcomes: Vec<Option<Outcome>> = (0..probes.len()).map(|_| None).collect();
    let mut next = 0;
    while next < probes.len() {
        let mut batch = tokio::task::JoinSet::new();
        for i in next..(next + 16).min(probes.len()) {
            let (client, url, probes) = (client.clone(), url.clone(), probes.clone());
            batch.spawn(async move { (i, send(&client, &url, &probes[i]).await) });
        }
        next = (next + 16).min(probes.len());
        while let Some(done) = batch.join_next().await {
            let (i, outcome) = done.unwrap();
            outcomes[i] = Some(outcome);
        }
    }
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(Option::unwrap).collect();

    let mut wrong = vec![];
    let mut server_errors = 0;
    let mut leaks = vec![];
    for (p, o) in probes.iter().zip(&outcomes) {
        if o.status >= 500 {
            server_errors += 1;
        }
        if !p.expect.contains(&o.status) {
            wrong.push(format!(
                "{}: {} (want {:?}) {:.200}",
                p.what, o.status, p.expect, o.body
            ));
        } else if o.status >= 400 && !o.problem {
            wrong.push(format!(
                "{}: {} is not problem+json: {:.200}",
                p.what, o.status, o.body
            ));
        }
        // A problem may echo the id it was asked about; no other answer may carry bob's.
        let staff_probe = p.token.as_deref() == Some(staff.as_str());
        if !staff_probe && !o.problem && bobs.iter().any(|id| o.body.contains(id.as_str())) {
            leaks.push(format!("{}: {:.200}", p.what, o.body));
        }
        if p.method == Method::POST && p.path == "/orders" && o.status == 201 {
            let id = serde_json::from_str::<Value>(&o.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            orders.push((id, p.token.clone().unwrap()));
        }
    }

    // Concurrent idempotent retries and conflicting commands.
    let mut concurrent = 0;
    let retries: Vec<_> = (0..20)
        .map(|_| {
            stack.send(
                Method::POST,
                "/orders",
                Some(&alice),
                Some(json!({"lines": [line]})),
                &[("idempotency-key", "adv-retry")],
            )
        })
        .collect();
    let mut ids = BTreeSet::new();
    for reply in futures::future::join_all(retries).await {
        concurrent += 1;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        ids.insert(reply.body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        ids.len(),
        1,
        "20 retries with one key made one order: {ids:?}"
    );
    let retried = ids.into_iter().next().unwrap();
    orders.push((retried.clone(), alice.clone()));
    let adds: Vec<_> = (0..10)
        .map(|i| {
            stack.send(
                Method::POST,
                &format!("/orders/{retried}/lines"),
                Some(&alice),
                Some(json!({"sku": "ADV-2", "quantity": i + 1})),
                &[("if-match", "1")],
            )
        })
        .collect();
    let statuses: Vec<u16> = futures::future::join_all(adds)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    concurrent += statuses.len();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 412].contains(s)),
        "{statuses:?}"
    );
    let race = orders[1].0.clone();
    let (cancel, ship) = tokio::join!(
        stack.send(
            Method::POST,
            &format!("/orders/{race}/cancel"),
            Some(&alice),
            None,
            &[]
        ),
        stack.send(
            Method::POST,
            &format!("/orders/{race}/ship"),
            Some(&staff),
            None,
            &[]
        ),
    );
    concurrent += 2;
    let (c, s) = (cancel.status.as_u16(), ship.status.as_u16());
    assert!(
        (c == 200) != (s == 200) && [c, s].iter().all(|x| [200, 409, 422].contains(x)),
        "cancel {c}, ship {s}"
    );

    assert!(
        wrong.is_empty(),
        "{} probes answered otherwise:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(server_errors, 0);
    assert!(leaks.is_empty(), "leaks:\n{}", leaks.join("\n"));

    // Every view converges exactly to the write model. On moto, a cancelled transaction can
    // reach the stream (README: Tests), as in load.rs, so the views are compared only on the
    // embedded backend.
    let check_views = !on_moto();
    stack.drain().await;
    for dlq in ["TrackingDLQ", "FulfillmentDLQ", "SalesDLQ"]
        .iter()
        .filter(|_| check_views)
    {
        assert!(stack.queue(dlq).await.is_empty(), "{dlq} is empty");
    }
    let mut days: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    let mut skus: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for (id, owner) in orders.iter().filter(|_| check_views) {
        let truth = stack
            .get(&format!("/orders/{id}"), &staff)
            .await
            .expect(200);
        let lines = |v: &Value, price: bool| -> Vec<Value> {
            v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    if price {
                        json!([l["sku"], l["quantity"], l["unitPriceCents"]])
                    } else {
                        json!([l["sku"], l["quantity"]])
                    }
                })
                .collect()
        };
        let tracked = stack
            .get(&format!("/tracking/orders/{id}"), owner)
            .await
            .expect(200);
        for key in ["version", "status", "totalCents", "customerId"] {
            assert_eq!(tracked[key], truth[key], "tracking {key} of {id}");
        }
        assert_eq!(
            lines(&tracked, true),
            lines(&truth, true),
            "tracking lines of {id}"
        );
        let work = stack
            .get(&format!("/fulfillment/orders/{id}"), &staff)
            .await
            .expect(200);
        for key in ["version", "status", "customerId"] {
            assert_eq!(work[key], truth[key], "fulfillment {key} of {id}");
        }
        assert_eq!(
            lines(&work, false),
            lines(&truth, false),
            "fulfillment lines of {id}"
        );
        let day = truth["placedAt"].as_str().unwrap()[..10].to_string();
        let row = days.entry(day.clone()).or_default();
        if truth["status"] != "CANCELLED" {
            row.0 += 1;
            for l in lines(&truth, true) {
                let (q, p) = (l[1].as_i64().unwrap(), l[2].as_i64().unwrap());
                row.1 += q;
                row.2 += q * p;
                let sku = skus
                    .entry((day.clone(), l[0].as_str().unwrap().into()))
                    .or_default();
                sku.0 += q;
                sku.1 += q * p;
            }
        }
    }
    for (day, (count, units, revenue)) in &days {
        let daily = stack
            .get(&format!("/sales/daily?from={day}&to={day}"), &marketing)
            .await
            .expect(200);
        assert_eq!(
            daily["days"][0],
            json!({"day": day, "orders": count, "units": units, "revenueCents": revenue}),
            "sales of {day}"
        );
        let top = stack
            .get(&format!("/sales/products?day={day}&limit=100"), &marketing)
            .await
            .expect(200);
        let want: BTreeMap<String, (i64, i64)> = skus
            .iter()
            .filter(|((d, _), amount)| d == day && **amount != (0, 0))
            .map(|((_, sku), amount)| (sku.clone(), *amount))
            .collect();
        let got: BTreeMap<String, (i64, i64)> = top["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["sku"].as_str().unwrap().into(),
                    (
                        p["units"].as_i64().unwrap(),
                        p["revenueCents"].as_i64().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(got, want, "sales by product on {day}");
    }

    assert!(
        distinct.len() >= 500,
        "only {} distinct probes",
        distinct.len()
    );
    println!(
        "adversarial: {} probes, {} distinct, {server_errors} 5xx, {} leaks ({concurrent} concurrent commands, {} orders checked in every view, {:.0} s)",
        probes.len(),
        distinct.len(),
        leaks.len(),
        if check_views { orders.len() } else { 0 },
        started.elapsed().as_secs_f64()
    );
}

fn form_encode(text: &str) -> String {
    form_urlencoded_byte_serialize(text)
}

fn form_urlencoded_byte_serialize(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
