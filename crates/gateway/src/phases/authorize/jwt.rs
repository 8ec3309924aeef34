//! JWT authorizers (HTTP APIs): the token's signature against the issuer's
//! keys (JWKS), `iss`, `aud` (or `client_id` when there is no `aud`),
//! `exp`/`nbf`, and the route's scopes. `jsonwebtoken` checks signatures
//! and times, with its pure-Rust backend (`rust_crypto`: no C toolchain).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use stratus_config::Jwks;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::GatewayError;

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;
/// A `kid` the issuer did not have is not fetched again for this long.
const MISS_INTERVAL: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One authorizer's keys, from a file or a URL: loaded at first use, kept,
/// and loaded again when a token names a `kid` not among them (the issuer
/// rotated its keys; at most once per `MISS_INTERVAL` for the same `kid`).
pub(crate) struct KeySet {
    source: Jwks,
    client: reqwest::Client,
    state: Mutex<KeyState>,
}

#[derive(Default)]
struct KeyState {
    /// `kid` → key; keys without a `kid` under "".
    keys: HashMap<String, Arc<DecodingKey>>,
    loaded: bool,
    /// `kid`s looked for and not found, and when.
    misses: HashMap<String, Instant>,
}

impl KeySet {
    pub(crate) fn new(source: Jwks) -> KeySet {
        KeySet {
            source,
            client: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .build()
                .unwrap_or_default(),
            state: Mutex::new(KeyState::default()),
        }
    }

    async fn load(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let text = match &self.source {
            Jwks::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read JWKS {}: {e}", path.display()))?,
            Jwks::Url(url) => {
                let resp = self
                    .client
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| format!("cannot fetch JWKS {url}: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("JWKS {url} answered {}", resp.status()));
                }
                resp.text()
                    .await
                    .map_err(|e| format!("cannot fetch JWKS {url}: {e}"))?
            }
        };
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| format!("the JWKS is not a key set: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            match DecodingKey::from_jwk(jwk) {
                Ok(k) => {
                    let kid = jwk.common.key_id.clone().unwrap_or_default();
                    keys.insert(kid, Arc::new(k));
                }
                Err(e) => tracing::warn!("JWKS key {:?} skipped: {e}", jwk.common.key_id),
            }
        }
        Ok(keys)
    }

    /// The key for `kid`, fetching the set (again) when it is unknown.
    async fn key(&self, kid: &str) -> Result<Option<Arc<DecodingKey>>, String> {
        let mut st = self.state.lock().await;
        if let Some(k) = st.keys.get(kid) {
            return Ok(Some(k.clone()));
        }
        let recently_missed = st
            .misses
            .get(kid)
            .is_some_and(|at| at.elapsed() < MISS_INTERVAL);
        if st.loaded && recently_missed {
            return Ok(None);
        }
        st.keys = self.load().await?;
        st.loaded = true;
        match st.keys.get(kid).cloned() {
            Some(k) => Ok(Some(k)),
            None => {
                st.misses.retain(|_, at| at.elapsed() < MISS_INTERVAL);
                st.misses.insert(kid.to_owned(), Instant::now());
                Ok(None)
            }
        }
    }
}

/// What a good token carries to the function.
pub(crate) struct Claims {
    pub(crate) claims: Map<String, Value>,
    pub(crate) scopes: Option<Vec<String>>,
}

fn invalid(description: &str) -> GatewayError {
    GatewayError::Unauthorized {
        challenge: Some(format!(
            "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{description}\""
        )),
    }
}

/// Checks `token` (a `Bearer ` prefix allowed); `scopes`: the route's, of
/// which the token must hold one (none: any token passes).
pub(crate) async fn check(
    keys: &KeySet,
    issuer: &str,
    audience: &[String],
    scopes: &[String],
    token: &str,
) -> Result<Claims, GatewayError> {
    let token = match token.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => token[7..].trim(),
        _ => token.trim(),
    };
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is malformed"))?;
    if !matches!(
        header.alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
    ) {
        return Err(invalid("the token's algorithm is not supported"));
    }
    let kid = header.kid.clone().unwrap_or_default();
    let key = match keys.key(&kid).await {
        Ok(Some(k)) => k,
        Ok(None) => return Err(invalid("no key of the issuer signed the token")),
        Err(e) => {
            tracing::warn!("jwt authorizer: {e}");
            return Err(GatewayError::AuthorizerFailed(e));
        }
    };
    let mut v = Validation::new(header.alg);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.validate_aud = false;
    v.set_issuer(&[issuer]);
    v.set_required_spec_claims(&["exp", "iss"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        invalid(match e.kind() {
            K::ExpiredSignature => "the token has expired",
            K::ImmatureSignature => "the token is not valid yet",
            K::InvalidIssuer => "the token has an invalid issuer",
            K::InvalidSignature => "the token signature is invalid",
            K::MissingRequiredClaim(_) => "the token lacks a required claim (exp, iss)",
            _ => "the token is malformed",
        })
    })?;
    let claims = data.claims;
    // `aud` against the audience list; `client_id` only when there is no `aud`.
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => claims
            .get("client_id")
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
    };
    if !aud.iter().any(|a| audience.iter().any(|want| want == a)) {
        return Err(invalid("the token does not have a valid audience"));
    }
    let held: Option<Vec<String>> = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => Some(s.split_whitespace().map(str::to_owned).collect()),
        (_, Some(Value::Array(a))) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        (_, Some(Value::String(s))) => Some(s.split_whitespace().map(str::to_owned).collect()),
        _ => None,
    };
    if !scopes.is_empty() {
        let ok = held
            .as_ref()
            .is_some_and(|h| h.iter().any(|s| scopes.contains(s)));
        if !ok {
            return Err(GatewayError::Forbidden(
                "the token has none of the route's scopes",
            ));
        }
    }
    Ok(Claims {
        claims,
        scopes: held,
    })
}

/// Claims as HTTP APIs pass them on: every value a string (numbers and
/// booleans as written, lists as `[a b]`, objects as JSON).
pub(crate) fn claims_as_strings(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => {
                    let parts: Vec<String> = items
                        .iter()
                        .map(|i| match i {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect();
                    format!("[{}]", parts.join(" "))
                }
                other => other.to_string(),
            };
            (k.clone(), Value::String(s))
        })
        .collect()
}
