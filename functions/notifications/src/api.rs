//! The notifications API: a customer's own inbox, newest first, from the view alone.

use crate::inbox::{Message, partition};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bulkhead::http::{Caller, PageQuery, Params, Problem, with_fallbacks};
use bulkhead::listener::snapshot;
use bulkhead::store::{Query, Table};
use serde_json::json;
use std::sync::Arc;

pub const CUSTOMER: &str = "customer";
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

pub fn router(table: Arc<dyn Table>) -> Router {
    let routes = Router::new()
        .route("/notifications", get(list))
        .with_state(table);
    with_fallbacks(routes)
}

async fn list(
    State(table): State<Arc<dyn Table>>,
    caller: Caller,
    Params(page): Params<PageQuery>,
) -> Result<Response, Problem> {
    caller.require(CUSTOMER)?;
    let query = Query {
        partition: partition(&caller.sub),
        descending: true,
        limit: page.limit(DEFAULT_PAGE, MAX_PAGE)?,
        cursor: page.cursor,
        ..Query::default()
    };
    let (messages, cursor) = snapshot::list::<Message>(table.as_ref(), &query).await?;
    Ok(Json(json!({ "notifications": messages, "cursor": cursor })).into_response())
}
