//! The connection registry: where a connection is found by id, for the
//! `@connections` API and for shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, Notify};

/// What can be sent to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Text(String),
    Binary(Bytes),
    Close { code: u16, reason: String },
}

/// What the management API may learn about a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub id: String,
    pub api: String,
    pub stage: String,
    /// Epoch milliseconds.
    pub connected_at: i64,
    pub last_active_at: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No such connection (never was, or closed): `GoneException`.
    #[error("connection is gone")]
    Gone,
    /// Its send queue is full: the connection is being closed.
    #[error("connection cannot keep up; closing it")]
    TooSlow,
}

/// Where connections are found by id. In-process today; a registry shared
/// by several Stratus nodes implements the same calls (sending to a
/// connection held by another node becomes a message to that node).
pub trait ConnectionRegistry: Send + Sync + 'static {
    fn register(&self, conn: Arc<LocalConnection>);
    fn unregister(&self, id: &str);
    fn send<'a>(&'a self, id: &'a str, msg: Outbound) -> BoxFuture<'a, Result<(), SendError>>;
    fn info<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<ConnectionInfo>>;
    /// Connections held by this node.
    fn local(&self) -> Vec<Arc<LocalConnection>>;
}

/// A connection held by this process.
pub struct LocalConnection {
    pub(super) info: ConnectionInfo,
    pub(super) last_active: AtomicI64,
    pub(super) tx: mpsc::Sender<Outbound>,
    /// Fired to drop a connection that cannot keep up.
    pub(super) kill: Notify,
    /// Fired once the server has sent a close frame (e.g. `DELETE`): the
    /// connection ends without waiting on the client's reply.
    pub(super) closing: Notify,
    pub(super) close_sent: Mutex<Option<(u16, String)>>,
}

impl LocalConnection {
    /// A connection with no socket behind it: what is sent to it arrives on
    /// the returned receiver (in-memory tests).
    #[cfg(test)]
    pub(crate) fn detached(id: &str) -> (Arc<LocalConnection>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(16);
        let conn = LocalConnection {
            info: ConnectionInfo {
                id: id.to_owned(),
                api: String::new(),
                stage: String::new(),
                connected_at: 0,
                last_active_at: 0,
                source_ip: "192.0.2.7".into(),
                user_agent: None,
            },
            last_active: AtomicI64::new(0),
            tx,
            kill: Notify::new(),
            closing: Notify::new(),
            close_sent: Mutex::new(None),
        };
        (Arc::new(conn), rx)
    }

    pub fn info(&self) -> ConnectionInfo {
        let mut i = self.info.clone();
        i.last_active_at = self.last_active.load(Ordering::Relaxed);
        i
    }

    pub(super) fn touch(&self) {
        self.last_active
            .store(crate::events::epoch_ms(), Ordering::Relaxed);
    }

    /// Never waits: a full queue means the client is too slow, and it goes.
    pub fn send(&self, msg: Outbound) -> Result<(), SendError> {
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill.notify_one();
                Err(SendError::TooSlow)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Gone),
        }
    }
}

/// The in-process registry.
#[derive(Default)]
pub struct LocalRegistry {
    conns: Mutex<HashMap<String, Arc<LocalConnection>>>,
}

impl LocalRegistry {
    fn get(&self, id: &str) -> Option<Arc<LocalConnection>> {
        self.conns.lock().expect("registry lock").get(id).cloned()
    }
}

impl ConnectionRegistry for LocalRegistry {
    fn register(&self, conn: Arc<LocalConnection>) {
        self.conns
            .lock()
            .expect("registry lock")
            .insert(conn.info.id.clone(), conn);
    }

    fn unregister(&self, id: &str) {
        self.conns.lock().expect("registry lock").remove(id);
    }

    fn send<'a>(&'a self, id: &'a str, msg: Outbound) -> BoxFuture<'a, Result<(), SendError>> {
        let r = self
            .get(id)
            .ok_or(SendError::Gone)
            .and_then(|c| c.send(msg));
        Box::pin(std::future::ready(r))
    }

    fn info<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<ConnectionInfo>> {
        Box::pin(std::future::ready(self.get(id).map(|c| c.info())))
    }

    fn local(&self) -> Vec<Arc<LocalConnection>> {
        self.conns
            .lock()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }
}
