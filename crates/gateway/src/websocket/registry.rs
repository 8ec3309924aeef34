//! Connections by id: the sockets this node holds (a live sender each) and
//! the directory (`stratus-state`) that says which node holds a connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use stratus_state::{ConnectionDirectory, ConnectionEntry, MemoryDirectory};
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
    /// A close frame that found the send queue full (see `close`).
    pub(super) close_wanted: Mutex<Option<(u16, String)>>,
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
            close_wanted: Mutex::new(None),
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

    /// Queues `msg` if there is room, else drops it: for answers a client
    /// may miss (a throttled message's), never a reason to cut it.
    pub(super) fn offer(&self, msg: Outbound) {
        let _ = self.tx.try_send(msg);
    }

    /// Closes the connection with `code`: the close frame queued, or, when
    /// the queue is full, kept for the writer to send once it has drained.
    pub(super) fn close(&self, code: u16, reason: &str) {
        let close = Outbound::Close {
            code,
            reason: reason.to_owned(),
        };
        if self.tx.try_send(close).is_err() {
            *self.close_wanted.lock().expect("lock") = Some((code, reason.to_owned()));
        }
    }

    /// An answer to this connection's own message (a two-way route's, or
    /// its error): waits for room as long as one write may take, so a
    /// queue full of answers the client may miss (throttled messages')
    /// delays this connection's own work instead of cutting it; still full
    /// then, the client is too slow, and it goes.
    pub(super) async fn answer(&self, msg: Outbound) -> Result<(), SendError> {
        match self.tx.send_timeout(msg, super::WRITE_TIMEOUT).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.kill.notify_one();
                Err(SendError::TooSlow)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(SendError::Gone),
        }
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

/// Every WebSocket connection, found by id (for `@connections` and
/// shutdown): the sockets this node holds, and the directory that says
/// which node holds any connection. Built once by the server and handed to
/// every `Gateway` it builds, so a reload keeps every open connection.
pub struct Connections {
    /// This node's name in the directory.
    node: String,
    local: Mutex<HashMap<String, Arc<LocalConnection>>>,
    directory: Arc<dyn ConnectionDirectory>,
}

impl Connections {
    pub fn new(
        node: impl Into<String>,
        directory: Arc<dyn ConnectionDirectory>,
    ) -> Arc<Connections> {
        Arc::new(Connections {
            node: node.into(),
            local: Mutex::new(HashMap::new()),
            directory,
        })
    }

    /// One node, an in-process directory: Stratus on one machine.
    pub fn in_memory() -> Arc<Connections> {
        Connections::new("local", Arc::new(MemoryDirectory::default()))
    }

    fn get(&self, id: &str) -> Option<Arc<LocalConnection>> {
        self.local
            .lock()
            .expect("connections lock")
            .get(id)
            .cloned()
    }

    pub(super) async fn register(&self, conn: Arc<LocalConnection>) {
        let i = &conn.info;
        let entry = ConnectionEntry {
            id: i.id.clone(),
            node: self.node.clone(),
            api: i.api.clone(),
            stage: i.stage.clone(),
            connected_at: i.connected_at,
            source_ip: i.source_ip.clone(),
            user_agent: i.user_agent.clone(),
        };
        self.local
            .lock()
            .expect("connections lock")
            .insert(i.id.clone(), conn.clone());
        self.directory.put(entry).await;
    }

    pub(super) async fn unregister(&self, id: &str) {
        self.local.lock().expect("connections lock").remove(id);
        self.directory.remove(id).await;
    }

    /// Sends to a connection. One held by another node is `Gone` until
    /// nodes can forward to each other.
    pub async fn send(&self, id: &str, msg: Outbound) -> Result<(), SendError> {
        self.get(id).ok_or(SendError::Gone)?.send(msg)
    }

    /// What `GET @connections/{id}` answers: this node's live view, or the
    /// directory's entry for a connection held elsewhere.
    pub async fn info(&self, id: &str) -> Option<ConnectionInfo> {
        if let Some(c) = self.get(id) {
            return Some(c.info());
        }
        let e = self.directory.get(id).await?;
        Some(ConnectionInfo {
            id: e.id,
            api: e.api,
            stage: e.stage,
            connected_at: e.connected_at,
            last_active_at: e.connected_at,
            source_ip: e.source_ip,
            user_agent: e.user_agent,
        })
    }

    /// How many connections this node holds.
    pub fn local_count(&self) -> usize {
        self.local.lock().expect("connections lock").len()
    }
}
