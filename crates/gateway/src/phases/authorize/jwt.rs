//! JWT authorizers (HTTP APIs): the token's signature against the issuer's
//! keys (JWKS), `iss`, `aud` (or `client_id` when there is no `aud`),
//! `exp`/`nbf`, and the route's scopes. `jsonwebtoken` checks signatures
//! and times, with its pure-Rust backend (`rust_crypto`: no C toolchain).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use stratus_config::Jwks;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::GatewayError;

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;
/// The key set is loaded again (a token named a `kid` not in it) at most
/// once per this interval per authorizer, whatever the `kid`s: a client
/// sending tokens with made-up `kid`s costs at most one fetch per
/// interval. The first load does not count, so a rotation right after it
/// is still seen at once; a failed load does.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One authorizer's keys, from a file or a URL: loaded at first use, kept,
/// and loaded again when a token names a `kid` not among them (the issuer
/// rotated its keys), at most once per [`REFETCH_INTERVAL`]. A load runs
/// under its own lock, never the keys' (`arc-swap`): tokens signed by a
/// known key are checked while a slow issuer is fetched from, and a
/// token with an unknown `kid` arriving meanwhile is refused at once, not
/// queued behind the fetch.
pub(crate) struct KeySet {
    source: Jwks,
    /// Made at the first fetch: it trusts the system's roots and, when
    /// there is one by then, Stratus's local CA (a JWKS served by
    /// Stratus's own TLS listener).
    client: tokio::sync::OnceCell<reqwest::Client>,
    local_ca: std::path::PathBuf,
    keys: ArcSwap<Keys>,
    /// Held by the one load under way.
    loading: Mutex<()>,
    /// When the last refetch began, or a load failed: the refetch rate.
    last_load: std::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Keys {
    /// `kid` → key; keys without a `kid` under "".
    by_kid: HashMap<String, Key>,
    loaded: bool,
}

struct Key {
    key: Arc<DecodingKey>,
    /// The JWK's `alg`: when given, the only algorithm it verifies.
    alg: Option<String>,
}

impl KeySet {
    pub(crate) fn new(source: Jwks, local_ca: std::path::PathBuf) -> KeySet {
        KeySet {
            source,
            client: tokio::sync::OnceCell::new(),
            local_ca,
            keys: ArcSwap::from_pointee(Keys::default()),
            loading: Mutex::new(()),
            last_load: std::sync::Mutex::new(None),
        }
    }

    async fn load(&self) -> Result<HashMap<String, Key>, String> {
        let text = match &self.source {
            Jwks::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read JWKS {}: {e}", path.display()))?,
            Jwks::Url(url) => {
                let client = self
                    .client
                    .get_or_init(|| async {
                        let mut b = reqwest::Client::builder().timeout(FETCH_TIMEOUT);
                        if let Ok(pem) = tokio::fs::read(&self.local_ca).await {
                            if let Ok(ca) = reqwest::Certificate::from_pem(&pem) {
                                b = b.add_root_certificate(ca);
                            }
                        }
                        b.build().unwrap_or_default()
                    })
                    .await;
                let resp = client
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
                    let alg = jwk.common.key_algorithm.map(|a| a.to_string());
                    keys.insert(
                        kid,
                        Key {
                            key: Arc::new(k),
                            alg,
                        },
                    );
                }
                Err(e) => tracing::warn!("JWKS key {:?} skipped: {e}", jwk.common.key_id),
            }
        }
        Ok(keys)
    }

    fn find(&self, kid: &str) -> Option<(Arc<DecodingKey>, Option<String>)> {
        let keys = self.keys.load();
        let k = keys.by_kid.get(kid)?;
        Some((k.key.clone(), k.alg.clone()))
    }

    /// Whether a load may start: no refetch or failure within the
    /// interval.
    fn due(&self) -> bool {
        let last = *self.last_load.lock().expect("last_load lock");
        last.is_none_or(|at| at.elapsed() >= REFETCH_INTERVAL)
    }

    /// The key for `kid` (and the algorithm it is for, if its JWK says),
    /// loading the set (again) when it is unknown and a load is due.
    async fn key(&self, kid: &str) -> Result<Option<(Arc<DecodingKey>, Option<String>)>, String> {
        if let Some(k) = self.find(kid) {
            return Ok(Some(k));
        }
        let loaded = self.keys.load().loaded;
        let _guard = if loaded {
            // Keys are known: a token with another kid does not wait for
            // a load under way, nor start one before it is due.
            if !self.due() {
                return Ok(None);
            }
            match self.loading.try_lock() {
                Ok(g) => g,
                Err(_) => return Ok(None),
            }
        } else {
            // Nothing loaded yet: nothing could be checked without it.
            self.loading.lock().await
        };
        if let Some(k) = self.find(kid) {
            return Ok(Some(k));
        }
        // Another task may have loaded the set while this one waited.
        let loaded = self.keys.load().loaded;
        if !self.due() {
            return if loaded {
                Ok(None)
            } else {
                Err("the JWKS could not be loaded (tried less than 10 s ago)".into())
            };
        }
        let now = Some(Instant::now());
        if loaded {
            *self.last_load.lock().expect("last_load lock") = now;
        }
        match self.load().await {
            Ok(by_kid) => {
                self.keys.store(Arc::new(Keys {
                    by_kid,
                    loaded: true,
                }));
                Ok(self.find(kid))
            }
            Err(e) if loaded => {
                tracing::warn!("jwt authorizer: {e} (the keys loaded before are kept)");
                Ok(None)
            }
            Err(e) => {
                *self.last_load.lock().expect("last_load lock") = now;
                Err(e)
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
        // A JWK that names its algorithm verifies only that one.
        Ok(Some((_, Some(alg)))) if alg != format!("{:?}", header.alg) => {
            return Err(invalid("the token's algorithm is not its key's"))
        }
        Ok(Some((k, _))) => k,
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
