//! The sales service's HTTP API, for marketing, from the precomputed totals alone.

use crate::view::{day_key, sku_key};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bulkhead::http::{Params, Problem};
use bulkhead::openapi::Fragment;
use bulkhead::store::{AttributeValue, Item, Query, Table, label};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const MAX_DAYS: i64 = 366;
pub const DEFAULT_TOP: usize = 10;
pub const MAX_TOP: usize = 100;

type Db = Arc<dyn Table>;

/// Every route, declared once: the router and the document both come from here.
fn routes() -> OpenApiRouter<Db> {
    OpenApiRouter::default()
        .routes(routes!(daily))
        .routes(routes!(products))
}

pub fn router(table: Db) -> Router {
    bulkhead::openapi::router(routes(), table)
}

/// The service's part of the OpenAPI document.
pub fn openapi() -> Fragment {
    Fragment::new(
        crate::SERVICE,
        "Totals per day and per product, for marketing.",
        routes(),
    )
}

fn date(name: &str, text: &str) -> Result<NaiveDate, Problem> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        Problem::bad_request("invalid-date", format!("{name} must be a date, YYYY-MM-DD"))
    })
}

fn number(item: &Item, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or_default(),
        _ => 0,
    }
}

/// Every item of a partition, following the pages.
async fn all(table: &dyn Table, partition: String) -> bulkhead::Result<Vec<Item>> {
    let mut query = Query {
        partition,
        limit: 1000,
        ..Query::default()
    };
    let mut items = vec![];
    loop {
        let page = table.query(&query).await?;
        items.extend(page.items);
        match page.cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(items),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DailyParams {
    /// The first day, `YYYY-MM-DD` (else 400 `invalid-date`). Parsing is chrono's
    /// `%Y-%m-%d`: unpadded months and days (`2026-1-5`), leading spaces and years before
    /// 0000 (`-0001-01-01`) also pass.
    #[param(format = Date, example = "2026-11-22")]
    from: String,
    /// The last day, `YYYY-MM-DD` (else 400 `invalid-date`), parsed as `from` is.
    #[param(format = Date, example = "2026-11-22")]
    to: String,
}

/// A UTC day's totals.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DayTotals {
    /// A UTC day, `YYYY-MM-DD`; a year before 0000 has a sign (`-0001-01-01`).
    #[schema(pattern = "^[+-]?[0-9]{4,}-[0-9]{2}-[0-9]{2}$")]
    day: String,
    orders: i64,
    units: i64,
    revenue_cents: i64,
}

#[derive(Serialize, ToSchema)]
struct DailySales {
    #[schema(min_items = 1, max_items = 366)]
    days: Vec<DayTotals>,
}

/// Totals per day
///
/// Orders, units and revenue per UTC day an order was placed, one row per day from `from`
/// to `to` inclusive, zeros included. At most 366 days (else 400 `range-too-long`); `to`
/// before `from` is 400 `invalid-range`; a missing parameter or an unknown one 400
/// `invalid-query`.
#[utoipa::path(get, path = "/sales/daily", operation_id = "dailySales",
    params(DailyParams),
    responses((status = 200, description = "One row per day.", body = DailySales)),
    security(("bearerAuth" = ["marketing"])))]
async fn daily(
    State(table): State<Db>,
    Params(params): Params<DailyParams>,
) -> Result<Response, Problem> {
    let (from, to) = (date("from", &params.from)?, date("to", &params.to)?);
    if to < from {
        return Err(Problem::bad_request(
            "invalid-range",
            "to must not be before from",
        ));
    }
    if (to - from).num_days() + 1 > MAX_DAYS {
        return Err(Problem::bad_request(
            "range-too-long",
            format!("a range covers at most {MAX_DAYS} days"),
        ));
    }
    let range = || from.iter_days().take_while(move |d| *d <= to);
    let mut months: Vec<String> = range().map(|d| d.format("%Y-%m-01").to_string()).collect();
    months.dedup();
    // One query per month partition: at most 13 for a year.
    let mut found = BTreeMap::new();
    for month in months {
        for item in all(table.as_ref(), day_key(&month).pk).await? {
            let Some(day) = label(&item, "day") else {
                continue;
            };
            found.insert(
                day,
                (
                    number(&item, "orders"),
                    number(&item, "units"),
                    number(&item, "revenueCents"),
                ),
            );
        }
    }
    let days: Vec<_> = range()
        .map(|d| {
            let key = d.format("%Y-%m-%d").to_string();
            let (orders, units, revenue) = found.get(&key).copied().unwrap_or_default();
            DayTotals {
                day: key,
                orders,
                units,
                revenue_cents: revenue,
            }
        })
        .collect();
    Ok(Json(DailySales { days }).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ProductParams {
    /// The day, `YYYY-MM-DD` (else 400 `invalid-date`), parsed as `from` of the daily
    /// totals is.
    #[param(format = Date, example = "2026-11-22")]
    day: String,
    /// How many skus, 1 to 100 (default 10); else 400 `invalid-limit` (or `invalid-query`
    /// when not a number).
    #[param(minimum = 1, maximum = 100, default = 10)]
    limit: Option<usize>,
}

/// A sku's totals on a day.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SkuTotals {
    sku: String,
    units: i64,
    revenue_cents: i64,
}

#[derive(Serialize, ToSchema)]
struct ProductSales {
    /// A UTC day, `YYYY-MM-DD`; a year before 0000 has a sign (`-0001-01-01`).
    #[schema(pattern = "^[+-]?[0-9]{4,}-[0-9]{2}-[0-9]{2}$")]
    day: String,
    #[schema(max_items = 100)]
    products: Vec<SkuTotals>,
}

/// A day's top products by revenue
///
/// The day's skus with units or revenue, by revenue (then sku). A missing `day` or an
/// unknown parameter answers 400 `invalid-query`.
#[utoipa::path(get, path = "/sales/products", operation_id = "productSales",
    params(ProductParams),
    responses((status = 200, description = "The day's top skus.", body = ProductSales)),
    security(("bearerAuth" = ["marketing"])))]
async fn products(
    State(table): State<Db>,
    Params(params): Params<ProductParams>,
) -> Result<Response, Problem> {
    let day = date("day", &params.day)?.format("%Y-%m-%d").to_string();
    let limit = bulkhead::http::PageQuery {
        limit: params.limit,
        cursor: None,
    }
    .limit(DEFAULT_TOP, MAX_TOP)?;
    let mut rows: Vec<(String, i64, i64)> = all(table.as_ref(), sku_key(&day, "").pk)
        .await?
        .iter()
        .filter_map(|item| {
            let sku = label(item, "sku")?;
            Some((sku, number(item, "units"), number(item, "revenueCents")))
        })
        .collect();
    rows.retain(|(_, units, revenue)| *units != 0 || *revenue != 0);
    rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let products: Vec<_> = rows
        .into_iter()
        .take(limit)
        .map(|(sku, units, revenue)| SkuTotals {
            sku,
            units,
            revenue_cents: revenue,
        })
        .collect();
    Ok(Json(ProductSales { day, products }).into_response())
}
