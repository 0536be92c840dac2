//! The notifications API: a customer's own inbox, newest first, from the view alone.

use crate::inbox::{Message, partition};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bulkhead::http::{Caller, PageQuery, Params, Problem};
use bulkhead::listener::snapshot;
use bulkhead::openapi::Fragment;
use bulkhead::store::{Query, Table};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

type Db = Arc<dyn Table>;

/// Every route, declared once: the router and the document both come from here.
fn routes() -> OpenApiRouter<Db> {
    OpenApiRouter::default().routes(routes!(list))
}

pub fn router(table: Db) -> Router {
    bulkhead::openapi::router(routes(), table)
}

/// The service's part of the OpenAPI document.
pub fn openapi() -> Fragment {
    let about = "Each customer's inbox: one message per order and status change.";
    Fragment::new(crate::SERVICE, about, routes())
}

/// A page of the caller's messages.
#[derive(Serialize, ToSchema)]
struct Inbox {
    #[schema(max_items = 100)]
    notifications: Vec<Message>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required)]
    cursor: Option<String>,
}

/// The caller's inbox
///
/// The caller's own messages, newest first: one per order shipped, delivered or cancelled.
/// Unknown query parameters answer 400 `invalid-query`.
#[utoipa::path(get, path = "/notifications", operation_id = "listNotifications",
    params(PageQuery),
    responses((status = 200, description = "A page of messages.", body = Inbox)),
    security(("bearerAuth" = ["customer"])))]
async fn list(
    State(table): State<Db>,
    caller: Caller,
    Params(page): Params<PageQuery>,
) -> Result<Response, Problem> {
    let query = Query {
        partition: partition(&caller.sub),
        descending: true,
        limit: page.limit(20, 100)?,
        cursor: page.cursor,
        ..Query::default()
    };
    let (notifications, cursor) = snapshot::list::<Message>(table.as_ref(), &query).await?;
    Ok(Json(Inbox {
        notifications,
        cursor,
    })
    .into_response())
}
