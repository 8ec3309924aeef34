//! The admin listener's routes: health and readiness, and one router per
//! AWS API Stratus answers (Lambda's Invoke API; API Gateway's
//! `@connections`; later S3, the RDS Data API and the dashboard). Each is
//! testable in memory (`router(state).oneshot(request)`). Requests signed
//! with SigV4 are checked by one verifier (`sigv4`), errors are shaped in
//! one place (`error`).
//!
//! Nothing here binds a socket: the server mounts this router on the admin
//! listener.

mod cache;
mod cloudformation;
pub mod connections;
mod deployments;
mod error;
mod keys;
mod lambda;
mod lambda_versions;
mod monitor;
pub mod notify;
mod origin;
mod rds_data;
mod s3;
mod schedules;
pub mod sigv4;

pub use cloudformation::StackInfo;
pub use monitor::DashboardFeed;
pub use sigv4::sign_headers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use stratus_runtime::Runtime;

/// What the admin APIs work on.
#[derive(Clone)]
pub struct AdminState {
    /// False once shutdown begins (`/readyz` answers 503).
    pub ready: Arc<AtomicBool>,
    pub functions: Runtime,
    pub region: String,
    pub credentials: stratus_config::Credentials,
    /// Check every signature against `credentials` (`[server.credentials]`
    /// set); otherwise any well-formed credentials pass (`sigv4`).
    pub verify_signatures: bool,
    /// The project's databases (the RDS Data API).
    pub databases: Arc<stratus_state::databases::Databases>,
    /// Buckets and objects (the S3 API).
    pub objects: Arc<dyn stratus_state::objects::ObjectStore>,
    /// What a reload replaces.
    pub live: Arc<arc_swap::ArcSwap<Live>>,
    /// API keys (None when the project uses none).
    pub keys: Option<Arc<stratus_state::ApiKeys>>,
    /// Asks the server to reload (a stage moved); answered once the new
    /// configuration serves (`true`) or failed to load (`false`).
    pub reload: Option<tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<bool>>>,
    /// What the dashboard streams send.
    pub dashboard: Arc<DashboardFeed>,
    /// The running template as a stack (None: a `stratus.toml` project).
    pub stack: Option<Arc<StackInfo>>,
}

/// The project and what the current gateway made of it; a reload
/// (`stratus dev`, SIGHUP) swaps it whole.
pub struct Live {
    /// The project (the dashboard's route table and prices, usage plans).
    pub app: Arc<stratus_config::App>,
    /// The WebSocket APIs (`@connections`).
    pub websockets: Arc<stratus_gateway::WebSockets>,
    /// Sites: told when an object changes (their edge cache).
    pub sites: Arc<stratus_gateway::Sites>,
    /// The REST stages' response caches (flushed on request).
    pub caches: Arc<stratus_gateway::StageCaches>,
}

impl AdminState {
    pub fn app(&self) -> Arc<stratus_config::App> {
        self.live.load().app.clone()
    }

    pub fn websockets(&self) -> Arc<stratus_gateway::WebSockets> {
        self.live.load().websockets.clone()
    }

    pub fn sites(&self) -> Arc<stratus_gateway::Sites> {
        self.live.load().sites.clone()
    }
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState").finish_non_exhaustive()
    }
}

/// A signed admin request's JSON body: 403 for a bad signature (the one
/// rule, for `service`), 400 `code` saying `expected` for a body that is
/// not what it should be.
pub(crate) fn signed_json<T: serde::de::DeserializeOwned>(
    s: &AdminState,
    service: &str,
    (method, uri, headers, body): (
        &axum::http::Method,
        &axum::http::Uri,
        &axum::http::HeaderMap,
        &[u8],
    ),
    code: &str,
    expected: &str,
) -> Result<T, Box<Response>> {
    if let Err((c, why)) = sigv4::authorize(s, service, method, uri, headers, body) {
        return Err(Box::new(error::apigw_error(StatusCode::FORBIDDEN, c, &why)));
    }
    serde_json::from_slice(body)
        .map_err(|_| Box::new(error::apigw_error(StatusCode::BAD_REQUEST, code, expected)))
}

/// Every admin route.
pub fn router(state: AdminState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(lambda::router())
        .merge(connections::router())
        .merge(keys::router())
        .merge(monitor::router())
        .merge(s3::router())
        .merge(rds_data::router())
        .merge(cache::router())
        .merge(deployments::router())
        .merge(schedules::router())
        .layer(axum::extract::DefaultBodyLimit::max(
            stratus_runtime::MAX_SYNC_PAYLOAD + 1,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            s3::bucket_cors,
        ))
        // Outermost: a cross-site or rebound request reaches nothing.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            origin::guard,
        ))
        .with_state(state)
}

async fn readyz(State(s): State<AdminState>) -> Response {
    if s.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

#[cfg(test)]
mod tests;
