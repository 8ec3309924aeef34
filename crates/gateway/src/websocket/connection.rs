//! One connection's life: the read loop (frames, idle and lifetime timers,
//! shutdown, "too slow", "server closed"), the writer draining the send
//! queue, the worker handling messages in order, then the closing
//! handshake and `$disconnect`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use super::registry::{ConnectionInfo, LocalConnection, Outbound};
use super::routing::{find_route, Admitted};
use super::{WebSockets, CLOSE_TIMEOUT, SEND_QUEUE, WRITE_TIMEOUT};
use crate::events::epoch_ms;
use crate::events::websocket::{EventKind, Meta};

impl WebSockets {
    /// One connection, from the upgrade to `$disconnect`.
    pub(super) async fn serve<S>(
        self: &Arc<Self>,
        ws: tokio_tungstenite::WebSocketStream<S>,
        meta: Meta,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Outbound>(SEND_QUEUE);
        let conn = Arc::new(LocalConnection {
            info: ConnectionInfo {
                id: meta.conn_id.clone(),
                api: meta.api.name.clone(),
                stage: meta.stage.name.clone(),
                connected_at: meta.connected_at,
                last_active_at: meta.connected_at,
                source_ip: meta.source_ip.clone(),
                user_agent: meta.user_agent.clone(),
            },
            last_active: AtomicI64::new(meta.connected_at),
            tx,
            kill: Notify::new(),
            closing: Notify::new(),
            close_sent: Mutex::new(None),
            close_wanted: Mutex::new(None),
        });
        self.registry.register(conn.clone()).await;
        let meta = Arc::new(meta);
        let (mut sink, mut stream) = ws.split();

        // Writer: drains the send queue; a write that cannot finish in time
        // means the client is too slow. Told to finish once the connection
        // is over, it sends what is still queued, then closes its half: that
        // flushes the reply to a client's close frame (RFC 6455 §5.5.1), or
        // sends a close frame of its own if none was sent yet.
        let writer_conn = conn.clone();
        let finish = Arc::new(Notify::new());
        let writer_finish = finish.clone();
        let writer = tokio::spawn(async move {
            let (mut closed, mut finishing) = (false, false);
            loop {
                let out = if finishing {
                    rx.try_recv().ok()
                } else {
                    tokio::select! {
                        out = rx.recv() => out,
                        () = writer_finish.notified() => {
                            finishing = true;
                            rx.try_recv().ok()
                        }
                    }
                };
                // Drained: a close frame that found the queue full goes last.
                let out = out.or_else(|| {
                    let wanted = finishing
                        .then(|| writer_conn.close_wanted.lock().expect("lock").take())
                        .flatten();
                    wanted.map(|(code, reason)| Outbound::Close { code, reason })
                });
                let Some(out) = out else { break };
                if let Outbound::Close { code, reason } = &out {
                    *writer_conn.close_sent.lock().expect("lock") = Some((*code, reason.clone()));
                }
                let (msg, last) = match out {
                    Outbound::Text(t) => (Message::text(t), false),
                    Outbound::Binary(b) => (Message::binary(b), false),
                    Outbound::Close { code, reason } => (
                        Message::Close(Some(CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        })),
                        true,
                    ),
                };
                match tokio::time::timeout(WRITE_TIMEOUT, sink.send(msg)).await {
                    Ok(Ok(())) if !last => {}
                    Ok(Ok(())) => {
                        closed = true;
                        writer_conn.closing.notify_one();
                        break;
                    }
                    Ok(Err(_)) => break,
                    Err(_) => {
                        writer_conn.kill.notify_one();
                        return;
                    }
                }
            }
            if !closed && !finishing {
                writer_finish.notified().await;
            }
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
        });

        // Messages are handled in order, one at a time, off the read loop,
        // so that a slow function never stops pings, limits or closes.
        // Routing and throttles are applied on the read loop (`admit`):
        // only messages with work to do are queued.
        let (in_tx, mut in_rx) = mpsc::channel::<Admitted>(SEND_QUEUE);
        let worker_hub = self.clone();
        let worker_conn = conn.clone();
        let worker_meta = meta.clone();
        let worker = tokio::spawn(async move {
            while let Some(msg) = in_rx.recv().await {
                worker_hub
                    .on_admitted(&worker_conn, &worker_meta, msg)
                    .await;
            }
        });

        let api = &meta.api;
        let lifetime_end = Instant::now() + api.max_lifetime;
        let mut stop = self.stop.subscribe();
        let (code, reason): (u16, String);
        loop {
            let idle_for = Duration::from_millis(
                (epoch_ms() - conn.last_active.load(Ordering::Relaxed)).max(0) as u64,
            );
            let idle_end = Instant::now() + api.idle_timeout.saturating_sub(idle_for);
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                        conn.touch();
                        let Some(admitted) = self.admit(&conn, &meta, msg).await else {
                            continue;
                        };
                        if in_tx.try_send(admitted).is_err() {
                            (code, reason) = (1008, "Too many messages in flight".into());
                            conn.close(code, &reason);
                            break;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => conn.touch(),
                    Some(Ok(Message::Close(frame))) => {
                        (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        break;
                    }
                    Some(Ok(Message::Frame(_))) => {}
                    Some(Err(e)) => {
                        (code, reason) = close_for(&e);
                        tracing::debug!(connection = %conn.info.id, "closing: {e}");
                        if code != 1006 {
                            let _ = conn.send(Outbound::Close { code, reason: reason.clone() });
                        }
                        break;
                    }
                    None => {
                        (code, reason) = (1006, "Connection lost".into());
                        break;
                    }
                },
                () = tokio::time::sleep_until(idle_end) => {
                    if epoch_ms() - conn.last_active.load(Ordering::Relaxed) < api.idle_timeout.as_millis() as i64 {
                        continue;
                    }
                    (code, reason) = (1001, "Going away".into());
                    let _ = conn.send(Outbound::Close { code, reason: reason.clone() });
                    break;
                }
                () = tokio::time::sleep_until(lifetime_end) => {
                    (code, reason) = (1001, "Going away".into());
                    let _ = conn.send(Outbound::Close { code, reason: reason.clone() });
                    break;
                }
                // The guard `wait_for` returns is not Send: dropped in here,
                // since an arm above awaits while the select's output lives.
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    (code, reason) = (1001, "Going away".into());
                    let _ = conn.send(Outbound::Close { code, reason: reason.clone() });
                    break;
                }
                () = conn.kill.notified() => {
                    (code, reason) = (1008, "Slow consumer".into());
                    break;
                }
                () = conn.closing.notified() => {
                    (code, reason) = conn
                        .close_sent
                        .lock()
                        .expect("lock")
                        .clone()
                        .unwrap_or((1000, String::new()));
                    break;
                }
            }
        }

        // The connection is gone for everyone at once.
        self.registry.unregister(&conn.info.id).await;
        drop(in_tx);
        worker.abort();
        // Let the closing handshake reach the client, briefly; then both
        // halves are dropped, which closes the socket. Meanwhile what the
        // client still sends is read and dropped, up to its close frame: a
        // socket closed with unread bytes is reset, and the client would
        // lose the close frame (and see 1006).
        finish.notify_one();
        let writer_abort = writer.abort_handle();
        let drain = async {
            while let Some(Ok(m)) = stream.next().await {
                if m.is_close() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = tokio::join!(writer, drain);
        })
        .await;
        writer_abort.abort();
        drop(stream);
        if let Some(route) = find_route(&meta.api, "$disconnect") {
            let request_id = uuid::Uuid::new_v4().to_string();
            let event = meta.event(
                EventKind::<()>::Disconnect(code, &reason),
                "$disconnect",
                &request_id,
                None,
            );
            // Best effort, as on AWS: a failure is only logged.
            if self.invoke(route, event).await.is_err() {
                tracing::warn!(connection = %meta.conn_id, "$disconnect failed");
            }
        }
        stratus_telemetry::WebSocketClosed {
            connection_id: &meta.conn_id,
            api: &meta.api.name,
            stage: &meta.stage.name,
            code,
            reason: &reason,
            open_for: std::time::Duration::from_millis(
                u64::try_from(crate::events::epoch_ms() - meta.connected_at).unwrap_or(0),
            ),
        }
        .emit();
    }
}

/// The close code and reason for a connection that failed to read: 1009
/// for size limits, 1007 for text that is not UTF-8, 1002 for other
/// protocol violations (unmasked frames, reserved bits), 1006 when the
/// connection is simply gone (nothing to send).
fn close_for(e: &tungstenite::Error) -> (u16, String) {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::Capacity(_) => (1009, "Message too big".into()),
        tungstenite::Error::Utf8(_) => (1007, "Invalid frame payload data".into()),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            (1006, "Connection lost".into())
        }
        tungstenite::Error::Protocol(_) => (1002, "Protocol error".into()),
        _ => (1006, "Connection lost".into()),
    }
}
