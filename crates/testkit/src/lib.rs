//! Helpers for Stratus's own tests and bench, never shipped: a real Stratus
//! server on port 0 in a temporary project, a real upstream HTTP server on
//! port 0, and SigV4 signing as an AWS SDK does it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A Stratus server running in this process on ephemeral ports.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub gateway: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), String>>>,
}

impl TestServer {
    /// Writes `toml` (without a `[server]` table: listeners on port 0 are
    /// added) as the project file of a fresh directory and serves it.
    pub async fn start(toml: &str) -> TestServer {
        Self::start_with_files(toml, &[]).await
    }

    /// Like `start`, with extra files `(relative path, contents)` written first.
    pub async fn start_with_files(toml: &str, files: &[(&str, &str)]) -> TestServer {
        Self::start_full("", toml, files).await
    }

    /// The most general form: `server` holds extra `[server]` keys.
    pub async fn start_full(server: &str, toml: &str, files: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        for (rel, text) in files {
            write_file(dir.path(), rel, text);
        }
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{server}\n\n{toml}"
        );
        write_file(dir.path(), "stratus.toml", &text);
        let app = stratus_config::load(dir.path())
            .unwrap_or_else(|e| panic!("test project is invalid:\n{e}"));
        let server = stratus_server::Server::bind(app).await.expect("bind");
        let gateway = server.gateway_addr();
        let admin = server.admin_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| format!("{e:#}"))
        });
        TestServer {
            dir,
            gateway,
            admin,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT` + `path` on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Signals shutdown and waits for the server to finish draining.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server run");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Writes a file, creating its directory; a file named `bootstrap` is
/// made executable, as a `provided` function needs.
pub fn write_file(dir: &Path, rel: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dir");
    }
    std::fs::write(&path, text).expect("write file");
    if path.file_name().is_some_and(|n| n == "bootstrap") {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    path
}

/// A real HTTP/1.1 upstream on port 0 with a few fixed endpoints:
/// - `/slow?ms=N`: answers `slow done` after N milliseconds;
/// - `/big?bytes=N`: streams N bytes (`x`) in 64 KiB chunks;
/// - `/count`: reads the whole request body, answers its length;
/// - anything else: echoes the request as JSON lines:
///   `method`, `uri`, then `header: value` lines, a blank line, and the body.
pub struct Upstream {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type UpBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(upstream_handler);
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { addr, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn query_num(req: &Request<Incoming>, key: &str) -> u64 {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

async fn upstream_handler(req: Request<Incoming>) -> Result<Response<UpBody>, Infallible> {
    let full = |s: String| Full::new(Bytes::from(s)).boxed();
    let resp = match req.uri().path() {
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(query_num(&req, "ms"))).await;
            Response::new(full("slow done".into()))
        }
        "/big" => {
            let total = query_num(&req, "bytes");
            let chunk = 64 * 1024u64;
            let stream = chunks(total, chunk);
            Response::new(StreamBody::new(stream).boxed())
        }
        "/count" => {
            let mut body = req.into_body();
            let mut n = 0usize;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => n += f.data_ref().map_or(0, |d| d.len()),
                    Err(_) => break,
                }
            }
            Response::new(full(n.to_string()))
        }
        _ => {
            let mut out = format!("{}\n{}\n", req.method(), req.uri());
            for (k, v) in req.headers() {
                out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
            }
            out.push('\n');
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            out.push_str(&String::from_utf8_lossy(&body));
            let mut resp = Response::new(full(out));
            resp.headers_mut().insert(
                "x-upstream",
                hyper::header::HeaderValue::from_static("echo"),
            );
            resp
        }
    };
    Ok(resp)
}

/// `total` bytes of `x` in frames of `chunk` bytes.
fn chunks(
    total: u64,
    chunk: u64,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    let frames = (0..total.div_ceil(chunk)).map(move |i| {
        let n = chunk.min(total - i * chunk) as usize;
        Ok(Frame::data(Bytes::from(vec![b'x'; n])))
    });
    futures_util::stream::iter(frames)
}

/// The headers (`authorization`, `x-amz-date`, …) that sign a request to
/// the `@connections` API with Stratus's default credentials, computed by
/// `aws-sigv4` exactly as the AWS SDKs do (service `execute-api`).
pub fn sigv4_headers(method: &str, url: &str, body: &[u8]) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let identity = aws_credential_types::Credentials::new(
        stratus_config::DEFAULT_ACCESS_KEY_ID,
        stratus_config::DEFAULT_SECRET_ACCESS_KEY,
        None,
        None,
        "stratus-testkit",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(body))
        .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .expect("request");
    instructions.apply_to_request_http1x(&mut req);
    req.headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// TCP sockets of this machine in `state` (the kernel's hex code in
/// `/proc/net/tcp`, e.g. `"08"` for CLOSE-WAIT, `"01"` for ESTABLISHED)
/// whose local port is `port`: what a server holds on its listener's port.
pub fn sockets_on_port(port: u16, state: &str) -> usize {
    let port_hex = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[1].ends_with(&port_hex) && f[3] == state
                })
                .count()
        })
        .sum()
}

/// CLOSE-WAIT in `/proc/net/tcp`: the peer closed, this side has not.
pub const TCP_CLOSE_WAIT: &str = "08";
/// ESTABLISHED in `/proc/net/tcp`.
pub const TCP_ESTABLISHED: &str = "01";

/// Polls `cond` every 20 ms for at most `limit`; true once it holds.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One HTTP/1.1 request written by hand on a fresh connection (clients
/// normalize `..` away and lower-case header names; tests of those need
/// the raw bytes). `head` is the request line plus any header lines
/// (`\r\n`-separated); `Host`, `Content-Length` and `Connection: close`
/// are added. Returns the response head and body, read until the server
/// closes (bounded to 20 s).
pub async fn raw_http(addr: SocketAddr, head: &str, body: &[u8]) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(req.as_bytes()).await.expect("write head");
    c.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut out))
        .await
        .expect("the server answers within 20 s")
        .expect("read the answer");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |i| i + 4);
    (
        String::from_utf8_lossy(&out[..split]).trim_end().to_owned(),
        out[split..].to_vec(),
    )
}
