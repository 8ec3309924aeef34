//! The API key phase (REST routes with `api_key_required`, WebSocket
//! `$connect`): the key (from `x-api-key`, or the authorizer's
//! `usageIdentifierKey` when the API's source is AUTHORIZER) must be a
//! known, enabled key of a usage plan on the request's stage. Then the
//! plan's per-key throttle (the method's own, when the plan has one for
//! the route), then its quota. Answers as AWS gives them:
//! no such key → 403 `Forbidden`; over the quota → 429 `Limit Exceeded`;
//! over the plan's rate → 429 `Too Many Requests`.

use std::sync::Arc;

use chrono::Datelike;
use stratus_config::{Api, QuotaPeriod, RouteKey, Stage, UsagePlan};
use stratus_state::{ApiKeys, Rate, RateLimiter};

use crate::error::GatewayError;

/// The keys (durable, from the data directory) and the plans they open.
pub(crate) struct KeyCheck {
    pub(crate) keys: Option<Arc<ApiKeys>>,
    pub(crate) plans: Vec<Arc<UsagePlan>>,
}

impl KeyCheck {
    /// Lets the call in on `value`, counting it; the key's name for the
    /// access log.
    pub(crate) async fn admit(
        &self,
        limiter: &dyn RateLimiter,
        api: &Api,
        stage: &Stage,
        route: &RouteKey,
        value: Option<&str>,
    ) -> Result<(), GatewayError> {
        let value = value.ok_or(GatewayError::Forbidden("no API key"))?;
        let keys = self
            .keys
            .as_ref()
            .ok_or(GatewayError::Forbidden("no API keys are configured"))?;
        let key = keys
            .find(value)
            .filter(|k| k.enabled)
            .ok_or(GatewayError::Forbidden("unknown or revoked API key"))?;
        let plan = self
            .plans
            .iter()
            .find(|p| {
                p.covers(&api.name, &stage.name)
                    && (p.keys.contains(&key.name) || key.plans.contains(&p.name))
            })
            .ok_or(GatewayError::Forbidden(
                "the API key is in no usage plan of this stage",
            ))?;
        // A method's throttle has a bucket of its own per key, in place of
        // the plan's.
        let (throttle, bucket) = match plan.method_throttle(&api.name, &stage.name, route) {
            Some(m) => (
                Some(m.throttle),
                format!(
                    "plan {} key {} route {}/{} {}",
                    plan.name, key.id, m.api, m.stage, m.route
                ),
            ),
            None => (plan.throttle, format!("plan {} key {}", plan.name, key.id)),
        };
        if let Some(t) = throttle {
            let rate = Rate {
                per_second: t.rate,
                burst: t.burst,
            };
            crate::phases::throttle::verdict(limiter.admit(&bucket, rate).await)?;
        }
        let now = chrono::Utc::now();
        let limit = plan.quota.map(|q| {
            (
                q.limit,
                stratus_state::keys::day_string(period_start(now, q.period)),
            )
        });
        if !keys.count(
            &key.id,
            &plan.name,
            limit.as_ref().map(|(l, s)| (*l, s.as_str())),
        ) {
            return Err(GatewayError::LimitExceeded);
        }
        Ok(())
    }
}

/// The first day of the quota period holding `now` (UTC): today, the
/// Monday of this week, the first of this month.
pub(crate) fn period_start(
    now: chrono::DateTime<chrono::Utc>,
    period: QuotaPeriod,
) -> chrono::DateTime<chrono::Utc> {
    match period {
        QuotaPeriod::Day => now,
        QuotaPeriod::Week => {
            now - chrono::Duration::days(i64::from(now.weekday().num_days_from_monday()))
        }
        QuotaPeriod::Month => now - chrono::Duration::days(i64::from(now.day0())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_on_the_day_the_monday_and_the_first() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T13:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let day = |p| stratus_state::keys::day_string(period_start(t, p));
        assert_eq!(day(QuotaPeriod::Day), "2026-11-25");
        // 2026-11-25 is a Wednesday.
        assert_eq!(day(QuotaPeriod::Week), "2026-11-23");
        assert_eq!(day(QuotaPeriod::Month), "2026-11-01");
    }
}
