//! The processes a run starts on loopback: Stratus, the bare hyper
//! baseline (this binary), nginx. Every one is killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) name: &'static str,
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
        std::thread::sleep(Duration::from_millis(20)); // blocking setup code, before any load
    }
    bail!("nothing listens on {addr} after {within:?}")
}

/// `stratus serve DIR`; returns once it logged its listen addresses.
pub(crate) fn stratus(bin: &Path, project: &Path) -> anyhow::Result<Proc> {
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(project)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(line) if line.contains("admin listening on") => break,
            Ok(line) if line.contains("ERROR") => bail!("stratus failed to start: {line}"),
            Ok(_) => {}
            Err(_) => bail!("stratus did not start"),
        }
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Ok(Proc {
        child,
        name: "stratus",
    })
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
    let bin = nginx_path().context("nginx is not installed")?;
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            r#"
worker_processes 1;
daemon off;
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
  scgi_temp_path {dir};
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; keepalive_requests 1000000; }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"#,
            dir = dir.display()
        ),
    )?;
    let child = Command::new(bin)
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
    })
}
