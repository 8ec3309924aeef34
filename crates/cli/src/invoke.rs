//! `stratus invoke FUNCTION`: one call, through the running server's Invoke
//! API when it answers, otherwise standalone in this process.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use stratus_config::App;
use stratus_runtime::{InvokeRequest, Runtime};

use crate::Reported;

pub(crate) fn run(path: &Path, function: &str, payload: &str) -> anyhow::Result<()> {
    let app = crate::load(path)?;
    let payload = crate::text_or_file(payload)?;
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&payload) {
        anyhow::bail!("the payload is not JSON: {e}");
    }
    if !app.functions.contains_key(function) {
        anyhow::bail!(
            "no function {function:?} in {} (functions: {})",
            app.file.display(),
            app.functions.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let rt = crate::runtime()?;
    rt.block_on(async {
        match through_server(&app, function, &payload).await {
            Some(result) => result,
            None => standalone(&app, function, payload).await,
        }
    })
}

/// `None` when no server answers on the admin listener.
async fn through_server(app: &App, function: &str, payload: &[u8]) -> Option<anyhow::Result<()>> {
    let admin = app.server.admin_listen;
    if admin.port() == 0 {
        return None;
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .build()
        .ok()?;
    let url = format!("http://{admin}/2015-03-31/functions/{function}/invocations");
    let resp = client
        .post(url)
        .header("x-amz-log-type", "Tail")
        .body(payload.to_vec())
        .send()
        .await
        .ok()?;
    let status = resp.status();
    let failed = resp.headers().contains_key("x-amz-function-error");
    let logs = resp
        .headers()
        .get("x-amz-log-result")
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let body = resp.text().await.unwrap_or_default();
    if let Some(logs) = logs {
        eprint!("{logs}");
    }
    println!("{body}");
    Some(if status.is_success() && !failed {
        Ok(())
    } else {
        Err(Reported.into())
    })
}

async fn standalone(app: &App, function: &str, payload: Vec<u8>) -> anyhow::Result<()> {
    let functions = Runtime::start(app, Vec::new()).await?;
    let out = functions
        .invoke(
            function,
            InvokeRequest {
                payload: payload.into(),
                tail_logs: true,
                ..Default::default()
            },
        )
        .await;
    functions.shutdown();
    let out = out?;
    if let Some(logs) = &out.log_tail {
        eprint!("{logs}");
    }
    match out.result {
        Ok(body) => {
            println!("{}", String::from_utf8_lossy(&body));
            Ok(())
        }
        Err(e) => {
            println!("{}", String::from_utf8_lossy(&e.body));
            Err(Reported.into())
        }
    }
}
