//! `?limit=N&cursor=C` on a list.

use super::Problem;

/// `?limit=N&cursor=C` on a list, with the limit checked against `max`.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20); else 400 `invalid-limit` (or `invalid-query` when
    /// not a number).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<usize>,
    /// The opaque `cursor` of the previous page of the same list; one that is not answers 400
    /// `invalid-cursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, Problem> {
        let limit = self.limit.unwrap_or(default);
        if (1..=max).contains(&limit) {
            Ok(limit)
        } else {
            Err(Problem::bad_request(
                "invalid-limit",
                format!("limit must be between 1 and {max}"),
            ))
        }
    }
}
