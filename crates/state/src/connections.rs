//! The connection directory: which WebSocket connections exist, on which
//! node, and what `GET @connections/{id}` tells about them. The socket
//! itself (and the queue of what to send it) stays with the node that
//! holds it; the directory only says where that is.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

/// One connection, as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEntry {
    pub id: String,
    /// The node holding the socket.
    pub node: String,
    pub api: String,
    pub stage: String,
    /// Epoch milliseconds.
    pub connected_at: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

/// Where connections are looked up by id.
pub trait ConnectionDirectory: Send + Sync + 'static {
    fn put(&self, entry: ConnectionEntry) -> BoxFuture<'_, ()>;
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()>;
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<ConnectionEntry>>;
}

/// The in-process directory.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    entries: Mutex<HashMap<String, ConnectionEntry>>,
}

impl MemoryDirectory {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, ConnectionEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ConnectionDirectory for MemoryDirectory {
    fn put(&self, entry: ConnectionEntry) -> BoxFuture<'_, ()> {
        self.entries().insert(entry.id.clone(), entry);
        Box::pin(std::future::ready(()))
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        self.entries().remove(id);
        Box::pin(std::future::ready(()))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<ConnectionEntry>> {
        Box::pin(std::future::ready(self.entries().get(id).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_are_put_found_and_removed() {
        let d: Box<dyn ConnectionDirectory> = Box::new(MemoryDirectory::default());
        let e = ConnectionEntry {
            id: "c1".into(),
            node: "n1".into(),
            api: "chat".into(),
            stage: "prod".into(),
            connected_at: 1,
            source_ip: "127.0.0.1".into(),
            user_agent: None,
        };
        d.put(e.clone()).await;
        assert_eq!(d.get("c1").await, Some(e));
        assert_eq!(d.get("c2").await, None);
        d.remove("c1").await;
        assert_eq!(d.get("c1").await, None);
    }
}
