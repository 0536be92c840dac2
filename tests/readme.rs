//! The README against `template.yaml`: its table of services, its table of routes, the
//! services a fault plan can take `down`, and the Cognito groups of the Deploy section. A
//! service or route added to (or removed from) the template without its README row fails.

use devstack::template::Template;
use std::collections::BTreeSet;
use std::path::Path;
use system_tests::template_path;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

fn template() -> Template {
    Template::load(&template_path()).unwrap()
}

/// The rows of the Markdown table whose header row starts with `| {first} |`, as cells.
fn table(text: &str, first: &str) -> Result<Vec<Vec<String>>, String> {
    let header = format!("| {first} |");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&header));
    lines
        .next()
        .ok_or(format!("README has no table headed {header}"))?;
    Ok(lines
        .skip(1) // |---|
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect())
}

/// The `code spans` of a piece of Markdown.
fn code(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// Each name once, or what was named twice.
fn set(what: &str, names: Vec<String>) -> Result<BTreeSet<String>, String> {
    let set: BTreeSet<String> = names.iter().cloned().collect();
    if set.len() != names.len() {
        return Err(format!("{what} names something twice: {names:?}"));
    }
    Ok(set)
}

fn same(what: &str, readme: BTreeSet<String>, template: BTreeSet<String>) -> Result<(), String> {
    let missing: Vec<_> = template.difference(&readme).collect();
    let extra: Vec<_> = readme.difference(&template).collect();
    if missing.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: the README lacks {missing:?} and has {extra:?}, which the template lacks"
        ))
    }
}

/// The services of the template: the last folder of each function's `CodeUri`.
fn services(template: &Template) -> BTreeSet<String> {
    template
        .functions
        .iter()
        .map(|f| f.service.clone())
        .collect()
}

fn check_services(readme: &str, template: &Template) -> Result<(), String> {
    let rows = table(readme, "service")?;
    let documented = set(
        "the table of services",
        rows.iter()
            .map(|row| row[0].trim_matches('`').to_string())
            .collect(),
    )?;
    same("services", documented, services(template))
}

fn check_routes(readme: &str, template: &Template) -> Result<(), String> {
    let rows = table(readme, "route")?;
    let documented = set(
        "the table of routes",
        rows.iter()
            .map(|row| {
                // The first code span is the route, perhaps with a query string.
                let route = code(&row[0]).into_iter().next().unwrap_or_default();
                route.split('?').next().unwrap_or_default().to_string()
            })
            .collect(),
    )?;
    let routed = set(
        "the template",
        template
            .functions
            .iter()
            .flat_map(|f| &f.routes)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect(),
    )?;
    same("routes", documented, routed)
}

fn check_down(readme: &str, template: &Template) -> Result<(), String> {
    let rows = table(readme, "field")?;
    let down = rows
        .iter()
        .find(|row| row[0] == "`down`")
        .ok_or("the faults table has no row for down")?;
    // "services (`a`, `b`) or `bus` that are down: ..."
    let names = down[1].split(':').next().unwrap_or_default();
    let documented = set("the down row", code(names))?;
    let mut expected = services(template);
    expected.insert("bus".into());
    same("down names", documented, expected)
}

fn check_groups(readme: &str) -> Result<(), String> {
    // Every role that the table of routes grants something to.
    let roles: BTreeSet<String> = table(readme, "route")?
        .iter()
        .flat_map(|row| {
            row[1]
                .split([',', ' '])
                .filter(|w| !w.is_empty() && !["any", "its"].contains(w))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let deploy = readme
        .split("\n## Deploy\n")
        .nth(1)
        .ok_or("README has no Deploy section")?;
    // "... put users in the `a`, `b` and `c` groups ..."
    let start = deploy
        .find("put users in the")
        .ok_or("the Deploy section does not say which Cognito groups to put users in")?;
    let end = deploy[start..].find("groups").ok_or("no groups")?;
    let groups = set("the Deploy section", code(&deploy[start..start + end]))?;
    same("Cognito groups (roles of the routes)", groups, roles)
}

#[test]
fn the_table_of_services_has_a_row_for_each_service_of_the_template() {
    check_services(&readme(), &template()).unwrap();
}

#[test]
fn the_table_of_routes_has_a_row_for_each_route_of_the_template() {
    check_routes(&readme(), &template()).unwrap();
}

#[test]
fn a_fault_plan_can_take_down_every_service_and_the_bus() {
    check_down(&readme(), &template()).unwrap();
}

#[test]
fn the_deploy_section_names_every_role_as_a_group() {
    check_groups(&readme()).unwrap();
}

#[test]
fn a_missing_or_extra_row_is_caught() {
    let (text, template) = (readme(), template());
    let without = |line_start: &str| -> String {
        let mut found = false;
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                let drop = !found && l.starts_with(line_start);
                found |= drop;
                !drop
            })
            .collect();
        assert!(found, "no line starts with {line_start}");
        kept.join("\n")
    };
    let with = |after: &str, row: &str| -> String {
        assert!(text.contains(after), "README lacks {after}");
        text.replacen(after, &format!("{after}\n{row}"), 1)
    };
    type Check = fn(&str, &Template) -> Result<(), String>;
    let cases: [(Check, String); 8] = [
        (check_services, without("| `sales` |")),
        (
            check_services,
            with(
                "| service | role | owns | publishes | listens to |\n|---|---|---|---|---|",
                "| `billing` | x | x | — | — |",
            ),
        ),
        (check_routes, without("| `POST /orders/{id}/deliver` |")),
        (
            check_routes,
            with(
                "| route | role | answers |\n|---|---|---|",
                "| `GET /refunds` | any | x |",
            ),
        ),
        (
            check_routes,
            with(
                "| route | role | answers |\n|---|---|---|",
                "| `GET /products/{sku}` | any | twice |",
            ),
        ),
        (check_down, text.replacen("`sales`, ", "", 1)),
        (
            check_down,
            text.replace(") or `bus`", ", `billing`) or `bus`"),
        ),
        (
            |readme, _| check_groups(readme),
            text.replace("\nand `marketing` groups", " groups"),
        ),
    ];
    for (n, (check, case)) in cases.iter().enumerate() {
        assert!(case != &text, "case {n} changed nothing");
        assert!(check(case, &template).is_err(), "case {n} was not caught");
    }
}
