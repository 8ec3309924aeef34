//! The portal example end to end, as a user uses it: `stratus init
//! --template portal`, `stratus serve`, then two pages in headless
//! Chromium (Playwright): sign in, open a ticket, see it appear live on the
//! other page, reply, attach a file through a presigned URL, search, and
//! the dashboard counting the calls. Screenshots in target/screenshots.
//! Also: the same project on PostgreSQL by one setting.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{free_port, run_cli, Serving};

/// `stratus init --template portal` in `dir`, on free ports; the ports.
fn portal(dir: &Path, database: Option<&str>) -> (u16, u16) {
    let (ok, _, err) = run_cli(&["init", dir.to_str().unwrap(), "--template", "portal"]);
    assert!(ok, "{err}");
    let (gw, admin) = (free_port(), free_port());
    let mut toml = std::fs::read_to_string(dir.join("stratus.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gw}"))
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{admin}"));
    if let Some(url) = database {
        toml = toml.replace(
            "[databases.main]\n",
            &format!("[databases.main]\nengine = \"postgres\"\nurl = \"{url}\"\n"),
        );
    }
    std::fs::write(dir.join("stratus.toml"), toml).unwrap();
    (gw, admin)
}

/// playwright-core, installed once under target/e2e (npm).
fn playwright() -> Option<PathBuf> {
    crate::support::npm_installed(
        "e2e",
        &["playwright-core@1.64.1"],
        "the portal in a browser",
    )
    .map(|m| m.join("playwright-core"))
}

#[test]
fn the_portal_in_a_browser_sign_in_live_tickets_attachments_and_the_dashboard() {
    let Some(chromium) = crate::support::chromium("the portal in a browser") else {
        return;
    };
    let Some(playwright) = playwright() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("portal");
    portal(&root, None);
    let s = Serving::start(&root);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/portal.mjs"))
        .env("PLAYWRIGHT", &playwright)
        .env("CHROMIUM", chromium)
        .env("PORTAL", s.url("/"))
        .env("DASHBOARD", format!("http://{}/", s.admin))
        .env("SHOTS", &shots)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the browser run failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["seedTickets"], 3, "{v}");
    assert_eq!(v["notices"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["whoami"], "Signed in as Ada");
    assert_eq!(v["signinFormHidden"], true);
    assert_eq!(v["liveOnOtherPage"], true);
    assert_eq!(v["attachment"], "printer_log.txt");
    assert_eq!(v["attachmentBody"], "paper jam at 11:02\nthen smoke\n");
    assert_eq!(v["detailError"], "");
    assert_eq!(v["searchHits"], serde_json::json!([v["title"]]));
    assert!(v["dashboardRequests"].as_u64().unwrap() >= 10, "{v}");
    let functions: Vec<&str> = v["dashboardFunctions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in ["auth", "notices", "tickets"] {
        assert!(functions.contains(&f), "{functions:?}");
    }
    for shot in [
        "portal-home",
        "portal-live",
        "portal-ticket",
        "portal-dashboard",
    ] {
        assert!(shots.join(format!("{shot}.png")).is_file(), "{shot}");
    }
}

/// The same portal on PostgreSQL, by one setting: its APIs as a client
/// sees them (the Data API function, the driver function on psycopg),
/// with their validation, pagination and access rules.
#[tokio::test]
async fn the_portal_on_postgresql_by_one_setting() {
    let schema = crate::databases::PgSchema::new().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("portal");
    portal(&root, Some(&schema.url));
    let s = tokio::task::spawn_blocking(move || Serving::start(&root))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut r = http.request(method, s.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
            )
        }
    };
    use reqwest::Method;
    // Seeded through the migrations and seed.sql on PostgreSQL.
    let (status, list) = call(Method::GET, "/api/tickets?limit=2", None, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let next = list["next"].as_str().expect("a next page").to_owned();
    let (_, page2) = call(
        Method::GET,
        &format!("/api/tickets?limit=2&next={next}"),
        None,
        None,
    )
    .await;
    assert_eq!(page2["items"][0]["id"], "t-seed-1");
    assert_eq!(page2["next"], Value::Null);
    // Bad input gets an AWS-style message.
    let (status, bad) = call(Method::GET, "/api/tickets?limit=500", None, None).await;
    assert_eq!(
        (status, bad["message"].as_str()),
        (400, Some("limit: a number from 1 to 50"))
    );
    let (status, _) = call(Method::GET, "/api/tickets?next=garbage!", None, None).await;
    assert_eq!(status, 400);
    // Writes need a token; with one, validation, then a ticket.
    let new = serde_json::json!({"title": "Database moved", "body": "now on PostgreSQL"});
    let (status, _) = call(Method::POST, "/api/tickets", None, Some(new.clone())).await;
    assert_eq!(status, 401);
    let (status, token) = call(
        Method::POST,
        "/api/auth/token",
        None,
        Some(serde_json::json!({"name": "Grace"})),
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let token = token["token"].as_str().unwrap().to_owned();
    let (status, bad) = call(
        Method::POST,
        "/api/tickets",
        Some(&token),
        Some(serde_json::json!({"title": "x"})),
    )
    .await;
    assert_eq!(
        (status, bad["message"].as_str()),
        (400, Some("title: 3 to 120 characters"))
    );
    let (status, t) = call(Method::POST, "/api/tickets", Some(&token), Some(new)).await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["author"], "Grace");
    let id = t["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        Method::POST,
        &format!("/api/tickets/{id}/replies"),
        Some(&token),
        Some(serde_json::json!({"body": "ok"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, found) = call(Method::GET, "/api/tickets?q=postgresql", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(found["items"][0]["id"], id.as_str());
    let (_, detail) = call(Method::GET, &format!("/api/tickets/{id}"), None, None).await;
    assert_eq!(detail["replies"][0]["body"], "ok");
    let (status, _) = call(Method::GET, "/api/tickets/t-nope", None, None).await;
    assert_eq!(status, 404);
    // The REST API: an API key of the usage plan, then the psycopg function.
    let (status, _) = call(Method::GET, "/public/prod/notices", None, None).await;
    assert_eq!(status, 403);
    let r = http
        .get(s.url("/public/prod/notices?q=maintenance"))
        .header("x-api-key", "portal-public-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let notices: Value = r.json().await.unwrap();
    assert_eq!(notices["total"], 1);
    assert_eq!(notices["items"][0]["id"], "n-maintenance");
    // Really in PostgreSQL.
    let mut c: sqlx::PgConnection = sqlx::Connection::connect(&schema.url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM tickets")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 4);
}
