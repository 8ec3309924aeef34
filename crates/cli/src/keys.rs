//! `stratus keys create|list|revoke` and `stratus usage`: the running
//! server's key API on its admin listener (`/stratus/api-keys`,
//! `/stratus/usage`), signed with the project's credentials as an SDK
//! would sign them.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::Value;
use stratus_config::App;

#[derive(Subcommand)]
pub(crate) enum Action {
    /// Create a key; prints its value.
    Create {
        /// The key's name.
        name: String,
        /// A usage plan to add it to (repeatable).
        #[arg(long = "plan")]
        plans: Vec<String>,
        /// The key's value (20 to 128 characters); generated when absent.
        #[arg(long)]
        value: Option<String>,
    },
    /// List every key: name, value, enabled, plans.
    List,
    /// Disable a key: it is refused from now on; its usage is kept.
    Revoke {
        /// The key's name.
        name: String,
    },
}

pub(crate) fn run(project: &Path, action: Action) -> anyhow::Result<()> {
    let app = crate::load(project)?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        match action {
            Action::Create { name, plans, value } => {
                let mut body = serde_json::json!({ "name": name, "plans": plans });
                if let Some(v) = value {
                    body["value"] = v.into();
                }
                let k = call(&app, "apigateway", "POST", "/stratus/api-keys", Some(body)).await?;
                println!("{}", k["value"].as_str().unwrap_or_default());
                eprintln!(
                    "created API key {:?} (id {}) in plans: {}",
                    k["name"].as_str().unwrap_or_default(),
                    k["id"].as_str().unwrap_or_default(),
                    plans_of(&k)
                );
            }
            Action::List => {
                let list = call(&app, "apigateway", "GET", "/stratus/api-keys", None).await?;
                let mut rows =
                    vec![["NAME", "ID", "VALUE", "ENABLED", "PLANS", "FROM"].map(String::from)];
                for k in list["items"].as_array().into_iter().flatten() {
                    rows.push([
                        k["name"].as_str().unwrap_or_default().to_owned(),
                        k["id"].as_str().unwrap_or_default().to_owned(),
                        k["value"].as_str().unwrap_or_default().to_owned(),
                        k["enabled"].as_bool().unwrap_or_default().to_string(),
                        plans_of(k),
                        if k["fromConfig"].as_bool() == Some(true) {
                            "stratus.toml".to_owned()
                        } else {
                            "created".to_owned()
                        },
                    ]);
                }
                print!("{}", table(&rows));
            }
            Action::Revoke { name } => {
                call(
                    &app,
                    "apigateway",
                    "DELETE",
                    &format!("/stratus/api-keys/{name}"),
                    None,
                )
                .await?;
                eprintln!("revoked API key {name:?}");
            }
        }
        Ok(())
    })
}

pub(crate) fn usage(project: &Path, days: u32) -> anyhow::Result<()> {
    let app = crate::load(project)?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        let list = call(
            &app,
            "apigateway",
            "GET",
            &format!("/stratus/usage?days={days}"),
            None,
        )
        .await?;
        let mut rows = vec![["DAY", "KEY", "PLAN", "CALLS", "QUOTA"].map(String::from)];
        for r in list["items"].as_array().into_iter().flatten() {
            let quota = match &r["quota"] {
                Value::Object(q) => format!(
                    "{} per {}",
                    q.get("limit").cloned().unwrap_or_default(),
                    q.get("period").and_then(Value::as_str).unwrap_or_default()
                ),
                _ => "-".to_owned(),
            };
            rows.push([
                r["day"].as_str().unwrap_or_default().to_owned(),
                r["key"].as_str().unwrap_or_default().to_owned(),
                r["plan"].as_str().unwrap_or_default().to_owned(),
                r["calls"].to_string(),
                quota,
            ]);
        }
        print!("{}", table(&rows));
        Ok(())
    })
}

fn plans_of(k: &Value) -> String {
    let plans: Vec<&str> = k["plans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if plans.is_empty() {
        "-".to_owned()
    } else {
        plans.join(",")
    }
}

/// One signed call to the admin listener; its JSON answer, or the error
/// it gave.
pub(crate) async fn call(
    app: &App,
    service: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("http://{}{path}", app.server.admin_listen);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = stratus_admin::sign_headers(
        &app.server.credentials,
        &app.server.region,
        service,
        method,
        &url,
        body.as_bytes(),
    )
    .map_err(anyhow::Error::msg)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut req = client.request(method.parse()?, &url).body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.with_context(|| {
        format!(
            "no Stratus server answers on {} (server.admin_listen): is `stratus serve` running?",
            app.server.admin_listen
        )
    })?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = v["message"].as_str().unwrap_or("no message");
        anyhow::bail!("{status}: {msg}");
    }
    Ok(v)
}

/// Rows as aligned columns.
pub(crate) fn table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            let n = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(n),
                None => widths.push(n),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .as_ref()
            .iter()
            .zip(widths.iter().copied())
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
