//! WebSocket APIs: the upgrade (with `$connect`), one task per connection,
//! route selection, `$default`, two-way responses, `$disconnect` after every
//! close, and the connection registry the `@connections` API talks to.
//!
//! Limits: frames of 32 KB, messages of 128 KB (close 1009), an idle
//! timeout and a maximum lifetime (close 1001), and a bounded send queue per
//! connection: a client that cannot keep up is closed, never buffered
//! without bound. Nothing here blocks one connection on another.

mod connection;
mod registry;
pub(crate) mod routing;
mod upgrade;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stratus_config::{Api, ApiKind, App, RouteKey, Stage};
use tokio::sync::watch;

use crate::invoke::{call_function, CallError, Invoke};

pub use registry::{ConnectionInfo, Connections, LocalConnection, Outbound, SendError};

/// API Gateway's limits.
pub const MAX_FRAME: usize = 32 * 1024;
pub const MAX_MESSAGE: usize = 128 * 1024;
/// Messages queued for one client before it counts as too slow.
const SEND_QUEUE: usize = 256;
/// How long one write to a client may take before it counts as too slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `$disconnect` event may wait for a busy function.
const LIFECYCLE_WAIT: Duration = Duration::from_secs(60);
/// How long the closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where a management call on the public listener was made (see
/// [`WebSockets::management_call`]).
#[derive(Debug)]
pub struct Management<'p> {
    /// The API id of an `{id}.execute-api.…` host.
    pub host_api: Option<String>,
    /// The path before `/@connections/`, as sent.
    pub prefix: &'p str,
    /// The connection id, as sent (percent-encoded).
    pub id: &'p str,
}

/// Every WebSocket API stage of an app, and their connections.
pub struct WebSockets {
    /// Mount path → (API, stage index).
    mounts: HashMap<String, (Arc<Api>, usize)>,
    /// API id → host mount → (API, stage index): the stages at each API's
    /// own host (router::host_mount).
    hosts: HashMap<String, HashMap<String, (Arc<Api>, usize)>>,
    registry: Arc<Connections>,
    functions: Arc<dyn Invoke>,
    stop: watch::Sender<bool>,
    /// Connection tasks still running (including their `$disconnect`).
    active: watch::Sender<usize>,
    /// Throttles, authorizers and API keys, shared with HTTP requests.
    access: Arc<crate::Access>,
}

impl WebSockets {
    pub(crate) fn new(
        app: &App,
        functions: Arc<dyn Invoke>,
        registry: Arc<Connections>,
        access: Arc<crate::Access>,
    ) -> WebSockets {
        let mut mounts = HashMap::new();
        let mut hosts: HashMap<String, HashMap<_, _>> = HashMap::new();
        for api in app.apis.iter().filter(|a| a.kind == ApiKind::WebSocket) {
            for (i, stage) in api.stages.iter().enumerate() {
                if !api.host_only {
                    mounts.insert(stage.mount.clone(), (api.clone(), i));
                }
                hosts
                    .entry(api.id.clone())
                    .or_default()
                    .insert(crate::router::host_mount(stage), (api.clone(), i));
            }
        }
        WebSockets {
            mounts,
            hosts,
            registry,
            functions,
            stop: watch::channel(false).0,
            active: watch::channel(0).0,
            access,
        }
    }

    pub fn registry(&self) -> Arc<Connections> {
        self.registry.clone()
    }

    /// The WebSocket API stage served at exactly this path: of the API's
    /// own host when `host_api` is an id the gateway serves (none when it
    /// is an HTTP or REST API's), else of the listener.
    pub(crate) fn mount(&self, host_api: Option<&str>, path: &str) -> Option<(&Arc<Api>, &Stage)> {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        let found = match host_api {
            Some(id) => self.hosts.get(id).and_then(|at| at.get(path)),
            None => self.mounts.get(path),
        };
        found.map(|(api, i)| (api, &api.stages[*i]))
    }

    /// A management call on the public listener, `{prefix}/@connections/{id}`
    /// as API Gateway's execute-api domain answers it; none when these are
    /// no WebSocket APIs or the path is not such a call.
    pub fn management_call<'p>(&self, host: Option<&str>, path: &'p str) -> Option<Management<'p>> {
        const AT: &str = "/@connections/";
        if self.hosts.is_empty() {
            return None;
        }
        let at = path.rfind(AT)?;
        let (prefix, id) = (&path[..at], &path[at + AT.len()..]);
        if prefix.is_empty() || id.is_empty() || id.contains('/') {
            return None;
        }
        Some(Management {
            host_api: crate::router::host_api_id(host),
            prefix,
            id,
        })
    }

    /// Whether `call` may reach a connection of `api`'s `stage`: made at
    /// one of that stage's mounts (its API host's `/{stage}`, or its path at
    /// the listener), or at the listener's `/{stage}`, which is what
    /// `https://{requestContext.domainName}/{requestContext.stage}` names
    /// when the client connected to the listener's address.
    pub fn reaches(&self, call: &Management<'_>, api: &str, stage: &str) -> bool {
        let prefix = percent_encoding::percent_decode_str(call.prefix).decode_utf8_lossy();
        if let Some((a, s)) = self.mount(call.host_api.as_deref(), &prefix) {
            return a.name == api && s.name == stage;
        }
        call.host_api.is_none() && prefix.strip_prefix('/') == Some(stage)
    }

    /// Whether `id` is one of these APIs'.
    pub(crate) fn serves_host(&self, id: &str) -> bool {
        self.hosts.contains_key(id)
    }

    /// The API and stage of a management endpoint `/ws/{api}/{stage}`.
    pub fn find(&self, api: &str, stage: &str) -> bool {
        self.mounts
            .values()
            .any(|(a, i)| a.name == api && a.stages[*i].name == stage)
    }

    /// Closes every connection (1001, Going away), runs their
    /// `$disconnect`, and waits for all of it, at most `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.send_replace(true);
        let mut active = self.active.subscribe();
        let _ = tokio::time::timeout(grace, active.wait_for(|n| *n == 0)).await;
    }
}

impl WebSockets {
    /// Calls a route's function (see `crate::invoke`). Messages are refused
    /// when the function is at its concurrency, as on AWS; `$connect` and
    /// `$disconnect` wait for an environment instead (within the route's
    /// timeout, and at least `LIFECYCLE_WAIT` for `$disconnect`), so that a
    /// burst of connects and drops loses none of them to a momentary limit.
    pub(super) async fn invoke(
        &self,
        route: &stratus_config::Route,
        event: Vec<u8>,
    ) -> Result<Bytes, CallError> {
        let stratus_config::Integration::Function { name } = &route.integration else {
            return Err(CallError::Failed {
                timeout: false,
                message: "not a function route".into(),
                error_message: String::new(),
            });
        };
        let (limit, wait) = match &route.key {
            RouteKey::WebSocket(k) if k == "$connect" => (route.timeout, Some(route.timeout)),
            RouteKey::WebSocket(k) if k == "$disconnect" => {
                let wait = route.timeout.max(LIFECYCLE_WAIT);
                (wait + route.timeout, Some(wait))
            }
            _ => (route.timeout, None),
        };
        call_function(
            &*self.functions,
            name,
            Bytes::from(event),
            Some(limit),
            wait,
        )
        .await
    }
}
