//! JWTs as API Gateway's JWT authorizer checks them, signed locally with HS256.

use crate::{Error, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

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
        Some(
            data.claims
                .into_iter()
                .map(|(k, v)| (k, gateway_string(&v)))
                .collect(),
        )
    }
}

fn gateway_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(gateway_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
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
}
