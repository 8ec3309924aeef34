//! The processes a run starts on loopback: Stratus, the bare hyper
//! baseline (this binary), nginx. Every one is killed when dropped.
//!
//! Starting them blocks (std sleeps and clocks) on purpose: it happens
//! between measurements, never while load runs.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) name: &'static str,
    /// Leads a process group of its own, killed whole (its workers too).
    pub(crate) group: bool,
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory, MB.
    pub(crate) fn rss_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.group {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.name;
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until something accepts connections on `addr`.
pub(crate) fn wait_listening(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let end = std::time::Instant::now() + within;
    while std::time::Instant::now() < end {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on {addr} after {within:?}")
}

/// `stratus serve DIR`, its log in `DIR/stratus.log` (a file, so that
/// reading it costs the run nothing); returns once `/readyz` answers 200.
pub(crate) fn stratus(bin: &Path, project: &Path, admin: SocketAddr) -> anyhow::Result<Proc> {
    let log = std::fs::File::create(project.join("stratus.log"))?;
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(project)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    // The first start may build the Rust function: allow minutes.
    let end = std::time::Instant::now() + Duration::from_secs(900);
    while std::time::Instant::now() < end {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(project.join("stratus.log")).unwrap_or_default();
            bail!("stratus exited ({status}):\n{log}");
        }
        if ready(admin) {
            return Ok(Proc {
                child,
                name: "stratus",
                group: false,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("stratus did not become ready")
}

/// `GET /readyz` answered 200 (a plain blocking request: setup, not load).
fn ready(admin: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(admin) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    // The admin listener answers requests to an IP address (or localhost)
    // only: the Host names the address it listens on.
    let request = format!("GET /readyz HTTP/1.1\r\nhost: {admin}\r\nconnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.ends_with(b"200")
}

/// This binary in `hyper` mode: the bare hyper baseline / upstream.
pub(crate) fn hyper_baseline(port: u16) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args(["hyper", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_listening(([127, 0, 0, 1], port).into(), Duration::from_secs(10))?;
    Ok(Proc {
        child,
        name: "hyper",
        group: false,
    })
}

pub(crate) fn nginx_path() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// nginx proxying `listen` to `upstream`, with upstream keep-alive, the
/// way one tunes it for a fair proxy comparison.
pub(crate) fn nginx(dir: &Path, listen: u16, upstream: u16) -> anyhow::Result<Proc> {
    let http = format!(
        r#"
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; keepalive_requests 1000000; }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}"#
    );
    start_nginx(dir, listen, &http)
}

/// nginx serving the files of `root`, tuned as one serves static files
/// (sendfile, open-file cache, no access log).
pub(crate) fn nginx_static(dir: &Path, listen: u16, root: &Path) -> anyhow::Result<Proc> {
    let http = format!(
        r#"
  sendfile on;
  tcp_nopush on;
  open_file_cache max=1000;
  server {{
    listen 127.0.0.1:{listen};
    root {};
  }}"#,
        root.display()
    );
    start_nginx(dir, listen, &http)
}

/// One nginx process in the foreground (its pid is the one measured and
/// killed), with what every run shares (one worker, no access log,
/// keep-alive without limit, its files under `dir`) and `http`'s own
/// directives.
fn start_nginx(dir: &Path, listen: u16, http: &str) -> anyhow::Result<Proc> {
    let bin = nginx_path().context("nginx is not installed")?;
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            r#"
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {dir};
  proxy_temp_path {dir};
  fastcgi_temp_path {dir};
  uwsgi_temp_path {dir};
  scgi_temp_path {dir};{http}
}}
"#,
            dir = dir.display()
        ),
    )?;
    let child = Command::new(bin)
        .args(["-g", "daemon off; master_process off;"])
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_listening(([127, 0, 0, 1], listen).into(), Duration::from_secs(10))?;
    Ok(Proc {
        child,
        name: "nginx",
        group: false,
    })
}

/// Where `scripts/bench` installs serverless 3 and serverless-offline 12.
pub(crate) fn serverless_bin(root: &Path) -> Option<PathBuf> {
    let bin = root.join("target/bench-node/node_modules/serverless/bin/serverless.js");
    bin.is_file().then_some(bin)
}

/// serverless-offline serving `GET /node` and `GET /py` (the same handlers
/// Stratus runs), on `port`, from a service folder beside its
/// `node_modules` (where serverless finds its plugin). Its runtime labels are the
/// newest it knows (nodejs18.x, python3.9): it runs the machine's `node`
/// and `python3` whatever the label.
pub(crate) fn serverless_offline(
    bin: &Path,
    port: u16,
    node_handler: &str,
    py_handler: &str,
) -> anyhow::Result<Proc> {
    use std::os::unix::process::CommandExt;
    let dir = &bin
        .ancestors()
        .nth(4)
        .context("serverless's install folder")?
        .join("service");
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("handler.mjs"), node_handler)?;
    std::fs::write(dir.join("app.py"), py_handler)?;
    std::fs::write(
        dir.join("serverless.yml"),
        "service: bench\nframeworkVersion: '3'\nprovider:\n  name: aws\n  runtime: nodejs18.x\nplugins:\n  - serverless-offline\nfunctions:\n  node:\n    handler: handler.handler\n    events:\n      - httpApi: { method: GET, path: /node }\n  py:\n    handler: app.handler\n    runtime: python3.9\n    events:\n      - httpApi: { method: GET, path: /py }\n",
    )?;
    let log = std::fs::File::create(dir.join("serverless.log"))?;
    let child = Command::new("node")
        .arg(bin)
        .args(["offline", "start", "--noPrependStageInUrl", "--httpPort"])
        .arg(port.to_string())
        .arg("--lambdaPort")
        .arg(free_port().to_string())
        .current_dir(dir)
        // serverless 3 loads its ESM plugin through a require() fallback
        // that Node 20.19+'s require(esm) breaks.
        .env("NODE_OPTIONS", "--no-experimental-require-module")
        .env("SLS_TELEMETRY_DISABLED", "1")
        .env("SLS_NOTIFICATIONS_MODE", "off")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting serverless offline")?;
    let proc = Proc {
        child,
        name: "serverless-offline",
        group: true,
    };
    wait_listening(([127, 0, 0, 1], port).into(), Duration::from_secs(60))
        .with_context(|| std::fs::read_to_string(dir.join("serverless.log")).unwrap_or_default())?;
    Ok(proc)
}
