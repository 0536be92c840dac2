//! Read your writes: a view read that waits, bounded, for a version.

use super::Problem;
use axum::http::StatusCode;

/// `?minVersion=N&maxWaitMs=W` on a view read.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    #[param(schema_with = min_version_param)]
    pub min_version: Option<u64>,
    #[param(schema_with = max_wait_param)]
    pub max_wait_ms: Option<u64>,
}

fn min_version_param() -> utoipa::openapi::schema::Object {
    crate::openapi::unsigned(
        "Read your writes: wait, polling the view with backoff, until it has this version or \
         a newer one. Still behind at the end of the wait: 412 `view-behind` with \
         `currentVersion` (0 when the view has not seen it) and `minVersion`. With it, an item \
         the caller may not see (or that does not exist) also ends in 412, never 404.",
    )
}

fn max_wait_param() -> utoipa::openapi::schema::Object {
    crate::openapi::unsigned(
        "How long `minVersion` may wait, in milliseconds. The default, and the ceiling of \
         larger values, is the function's `MIN_VERSION_MAX_WAIT_MS` (3000 in template.yaml).",
    )
}

/// Reads a view item until it has at least `query.min_version`, polling with backoff for
/// at most `query.max_wait_ms`, capped at `ceiling`. `read` answers the item and its
/// version, or `None` when the view has nothing this caller may see.
///
/// Without `minVersion`, a missing item is 404. With it, an item still behind at the end
/// of the wait is 412 `view-behind`, with `currentVersion` (0 when missing).
pub async fn read_at_least<T, F, Fut>(
    query: VersionQuery,
    ceiling: std::time::Duration,
    what: &str,
    mut read: F,
) -> Result<T, Problem>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::Result<Option<(T, u64)>>>,
{
    use std::time::{Duration, Instant};
    let wait = query
        .max_wait_ms
        .map_or(ceiling, Duration::from_millis)
        .min(ceiling);
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        let found = read().await?;
        let current = found.as_ref().map_or(0, |(_, v)| *v);
        match (found, query.min_version) {
            (Some((item, _)), None) => return Ok(item),
            (Some((item, version)), Some(min)) if version >= min => return Ok(item),
            (None, None) => return Err(Problem::not_found(what)),
            (_, Some(min)) if Instant::now() >= deadline => {
                return Err(Problem::new(
                    StatusCode::PRECONDITION_FAILED,
                    "view-behind",
                    format!("the view has version {current} of {what}, not yet {min}; try again"),
                )
                .with("currentVersion", current)
                .with("minVersion", min));
            }
            _ => {
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}
