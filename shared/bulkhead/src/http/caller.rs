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

/// Reads `cognito:groups` in exactly two forms: a JSON array of strings (`["a","b"]`), or API
/// Gateway's string form (`[a b]`, names separated by spaces). Each name is taken whole. Any
/// other value, or a name in the string form that holds `[`, `]`, `"` or `,` (which only a
/// nested or otherwise mangled claim leaves there), grants no group at all.
pub fn parse_groups(value: &str) -> Vec<String> {
    if let Ok(groups) = serde_json::from_str::<Vec<String>>(value) {
        return groups;
    }
    let Some(inner) = value
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    else {
        return vec![];
    };
    let names: Vec<String> = inner
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect();
    if names
        .iter()
        .any(|g| g.contains(['[', ']', '"', ',']) || g.chars().any(char::is_whitespace))
    {
        return vec![];
    }
    names
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

    /// The ids the request's log line shows (`observe`), or, without it, read afresh.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(meta) = parts.extensions.get::<RequestMeta>() {
            return Ok(meta.clone());
        }
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
        assert_eq!(parse_groups("[staff]"), ["staff"]);
        assert_eq!(
            parse_groups(r#"["customer","staff"]"#),
            ["customer", "staff"]
        );
        assert!(parse_groups("[]").is_empty());
        assert!(parse_groups("").is_empty());
    }

    #[test]
    fn a_group_name_is_matched_whole_and_no_other_form_grants_a_group() {
        let staff = |value: &str| {
            let caller = Caller {
                sub: "s".into(),
                roles: parse_groups(value),
            };
            caller.has_role(Role::Staff)
        };
        for value in [
            r#"["customer,staff"]"#,
            r#"["customer staff"]"#,
            r#"["\"staff\""]"#,
            r#"[["staff"]]"#,
            r#"[[staff]]"#,
            r#"[customer,staff]"#,
            r#"[customer, staff]"#,
            r#"["staff""#,
            "[customer\tstaff]",
            "staff",
            "customer staff",
            " [staff]",
            "[staff] ",
            "[staff",
            r#"{"0":"staff"}"#,
            r#""staff""#,
            r#"["staff ", " staff"]"#,
            r#"["Staff", "STAFF", "staffs"]"#,
        ] {
            assert!(!staff(value), "{value} grants staff");
        }
        assert!(staff("[customer staff]"));
        assert!(staff(r#"["customer", "staff"]"#));
    }
}
