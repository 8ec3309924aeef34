//! Accepting and serving client connections, with the limits every
//! listener has (the gateway and the admin listener alike):
//! - at most `max_connections` open at once (WebSockets included, since an
//!   upgraded connection keeps its slot); past it a new connection is
//!   answered 503 and closed;
//! - `header_timeout` to send a request's headers: a client that trickles
//!   them gets 408 and is closed; an idle keep-alive connection is closed
//!   after the same time;
//! - `max_header_bytes` for the request line and headers: past it 431;
//! - the same `header_timeout` for a write the client does not take: a
//!   client that stops reading (a dashboard stream, a large download, a
//!   WebSocket) is closed once a write has waited that long, so it holds
//!   no connection slot, buffer or stream for ever;
//! - on the admin listener, a `GET /healthz` over the cap is still
//!   answered 200 (liveness must not read as death when the server is
//!   merely full).
//!
//! HTTP/1.1 only, over plain TCP or, on the public listener, TLS on the
//! same port (see [`open`]); hyper's own HTTP/1 builder is used because it
//! is the one that can bound header size and keep the header case.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::either::Either;

/// What every listener enforces; from `[server]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_header_bytes: usize,
    /// Answer `GET /healthz` on connections refused at the cap.
    pub(crate) health_at_cap: bool,
}

/// What differs between the listeners.
pub(crate) struct Options {
    /// WebSocket upgrades (the public listener).
    pub(crate) upgrades: bool,
    /// Keep each request's head as sent (see [`HeadCapture`]).
    pub(crate) capture_heads: bool,
    /// Answer TLS too, on the same port (see [`open`]).
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Connections being answered 503 at once, at most.
const REFUSING: usize = 256;

const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 33\r\nconnection: close\r\n\r\n{\"message\":\"Service Unavailable\"}";
const HEALTHY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n";
const TIMED_OUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: 29\r\nconnection: close\r\n\r\n{\"message\":\"Request Timeout\"}";

/// Serves `listener` until `stop`, then lets open connections finish for
/// at most `grace`.
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    limits: Limits,
    make_service: impl Fn(SocketAddr, HeadCapture) -> S,
    stop: watch::Receiver<bool>,
    grace: Duration,
    options: Options,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Options {
        upgrades,
        capture_heads,
        tls,
    } = options;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSING));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .preserve_header_case(true);
    let builder = Arc::new(builder);
    let stop_rx = stop.clone();
    let stop_signal = crate::stopped(stop);
    tokio::pin!(stop_signal);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut stop_signal => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                %remote,
                "connection refused: {} connections open (server.max_connections)",
                limits.max_connections
            );
            // A refusal holds its socket for up to a second; a flood of them
            // must not become the exhaustion the cap prevents: past
            // `REFUSING` at once, excess connections are just closed.
            if let Ok(refusing) = refusals.clone().try_acquire_owned() {
                let health = limits.health_at_cap;
                tokio::spawn(async move {
                    refuse(stream, health).await;
                    drop(refusing);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let head = HeadCapture::new(capture_heads, limits.max_header_bytes);
        let service = make_service(remote, head.clone());
        let builder = builder.clone();
        let tls = tls.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let Some(stream) = open(stream, tls.as_ref(), limits.header_timeout, remote).await
            else {
                return;
            };
            let io = ClientIo::new(stream, permit, head, limits.header_timeout);
            let probe = io.probe();
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let result = if upgrades {
                drive(conn.with_upgrades(), &mut stop, |c| c.graceful_shutdown()).await
            } else {
                drive(conn, &mut stop, |c| c.graceful_shutdown()).await
            };
            if let Err(e) = result {
                if e.is_timeout() && probe.mid_request() {
                    probe.send_and_close(TIMED_OUT).await;
                    tracing::debug!(%remote, "408: request headers not received in time");
                } else {
                    tracing::debug!(%remote, "connection ended with an error: {e}");
                }
            }
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots back means
    // all connections are done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("grace period of {grace:?} over; closing the connections still open");
    }
}

/// Runs one connection; once `stop` is set, lets it finish the request in
/// flight and close (graceful shutdown).
async fn drive<C>(
    conn: C,
    stop: &mut watch::Receiver<bool>,
    shutdown: impl FnOnce(Pin<&mut C>),
) -> hyper::Result<()>
where
    C: std::future::Future<Output = hyper::Result<()>>,
{
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return r,
        _ = stop.wait_for(|s| *s) => {}
    }
    shutdown(conn.as_mut());
    conn.await
}

/// Answers a connection over the limit: 503, then close once the client's
/// request is read (closing with unread bytes would reset the connection
/// and lose the answer), bounded to one second.
async fn refuse(stream: TcpStream, health: bool) {
    let answer = if health && asks_for_health(&stream).await {
        HEALTHY
    } else {
        REFUSED
    };
    let probe = Probe {
        stream: Arc::new(Mutex::new(Either::Left(stream))),
        read_since_write: Arc::new(AtomicBool::new(true)),
    };
    probe.send_and_close(answer).await;
}

/// Whether the request waiting on `stream` is `GET /healthz` (peeked, not
/// read: the answer's drain reads it), within half a second.
async fn asks_for_health(stream: &TcpStream) -> bool {
    const LINE: &[&[u8]] = &[b"GET /healthz ", b"GET /healthz?", b"HEAD /healthz "];
    let look = async {
        let mut buf = [0u8; 16];
        loop {
            stream.readable().await.ok()?;
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return Some(false);
            }
            let seen = &buf[..n];
            if LINE.iter().any(|l| seen.starts_with(l)) {
                return Some(true);
            }
            if !LINE.iter().any(|l| l.starts_with(seen)) {
                return Some(false);
            }
            // A request line still arriving: look again shortly.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), look).await,
        Ok(Some(true))
    )
}

/// Opens a connection: on a listener with TLS, one whose first byte is a
/// TLS handshake record (0x16, which no HTTP request starts with) is
/// answered over TLS, any other as plain HTTP, on the same port. Both the
/// first byte and the handshake must come within `timeout`; a client that
/// sends neither, or a handshake that fails, is closed.
async fn open(
    stream: TcpStream,
    tls: Option<&tokio_rustls::TlsAcceptor>,
    timeout: Duration,
    remote: SocketAddr,
) -> Option<Conn> {
    let Some(acceptor) = tls else {
        return Some(Either::Left(stream));
    };
    let handshake = async {
        let mut first = [0u8; 1];
        let n = stream.peek(&mut first).await.ok()?;
        if n == 0 || first[0] != 0x16 {
            return Some(Either::Left(stream));
        }
        match acceptor.accept(stream).await {
            Ok(tls) => Some(Either::Right(Box::new(tls))),
            Err(e) => {
                tracing::debug!(%remote, "TLS handshake failed: {e}");
                None
            }
        }
    };
    match tokio::time::timeout(timeout, handshake).await {
        Ok(conn) => conn,
        Err(_) => {
            tracing::debug!(%remote, "closed: no request or TLS handshake within the header timeout");
            None
        }
    }
}

/// A client's byte stream: plain TCP, or TLS over it.
type Conn = Either<TcpStream, Box<tokio_rustls::server::TlsStream<TcpStream>>>;

/// The client socket as hyper sees it. The socket is shared with a
/// [`Probe`] so that, when hyper gives up on a client, an answer can still
/// be written to it; the connection slot is released when both are gone.
struct ClientIo {
    /// Shared with the [`Probe`]; locked only inside a poll (never across
    /// an await), by one side at a time in practice.
    stream: Arc<Mutex<Conn>>,
    /// Bytes arrived since the last write: a request is under way.
    read_since_write: Arc<AtomicBool>,
    head: HeadCapture,
    _slot: OwnedSemaphorePermit,
    /// How long a write may wait for the client to read.
    stall_limit: Duration,
    /// Armed while a write waits.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The request line and headers of the request under way, as the client
/// sent them (hyper keeps only lower-case names): for REST APIs, whose
/// events carry the client's spelling. Off unless asked for.
#[derive(Clone)]
pub(crate) struct HeadCapture(Option<Arc<Mutex<Head>>>);

struct Head {
    buf: Vec<u8>,
    done: bool,
    limit: usize,
}

impl HeadCapture {
    fn new(on: bool, limit: usize) -> HeadCapture {
        HeadCapture(on.then(|| {
            Arc::new(Mutex::new(Head {
                buf: Vec::new(),
                done: true,
                limit,
            }))
        }))
    }

    /// `data` was read; `fresh` when it starts a new request.
    fn record(&self, data: &[u8], fresh: bool) {
        let Some(head) = &self.0 else { return };
        let mut h = head.lock().expect("head lock");
        if fresh {
            h.buf.clear();
            h.done = false;
        }
        if h.done {
            return;
        }
        let from = h.buf.len().saturating_sub(3);
        let room = h.limit.saturating_sub(h.buf.len());
        h.buf.extend_from_slice(&data[..data.len().min(room)]);
        if let Some(end) = h.buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + end + 4;
            h.buf.truncate(end);
            h.done = true;
        } else if h.buf.len() >= h.limit {
            h.done = true;
        }
    }

    /// The head of the request just parsed, once.
    pub(crate) fn take(&self) -> Option<Bytes> {
        let head = self.0.as_ref()?;
        let mut h = head.lock().expect("head lock");
        (h.done && !h.buf.is_empty()).then(|| Bytes::from(std::mem::take(&mut h.buf)))
    }
}

impl ClientIo {
    fn new(
        stream: Conn,
        slot: OwnedSemaphorePermit,
        head: HeadCapture,
        stall_limit: Duration,
    ) -> ClientIo {
        ClientIo {
            stream: Arc::new(Mutex::new(stream)),
            read_since_write: Arc::new(AtomicBool::new(false)),
            head,
            _slot: slot,
            stall_limit,
            stalled: None,
        }
    }

    fn probe(&self) -> Probe {
        Probe {
            stream: self.stream.clone(),
            read_since_write: self.read_since_write.clone(),
        }
    }
}

struct Probe {
    stream: Arc<Mutex<Conn>>,
    read_since_write: Arc<AtomicBool>,
}

impl Probe {
    /// Did the client start a request that was not answered?
    fn mid_request(&self) -> bool {
        self.read_since_write.load(Ordering::Relaxed)
    }

    /// Writes a whole small answer, closes the write side, and drains what
    /// the client still sends for a moment, so that the answer is not lost
    /// to a reset.
    async fn send_and_close(&self, answer: &[u8]) {
        // Readiness is awaited without the lock (cloning the socket's
        // readiness is not possible), so poll it through `poll_fn`.
        let work = async {
            let mut sent = 0;
            while sent < answer.len() {
                sent += std::future::poll_fn(|cx| {
                    let mut s = self.stream.lock().expect("socket lock");
                    Pin::new(&mut *s).poll_write(cx, &answer[sent..])
                })
                .await?;
            }
            std::future::poll_fn(|cx| {
                let mut s = self.stream.lock().expect("socket lock");
                Pin::new(&mut *s).poll_shutdown(cx)
            })
            .await?;
            let mut sink = [0u8; 4096];
            loop {
                let n = std::future::poll_fn(|cx| {
                    let mut s = self.stream.lock().expect("socket lock");
                    let mut buf = ReadBuf::new(&mut sink);
                    ready!(Pin::new(&mut *s).poll_read(cx, &mut buf))?;
                    Poll::Ready(Ok::<_, io::Error>(buf.filled().len()))
                })
                .await?;
                if n == 0 {
                    return Ok::<_, io::Error>(());
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), work).await;
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let mut s = self.stream.lock().expect("socket lock");
        ready!(Pin::new(&mut *s).poll_read(cx, buf))?;
        drop(s);
        let data = &buf.filled()[before..];
        if !data.is_empty() {
            let fresh = !self.read_since_write.swap(true, Ordering::Relaxed);
            self.head.record(data, fresh);
        }
        Poll::Ready(Ok(()))
    }
}

impl ClientIo {
    /// Notes that an answer is being written: the request under way ended.
    /// A write still waiting after `stall_limit` fails: the client stopped
    /// reading.
    fn wrote<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match &r {
            Poll::Ready(Ok(_)) => {
                self.read_since_write.store(false, Ordering::Relaxed);
                self.stalled = None;
            }
            Poll::Ready(Err(_)) => self.stalled = None,
            Poll::Pending => {
                let limit = self.stall_limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if std::future::Future::poll(timer.as_mut(), cx).is_ready() {
                    self.stalled = None;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client read nothing for the header timeout",
                    )));
                }
            }
        }
        r
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut *self.stream.lock().expect("socket lock")).poll_write(cx, data);
        self.wrote(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r =
            Pin::new(&mut *self.stream.lock().expect("socket lock")).poll_write_vectored(cx, bufs);
        self.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream.lock().expect("socket lock")).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream.lock().expect("socket lock")).poll_shutdown(cx)
    }
}

/// Raises the soft open-file limit to the hard one, as servers do (each
/// connection, function pipe and Runtime API socket is a descriptor), and
/// returns the soft limit in force.
pub(crate) fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return u64::MAX;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        tracing::debug!("open-file limit raised from {soft} to {hard}");
        return hard;
    }
    soft
}
