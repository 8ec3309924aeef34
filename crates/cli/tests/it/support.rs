//! Running the real `stratus` binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub(crate) fn stratus() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stratus"));
    cmd.env_remove("STRATUS_LOG");
    cmd
}

/// `stratus ARGS...`: (success, stdout, stderr).
pub(crate) fn run_cli(args: &[&str]) -> (bool, String, String) {
    let out = stratus().args(args).output().expect("run stratus");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `stratus serve PATH` as a child process; killed when dropped.
pub(crate) struct Serving {
    pub(crate) child: Child,
    pub(crate) gateway: SocketAddr,
    pub(crate) admin: SocketAddr,
    /// Every stderr line, as it arrives.
    pub(crate) lines: mpsc::Receiver<String>,
    /// While set, nobody reads the server's stderr (its pipe fills up).
    paused: Arc<AtomicBool>,
}

impl Serving {
    pub(crate) fn start(project: &Path) -> Serving {
        Self::start_with_env(project, &[])
    }

    /// `start`, with extra environment variables for the server.
    pub(crate) fn start_with_env(project: &Path, env: &[(&str, &str)]) -> Serving {
        Self::start_with(project, &[], env)
    }

    /// `start`, with extra arguments and environment variables.
    pub(crate) fn start_with(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Serving {
        Self::start_command("serve", project, args, env)
    }

    /// `stratus dev PATH`.
    /// `stratus serve PATH --port 0 --admin-listen 127.0.0.1:0` (a template
    /// names no listeners of its own).
    pub(crate) fn start_on_free_ports(project: &Path) -> Serving {
        Self::start_with(
            project,
            &["--port", "0", "--admin-listen", "127.0.0.1:0"],
            &[],
        )
    }

    pub(crate) fn start_dev(project: &Path) -> Serving {
        Self::start_command("dev", project, &[], &[])
    }

    fn start_command(
        command: &str,
        project: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Serving {
        let mut child = stratus()
            .arg(command)
            .arg(project)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stratus serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let paused = Arc::new(AtomicBool::new(false));
        let reader_paused = paused.clone();
        // A plain thread reading a pipe: sleeping here blocks no runtime.
        #[allow(clippy::disallowed_methods)]
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            loop {
                while reader_paused.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let Some(Ok(line)) = lines.next() else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut gateway = None;
        let mut admin = None;
        let mut seen = Vec::new();
        while gateway.is_none() || admin.is_none() {
            // Generous: the first start may build the project's Rust functions.
            let line = rx
                .recv_timeout(Duration::from_secs(600))
                .unwrap_or_else(|e| {
                    panic!(
                        "stratus serve printed no listen addresses ({e}); it said:\n{}",
                        seen.join("\n")
                    )
                });
            seen.push(line.clone());
            let addr =
                |l: &str| -> Option<SocketAddr> { l.split("http://").nth(1)?.trim().parse().ok() };
            if line.contains("gateway listening on") {
                gateway = addr(&line);
            } else if line.contains("admin listening on") {
                admin = addr(&line);
            }
        }
        Serving {
            child,
            gateway: gateway.unwrap(),
            admin: admin.unwrap(),
            lines: rx,
            paused,
        }
    }

    /// Stops (or resumes) reading the server's stderr.
    pub(crate) fn pause_stderr(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Stderr lines until one contains `needle` (bounded wait); all of them.
    /// Blocking, outside any runtime: std's clock is the right one.
    #[allow(clippy::disallowed_types)]
    pub(crate) fn wait_line(&self, needle: &str, limit: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    seen.push(l);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no stderr line with {needle:?}; saw {} lines, last: {:?}",
            seen.len(),
            seen.last()
        );
    }

    /// The server process's peak resident memory (VmHWM), in KB.
    pub(crate) fn peak_rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway)
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's Chromium, for tests of pages; `None` (and a note) when it is
/// not installed. `.ci/run` installs it and sets STRATUS_REQUIRE_BROWSER:
/// there a browser test never skips.
pub(crate) fn chromium(what: &str) -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("STRATUS_REQUIRE_BROWSER").is_none(),
            "Chromium is required here (apt-get install chromium)"
        );
        eprintln!("skipped {what}: Chromium is not installed (apt-get install chromium)");
    }
    found
}

/// `packages` (npm specs, `name@version`) installed once under
/// `target/{dir}`; its `node_modules`, or `None` (and a note) when npm
/// cannot install them. Where STRATUS_REQUIRE_BROWSER is set (`.ci/run`),
/// such a test never skips.
pub(crate) fn npm_installed(dir: &str, packages: &[&str], what: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(dir);
    let modules = root.join("node_modules");
    // `@scope/name@1.2.3` is installed at `node_modules/@scope/name`.
    let have = |spec: &&str| {
        let name = match spec.rfind('@') {
            Some(at) if at > 0 => &spec[..at],
            _ => spec,
        };
        modules.join(name).join("package.json").is_file()
    };
    if packages.iter().all(have) {
        return Some(modules);
    }
    std::fs::create_dir_all(&root).unwrap();
    let ok = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&root)
        .args(packages)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("STRATUS_REQUIRE_BROWSER").is_none(),
            "npm install {packages:?} failed"
        );
        eprintln!("skipped {what}: npm could not install {packages:?}");
        return None;
    }
    Some(modules)
}

/// Runs a Python script (boto3) with LocalStack's usual credentials,
/// `endpoint` as its first argument; what it prints, as JSON.
pub(crate) fn boto3_script(script: &str, endpoint: &str) -> serde_json::Value {
    let out = Command::new("python3")
        .args(["-c", script, endpoint])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "boto3 script failed (is boto3 installed? .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The AWS CLI (`pip install awscli`), with LocalStack's usual credentials.
pub(crate) fn aws(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("aws")
        .args(["--endpoint-url", endpoint])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .output()
        .expect("the AWS CLI is installed (pip install awscli)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Headless Chromium (`browser`, from [`chromium`]) on `url` with the
/// flags every browser test uses and `extra` ones, off the runtime.
pub(crate) async fn headless(
    browser: &str,
    extra: Vec<String>,
    url: String,
) -> std::process::Output {
    let browser = browser.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .args(extra)
            .arg(url)
            .output()
            .expect("run chromium")
    })
    .await
    .unwrap()
}

/// A CORS preflight from `origin` for `method` to `url`: the
/// `Access-Control-Allow-Origin` it was answered with.
pub(crate) async fn preflight(url: &str, origin: &str, method: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", method)
        .send()
        .await
        .unwrap();
    r.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The JSON lines a function appends to `file`, once there are `n` (or
/// what there is after `limit`).
pub(crate) async fn json_lines(file: &Path, n: usize, limit: Duration) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let got: Vec<serde_json::Value> = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if got.len() >= n || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A POST of `body` to `url`, SigV4-signed by botocore for `service` with
/// `key` (access key, secret), or unsigned: (status, body).
pub(crate) fn botocore_post(
    url: &str,
    service: &str,
    key: Option<(&str, &str)>,
    body: &str,
) -> (u16, String) {
    let script = r#"
import sys, urllib.request, urllib.error
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, service, key, secret, body = sys.argv[1:6]
req = AWSRequest(method="POST", url=url, data=body.encode(), headers={"content-type": "application/json"})
if key:
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(req)
r = urllib.request.Request(url, data=req.body, method="POST", headers=dict(req.headers.items()))
try:
    with urllib.request.urlopen(r, timeout=10) as a:
        print(a.status, a.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"#;
    let (k, secret) = key.unwrap_or(("", ""));
    let out = Command::new("python3")
        .args(["-c", script, url, service, k, secret, body])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (status, body) = said.split_once(' ').expect("STATUS BODY");
    (status.parse().expect("a status"), body.to_owned())
}
