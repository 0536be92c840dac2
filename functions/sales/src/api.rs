//! The sales service's HTTP API, for marketing, from the precomputed totals alone.

use crate::view::{day_key, sku_key};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bulkhead::http::{Caller, Params, Problem, with_fallbacks};
use bulkhead::store::{AttributeValue, Item, Query, Table, string_attr};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const MARKETING: &str = "marketing";
pub const MAX_DAYS: i64 = 366;
pub const DEFAULT_TOP: usize = 10;
pub const MAX_TOP: usize = 100;

type Db = Arc<dyn Table>;

pub fn router(table: Db) -> Router {
    let routes = Router::new()
        .route("/sales/daily", get(daily))
        .route("/sales/products", get(products))
        .with_state(table);
    with_fallbacks(routes)
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DailyParams {
    from: String,
    to: String,
}

/// One row per day from `from` to `to` inclusive, days without orders as zeros.
async fn daily(
    State(table): State<Db>,
    caller: Caller,
    Params(params): Params<DailyParams>,
) -> Result<Response, Problem> {
    caller.require(MARKETING)?;
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
            let day = string_attr(&item, "day")?;
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
            json!({ "day": key, "orders": orders, "units": units, "revenueCents": revenue })
        })
        .collect();
    Ok(Json(json!({ "days": days })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductParams {
    day: String,
    limit: Option<usize>,
}

/// A day's top skus by revenue.
async fn products(
    State(table): State<Db>,
    caller: Caller,
    Params(params): Params<ProductParams>,
) -> Result<Response, Problem> {
    caller.require(MARKETING)?;
    let day = date("day", &params.day)?.format("%Y-%m-%d").to_string();
    let limit = bulkhead::http::PageQuery {
        limit: params.limit,
        cursor: None,
    }
    .limit(DEFAULT_TOP, MAX_TOP)?;
    let mut rows: Vec<(String, i64, i64)> = all(table.as_ref(), sku_key(&day, "").pk)
        .await?
        .iter()
        .map(|item| {
            Ok((
                string_attr(item, "sku")?,
                number(item, "units"),
                number(item, "revenueCents"),
            ))
        })
        .collect::<bulkhead::Result<_>>()?;
    rows.retain(|(_, units, revenue)| *units != 0 || *revenue != 0);
    rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let products: Vec<_> = rows
        .into_iter()
        .take(limit)
        .map(|(sku, units, revenue)| json!({ "sku": sku, "units": units, "revenueCents": revenue }))
        .collect();
    Ok(Json(json!({ "day": day, "products": products })).into_response())
}
