//! Schedules: each `[functions.X] schedules` entry (an EventBridge rule or
//! an EventBridge Scheduler schedule) invokes its function asynchronously
//! at its runs, with the event that service sends; `fire` runs one now
//! (`stratus schedule run`).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use stratus_config::{App, Schedule, ScheduleKind};

use crate::{InvokeError, InvokeRequest, Runtime};

/// The event a schedule's run sends: its `input` as given; else an
/// EventBridge rule's Scheduled Event, or the Scheduler's `{}`.
pub fn event(s: &Schedule, region: &str, at: DateTime<Utc>) -> Bytes {
    if let Some(input) = &s.input {
        return Bytes::from(input.clone());
    }
    match s.kind {
        ScheduleKind::Scheduler => Bytes::from_static(b"{}"),
        ScheduleKind::Rule => {
            let account = crate::ACCOUNT_ID;
            let v = serde_json::json!({
                "version": "0",
                "id": uuid::Uuid::new_v4().to_string(),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": account,
                "time": at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "region": region,
                "resources": [format!("arn:aws:events:{region}:{account}:rule/{}", s.name)],
                "detail": {},
            });
            Bytes::from(v.to_string())
        }
    }
}

/// Runs schedule `s` now: its function invoked asynchronously (queued,
/// retried as any `Event` invocation); the invocation's request id.
pub async fn fire(
    functions: &Runtime,
    s: &Schedule,
    region: &str,
    at: DateTime<Utc>,
) -> Result<String, InvokeError> {
    functions.preload(&s.target).await?;
    let id = functions.invoke_async(
        &s.target,
        InvokeRequest {
            payload: event(s, region, at),
            client_context: None,
            cognito_identity: None,
            tail_logs: false,
            lineage: 0,
        },
    )?;
    tracing::info!(schedule = %s.name, function = %s.target, "schedule {} ran ({})", s.name, s.expression);
    Ok(id)
}

/// The enabled schedules of `app`, each run at its times from `since`
/// until the task is aborted (a reload starts the next app's).
pub fn spawn(
    app: Arc<App>,
    functions: Runtime,
    since: DateTime<Utc>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let region = app.server.region.clone();
        let enabled: Vec<&Arc<Schedule>> = app.schedules.iter().filter(|s| s.enabled).collect();
        if enabled.is_empty() {
            return;
        }
        let mut after = Utc::now();
        loop {
            // Each schedule's next run, once; the earliest are run together.
            let next: Vec<(DateTime<Utc>, &Arc<Schedule>)> = enabled
                .iter()
                .filter_map(|s| Some((s.parsed.next_after(after, since, s.timezone)?, *s)))
                .collect();
            let Some(at) = next.iter().map(|(t, _)| *t).min() else {
                return;
            };
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            for (_, s) in next.iter().filter(|(t, _)| *t == at) {
                if let Err(e) = fire(&functions, s, &region, at).await {
                    tracing::error!(schedule = %s.name, "schedule {} could not run: {e}", s.name);
                }
            }
            after = at;
        }
    })
}
