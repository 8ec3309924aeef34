//! `stratus logs [FUNCTION] [-f] [--since 10m] [--filter TEXT]`: the running
//! server's function log store (`/stratus/logs` on the admin listener),
//! printed as `TIME FUNCTION LINE`; `-f` keeps polling for new lines, as
//! `sam logs --tail` and `aws logs tail --follow` do.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

/// How often `-f` asks for new lines.
const POLL: Duration = Duration::from_millis(500);

pub(crate) struct Options {
    pub(crate) function: Option<String>,
    pub(crate) follow: bool,
    pub(crate) since: Option<String>,
    pub(crate) filter: Option<String>,
    pub(crate) request_id: Option<String>,
}

/// `10m`, `30s`, `2h`, `1d` → a duration.
fn parse_since(s: &str) -> anyhow::Result<Duration> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .with_context(|| format!("--since {s:?}: expected a number and s, m, h or d (e.g. 10m)"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("--since {s:?}: the unit is s, m, h or d"),
    };
    Ok(Duration::from_secs(secs))
}

pub(crate) fn run(project: &Path, o: Options) -> anyhow::Result<()> {
    let app = crate::load(project)?;
    let since_ms = match &o.since {
        Some(s) => {
            let ago = parse_since(s)?;
            Some((chrono::Utc::now().timestamp_millis() - ago.as_millis() as i64).max(0))
        }
        None => None,
    };
    let rt = crate::runtime()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut after: Option<u64> = None;
        loop {
            let mut url = format!("http://{}/stratus/logs?limit=10000", app.server.admin_listen);
            let mut add = |k: &str, v: &str| {
                url.push_str(&format!(
                    "&{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                ));
            };
            if let Some(f) = &o.function {
                add("function", f);
            }
            if let Some(f) = &o.filter {
                add("filter", f);
            }
            if let Some(r) = &o.request_id {
                add("request_id", r);
            }
            match after {
                Some(a) => add("after", &a.to_string()),
                None => {
                    if let Some(s) = since_ms {
                        add("since", &s.to_string());
                    }
                }
            }
            let creds = &app.server.credentials;
            let resp = client
                .get(&url)
                .basic_auth(&creds.access_key_id, Some(&creds.secret_access_key))
                .send()
                .await
                .with_context(|| {
                    format!(
                        "no Stratus server answers on {} (server.admin_listen): is `stratus serve` running?",
                        app.server.admin_listen
                    )
                })?;
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                anyhow::bail!("{status}: {}", v["message"].as_str().unwrap_or("no message"));
            }
            for item in v["items"].as_array().into_iter().flatten() {
                let at = chrono::DateTime::from_timestamp_millis(item["at"].as_i64().unwrap_or(0))
                    .unwrap_or_default()
                    .format("%H:%M:%S%.3f");
                println!(
                    "{at} {} {}",
                    item["function"].as_str().unwrap_or_default(),
                    item["line"].as_str().unwrap_or_default()
                );
            }
            if !o.follow {
                return Ok(());
            }
            // Lines after the newest one the server had handed out.
            after = v["last"].as_u64().or(after);
            tokio::time::sleep(POLL).await;
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn since_takes_seconds_minutes_hours_days() {
        let d = |s| super::parse_since(s).unwrap().as_secs();
        assert_eq!(
            (d("30s"), d("10m"), d("2h"), d("1d"), d("5")),
            (30, 600, 7200, 86_400, 5)
        );
        assert!(super::parse_since("10x").is_err());
        assert!(super::parse_since("m").is_err());
    }
}
