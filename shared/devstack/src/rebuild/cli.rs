//! `devstack rebuild`: start a view's blue/green rebuild in a running devstack and watch
//! it to the end, one line a second.

use super::{Request, State, Status};
use crate::Result;
use crate::replay::cli::Devstack;
use std::time::Duration;

fn line(s: &Status) -> String {
    let tables: Vec<String> = s
        .tables
        .iter()
        .map(|g| format!("{} {}→{}", g.table, g.from, g.to))
        .collect();
    format!(
        "{} {:?} replayed {}/{} events, {} behind ({})",
        s.name,
        s.state,
        s.replayed,
        s.in_window,
        s.behind,
        tables.join(", ")
    ) + &s
        .error
        .as_ref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

/// Starts the rebuild and watches it; answers its last status.
pub async fn run(devstack: &Devstack, request: &Request) -> Result<Status> {
    let body = serde_json::json!({"service": request.service, "keepOld": request.keep_old});
    let mut status: Status = devstack
        .call(
            devstack
                .client
                .post(format!("{}/_devstack/rebuilds", devstack.url))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await?;
    println!("{}", line(&status));
    while !matches!(status.state, State::Completed | State::Failed) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        status = devstack
            .call(devstack.client.get(format!(
                "{}/_devstack/rebuilds/{}",
                devstack.url, status.name
            )))
            .await?;
        println!("{}", line(&status));
    }
    Ok(status)
}
