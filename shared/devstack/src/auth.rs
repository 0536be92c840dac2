//! JWTs as API Gateway's JWT authorizer checks them, signed locally with HS256.

use crate::{Error, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// How far in the future a token's `nbf` or `iat` may be, for clocks that disagree a little.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// The secret used when `BULKHEAD_DEV_JWT_SECRET` is not set. Fine on a laptop, never elsewhere.
pub const DEFAULT_SECRET: &str = "bulkhead-devstack-insecure-secret";

pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl Auth {
    pub fn new(secret: &str, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Auth {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    /// A token for `sub` with the roles as Cognito groups, valid for `ttl_secs`.
    pub fn token(&self, sub: &str, roles: &[String], ttl_secs: i64) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "sub": sub,
            "cognito:groups": roles,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_secs,
            "token_use": "id",
        });
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Token(e.to_string()))
    }

    /// The claims of a valid `Authorization: Bearer` value, as API Gateway passes them to
    /// the function: every value a string, arrays in the form `[a b]`.
    ///
    /// Like API Gateway's JWT authorizer it refuses a token that is not valid yet (`nbf` or
    /// `iat` more than [`CLOCK_SKEW_SECS`] ahead) and an `iss` that is not one string. It also
    /// refuses a claim array that the `[a b]` form cannot carry unambiguously (an item that
    /// is not a string, or holds whitespace, `[`, `]`, `"` or `,`): passed on, such a
    /// `cognito:groups` could read as another list of groups.
    pub fn verify(&self, authorization: Option<&str>) -> Option<HashMap<String, String>> {
        let token = authorization?
            .strip_prefix("Bearer ")
            .or_else(|| authorization?.strip_prefix("bearer "))?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            token.trim(),
            &self.decoding,
            &self.validation,
        )
        .ok()?;
        let claims = data.claims;
        let latest = chrono::Utc::now().timestamp() + CLOCK_SKEW_SECS;
        for name in ["nbf", "iat"] {
            match claims.get(name) {
                None => {}
                Some(Value::Number(n)) if n.as_f64().is_some_and(|t| t <= latest as f64) => {}
                Some(_) => return None,
            }
        }
        if !matches!(claims.get("iss"), Some(Value::String(_))) {
            return None;
        }
        claims
            .into_iter()
            .map(|(k, v)| Some((k, gateway_string(&v)?)))
            .collect()
    }
}

fn gateway_string(v: &Value) -> Option<String> {
    Some(match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|item| match item {
                    Value::String(s)
                        if !s.is_empty()
                            && !s.contains(['[', ']', '"', ','])
                            && !s.chars().any(char::is_whitespace) =>
                    {
                        Some(s.as_str())
                    }
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            format!("[{}]", items.join(" "))
        }
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_claims_arrive_in_api_gateway_form() {
        let auth = Auth::new("s", "iss", "aud");
        let token = auth
            .token("alice", &["customer".into(), "staff".into()], 60)
            .unwrap();
        let claims = auth.verify(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["cognito:groups"], "[customer staff]");
    }

    #[test]
    fn bad_expired_or_foreign_tokens_are_refused() {
        let auth = Auth::new("s", "iss", "aud");
        assert!(auth.verify(None).is_none());
        assert!(auth.verify(Some("Bearer nonsense")).is_none());
        let expired = auth.token("alice", &[], -60).unwrap();
        assert!(auth.verify(Some(&format!("Bearer {expired}"))).is_none());
        let foreign = Auth::new("other secret", "iss", "aud")
            .token("alice", &[], 60)
            .unwrap();
        assert!(auth.verify(Some(&format!("Bearer {foreign}"))).is_none());
        let wrong_audience = Auth::new("s", "iss", "someone-else")
            .token("alice", &[], 60)
            .unwrap();
        assert!(
            auth.verify(Some(&format!("Bearer {wrong_audience}")))
                .is_none()
        );
    }

    fn signed(claims: Value) -> String {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        format!("Bearer {token}")
    }

    fn claims(extra: Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "sub": "alice", "iss": "iss", "aud": "aud", "iat": now, "exp": now + 600,
            "cognito:groups": ["customer"],
        });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    }

    #[test]
    fn tokens_not_valid_yet_are_refused_beyond_a_minute_of_skew() {
        let auth = Auth::new("s", "iss", "aud");
        let now = chrono::Utc::now().timestamp();
        assert!(auth.verify(Some(&signed(claims(json!({}))))).is_some());
        for name in ["nbf", "iat"] {
            let soon = claims(json!({ name: now + CLOCK_SKEW_SECS - 5 }));
            assert!(
                auth.verify(Some(&signed(soon))).is_some(),
                "{name} within skew"
            );
            let later = claims(json!({ name: now + CLOCK_SKEW_SECS + 30 }));
            assert!(auth.verify(Some(&signed(later))).is_none(), "{name} ahead");
            let text = claims(json!({ name: "0" }));
            assert!(
                auth.verify(Some(&signed(text))).is_none(),
                "{name} a string"
            );
        }
    }

    #[test]
    fn an_issuer_that_is_not_one_string_is_refused() {
        let auth = Auth::new("s", "iss", "aud");
        for iss in [
            json!(["iss"]),
            json!(["iss", "other"]),
            json!(null),
            json!(1),
        ] {
            let token = signed(claims(json!({ "iss": iss })));
            assert!(auth.verify(Some(&token)).is_none(), "{iss}");
        }
    }

    #[test]
    fn groups_the_gateway_form_cannot_carry_refuse_the_token() {
        let auth = Auth::new("s", "iss", "aud");
        for groups in [
            json!(["customer,staff"]),
            json!(["customer staff"]),
            json!(["\"staff\""]),
            json!([["staff"]]),
            json!([1]),
            json!([""]),
        ] {
            let token = signed(claims(json!({ "cognito:groups": groups })));
            assert!(auth.verify(Some(&token)).is_none(), "{groups}");
        }
        let token = signed(claims(json!({ "cognito:groups": ["customer", "staff"] })));
        assert_eq!(
            auth.verify(Some(&token)).unwrap()["cognito:groups"],
            "[customer staff]"
        );
    }
}
