//! Who is calling: the JWT claims that API Gateway's authorizer passes on, and the ids of
//! the request that events carry as correlation and causation.

use super::headers::header_str;
use super::{Problem, Role};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lambda_http::request::RequestContext;

/// The authenticated caller, from the JWT claims that API Gateway's authorizer passes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    pub roles: Vec<String>,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r == role.name())
    }

    /// `Ok` when the caller has the role, 403 otherwise.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(Problem::forbidden(role.name()))
        }
    }

    fn from_context(context: Option<&RequestContext>) -> Option<Caller> {
        #[allow(irrefutable_let_patterns)]
        let Some(RequestContext::ApiGatewayV2(context)) = context else {
            return None;
        };
        let claims = &context.authorizer.as_ref()?.jwt.as_ref()?.claims;
        let sub = claims.get("sub").filter(|s| !s.is_empty())?.clone();
        let roles = claims
            .get("cognito:groups")
            .map(|g| parse_groups(g))
            .unwrap_or_default();
        Some(Caller { sub, roles })
    }
}

/// Reads `cognito:groups` in JSON array form (`["a","b"]`) or in API Gateway's string form
/// (`[a b]`), or a single plain group.
pub fn parse_groups(value: &str) -> Vec<String> {
    if let Ok(groups) = serde_json::from_str::<Vec<String>>(value) {
        return groups;
    }
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|g| g.trim_matches('"'))
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect()
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Caller::from_context(parts.extensions.get::<RequestContext>())
            .ok_or_else(Problem::unauthorized)
    }
}

/// Where a request came from: the ids that events carry as correlation and causation.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    pub request_id: String,
    pub correlation_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        #[allow(irrefutable_let_patterns)]
        let request_id = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
            _ => None,
        }
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let correlation_id = header_str(&parts.headers, "x-correlation-id")
            .filter(|c| !c.is_empty() && c.len() <= 128)
            .map(String::from)
            .unwrap_or_else(|| request_id.clone());
        Ok(RequestMeta {
            request_id,
            correlation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_parse_in_every_form_api_gateway_sends() {
        assert_eq!(parse_groups("[customer staff]"), ["customer", "staff"]);
        assert_eq!(
            parse_groups(r#"["customer","staff"]"#),
            ["customer", "staff"]
        );
        assert_eq!(parse_groups("staff"), ["staff"]);
        assert!(parse_groups("[]").is_empty());
    }
}
