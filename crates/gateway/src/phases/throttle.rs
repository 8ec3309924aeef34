//! Throttling, in API Gateway's order: the route's own limit, or else its
//! stage's default (a method's setting replaces the stage's on AWS), then
//! the server-wide limit (AWS's account-level one). Usage plans' per-key
//! limits come first once API keys exist. Each limit is a token bucket
//! in the rate limiter (`stratus_state::ratelimit`); an empty one ends the
//! request with 429 `{"message":"Too Many Requests"}`.

use stratus_config::{Api, Route, Stage, Throttle};
use stratus_state::{Admission, Rate, RateLimiter};

use crate::error::GatewayError;

/// The key of the server-wide bucket.
const SERVER: &str = "server";

/// For a request (or a WebSocket message) to `route` of `api`'s `stage`.
pub(crate) async fn apply(
    limiter: &dyn RateLimiter,
    server: Option<Throttle>,
    api: &Api,
    stage: &Stage,
    route: &Route,
) -> Result<(), GatewayError> {
    let own = match (route.throttle, stage.throttle) {
        (Some(t), _) => Some((
            format!("route {}/{} {}", api.name, stage.name, route.key),
            t,
        )),
        (None, Some(t)) => Some((format!("stage {}/{}", api.name, stage.name), t)),
        (None, None) => None,
    };
    if let Some((key, t)) = own {
        verdict(limiter.admit(&key, rate(t)).await)?;
    }
    if let Some(t) = server {
        verdict(limiter.admit(SERVER, rate(t)).await)?;
    }
    Ok(())
}

/// A bucket's answer as the request's fate: on, 429, or 503 when the
/// buckets cannot be reached.
pub(crate) fn verdict(a: Admission) -> Result<(), GatewayError> {
    match a {
        Admission::Admitted => Ok(()),
        Admission::Refused => Err(GatewayError::Throttled),
        Admission::Unavailable => Err(GatewayError::StateUnavailable),
    }
}

fn rate(t: Throttle) -> Rate {
    Rate {
        per_second: t.rate,
        burst: t.burst,
    }
}
