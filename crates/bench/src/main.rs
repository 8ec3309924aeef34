//! `stratus-bench`: every scenario next to a baseline measured in the same
//! run, on loopback, printed as one table. It reports; it never fails a
//! build. Run it through `scripts/bench` (installs nginx, builds release).

mod load;
mod procs;
mod runtime_api;
mod std_bootstrap;
mod ws;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::time::Instant;

#[derive(Parser)]
#[command(name = "stratus-bench", about = "Stratus's benchmark suite")]
struct Cli {
    /// Shorter runs (1 s per load scenario, 2,000 WebSocket connections).
    #[arg(long)]
    quick: bool,
    /// The `stratus` binary to measure (default: next to this one).
    #[arg(long)]
    stratus: Option<PathBuf>,
    /// Print the table as Markdown too.
    #[arg(long)]
    markdown: bool,
    /// Run only these groups (comma-separated): mock, proxy, static, std,
    /// rust, node, python, ws, cold.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Subcommand)]
enum Mode {
    /// Internal: the bare hyper server answering `pong` (baseline and upstream).
    Hyper {
        #[arg(long)]
        port: u16,
    },
    /// Internal: a function bootstrap written with std only.
    StdBootstrap,
}

/// One line of the table.
struct Row {
    scenario: String,
    stratus: String,
    baseline: String,
    ratio: String,
    budget: String,
    verdict: &'static str,
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "pass",
        Some(false) => "SHORT",
        None => "-",
    }
}

impl Cli {
    fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

fn rps(s: &load::Stats) -> String {
    format!(
        "{:.0} rps, p50 {:.2} ms, p99 {:.2} ms{}{}{}",
        s.rps,
        s.p50_us / 1000.0,
        s.p99_us / 1000.0,
        s.cpu_us
            .map_or(String::new(), |c| format!(", {c:.1} µs CPU/request")),
        s.children_cpu_us
            .map_or(String::new(), |c| format!(" (+ {c:.1} µs in workers)")),
        if s.errors > 0 {
            format!(", {} errors", s.errors)
        } else {
            String::new()
        }
    )
}

/// A row comparing throughputs: ours against a baseline's, with the
/// least ratio the budget asks for, if any.
fn throughput_row(
    scenario: String,
    ours: &load::Stats,
    baseline: &str,
    base: &load::Stats,
    budget: Option<f64>,
) -> Row {
    let ratio = ours.rps / base.rps;
    Row {
        scenario,
        stratus: rps(ours),
        baseline: format!("{baseline}: {}", rps(base)),
        ratio: format!("{ratio:.2}x"),
        budget: budget.map_or("-".into(), |b| format!("≥ {b:.2}x")),
        verdict: verdict(budget.map(|b| ratio >= b)),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.mode {
        Some(Mode::Hyper { port }) => return hyper_baseline(port),
        Some(Mode::StdBootstrap) => return std_bootstrap::run(),
        None => {}
    }
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(run(&cli))?;
    print_table(&rows, cli.markdown);
    Ok(())
}

fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn fd_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const PY_ECHO: &str = r#"
def handler(event, context):
    return {"statusCode": 200, "body": "pong"}
"#;

const NODE_ECHO: &str = r#"export const handler = async () => ({ statusCode: 200, body: "pong" });
"#;

const PY_WS: &str = r#"
def handler(event, context):
    rc = event["requestContext"]
    if rc["routeKey"] == "id":
        return {"statusCode": 200, "body": rc["connectionId"]}
    return {"statusCode": 200, "body": event.get("body")}
"#;

struct Project {
    dir: tempfile::TempDir,
    gateway: SocketAddr,
    admin: SocketAddr,
}

fn project(upstream: u16) -> anyhow::Result<Project> {
    let dir = tempfile::tempdir()?;
    let (g, a) = (procs::free_port(), procs::free_port());
    std::fs::create_dir_all(dir.path().join("py"))?;
    std::fs::write(dir.path().join("py/app.py"), PY_ECHO)?;
    std::fs::create_dir_all(dir.path().join("node"))?;
    std::fs::write(dir.path().join("node/app.mjs"), NODE_ECHO)?;
    std::fs::create_dir_all(dir.path().join("ws"))?;
    // The std-only bootstrap is this very binary in another mode.
    std::fs::create_dir_all(dir.path().join("std"))?;
    let bootstrap = dir.path().join("std/bootstrap");
    std::fs::write(
        &bootstrap,
        format!(
            "#!/bin/sh\nexec {:?} std-bootstrap\n",
            std::env::current_exe()?.display().to_string()
        ),
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::write(dir.path().join("ws/app.py"), PY_WS)?;
    // Static files, served by a site and by nginx from the same folder.
    std::fs::create_dir_all(dir.path().join("static"))?;
    std::fs::write(dir.path().join("static/1k.txt"), "x".repeat(1024))?;
    std::fs::write(
        dir.path().join("static/1m.bin"),
        (0..1024 * 1024u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    )?;
    let data = repo_root().join("target/stratus-bench-data");
    let rust = repo_root().join("examples/hello/functions/hello-rust");
    std::fs::write(
        dir.path().join("stratus.toml"),
        format!(
            r#"
[server]
listen = "127.0.0.1:{g}"
admin_listen = "127.0.0.1:{a}"
data_dir = {data:?}

# A site over a bucket seeded from static/ (the edge cache keeps both files).
[buckets.bench-static]
source = "static"
[sites.files]
bucket = "bench-static"
base_path = "/files"

# Every function with Stratus's defaults (no reserved concurrency: up to
# 10 environments, calls past them queued), as a user gets them.
[functions.rust]
runtime = "provided.al2023"
code = {rust:?}

[functions.py]
runtime = "python3"
handler = "app.handler"
code = "py"

[functions.node]
runtime = "nodejs20.x"
handler = "app.handler"
code = "node"

[functions.std]
runtime = "provided"
code = "std"

[functions.ws]
runtime = "python3"
handler = "app.handler"
code = "ws"
concurrency = 64

[apis.web]
type = "http"
[apis.web.routes]
"GET /mock" = {{ mock = {{ status = 200, body = "pong" }} }}
"GET /proxy" = {{ http = "http://127.0.0.1:{upstream}/" }}
"GET /rust/{{name}}" = {{ function = "rust" }}
"GET /py" = {{ function = "py" }}
"GET /node" = {{ function = "node" }}
"GET /std" = {{ function = "std" }}

[apis.ws]
type = "websocket"
base_path = "/ws"
idle_timeout = 3600
[apis.ws.routes]
"id" = {{ function = "ws", respond = true }}
"$default" = {{ function = "ws", respond = true }}
"#,
            data = data.display().to_string(),
            rust = rust.display().to_string(),
        ),
    )?;
    Ok(Project {
        dir,
        gateway: ([127, 0, 0, 1], g).into(),
        admin: ([127, 0, 0, 1], a).into(),
    })
}

async fn run(cli: &Cli) -> anyhow::Result<Vec<Row>> {
    let duration = Duration::from_secs(if cli.quick { 1 } else { 5 });
    let stratus_bin = match &cli.stratus {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .join("stratus"),
    };
    anyhow::ensure!(
        stratus_bin.is_file(),
        "no stratus binary at {} (cargo build --release first)",
        stratus_bin.display()
    );
    let mut rows = Vec::new();
    let conc = 32;
    let rounds = if cli.quick { 1 } else { 3 };
    eprintln!(
        "load generator: {}",
        if load::have_wrk() {
            "wrk (1 thread)"
        } else {
            "built-in (install wrk for less client overhead)"
        }
    );

    let up_port = procs::free_port();
    let upstream = procs::hyper_baseline(up_port)?;
    let up: SocketAddr = ([127, 0, 0, 1], up_port).into();
    let p = project(up_port)?;
    eprintln!("starting stratus (the first run builds the Rust function)…");
    let server = procs::stratus(&stratus_bin, p.dir.path(), p.admin)?;

    let t = |addr: SocketAddr, path, pid| load::Target {
        addr,
        path,
        pid: Some(pid),
    };
    if cli.wants("mock") {
        // 1. Mock route vs bare hyper answering the same bytes.
        eprintln!("mock route vs bare hyper…");
        let hyper_port = procs::free_port();
        let hyper = procs::hyper_baseline(hyper_port)?;
        let (base, mock) = load::compare(
            t(([127, 0, 0, 1], hyper_port).into(), "/", hyper.pid()),
            t(p.gateway, "/mock", server.pid()),
            conc,
            duration,
            rounds,
        )
        .await;
        drop(hyper);
        rows.push(throughput_row(
            format!("mock route, c={conc}"),
            &mock,
            "bare hyper",
            &base,
            Some(0.8),
        ));
    }

    if cli.wants("proxy") {
        // 2. HTTP proxy route vs the upstream directly and vs nginx.
        eprintln!("proxy route vs upstream and nginx…");
        let (direct, proxied) = load::compare(
            t(up, "/", upstream.pid()),
            t(p.gateway, "/proxy", server.pid()),
            conc,
            duration,
            rounds,
        )
        .await;
        rows.push(throughput_row(
            format!("http proxy route vs upstream direct, c={conc}"),
            &proxied,
            "direct",
            &direct,
            None,
        ));
        let nginx_dir = tempfile::tempdir()?;
        let nginx_port = procs::free_port();
        match procs::nginx(nginx_dir.path(), nginx_port, up_port) {
            Ok(nginx) => {
                let (via_nginx, proxied) = load::compare(
                    t(([127, 0, 0, 1], nginx_port).into(), "/", nginx.pid()),
                    t(p.gateway, "/proxy", server.pid()),
                    conc,
                    duration,
                    rounds,
                )
                .await;
                drop(nginx);
                rows.push(throughput_row(
                    format!("http proxy route vs nginx proxy, c={conc}"),
                    &proxied,
                    "nginx",
                    &via_nginx,
                    Some(1.0),
                ));
            }
            Err(e) => rows.push(Row {
                scenario: "http proxy route vs nginx proxy".into(),
                stratus: rps(&proxied),
                baseline: format!("not measured: {e}"),
                ratio: "-".into(),
                budget: "≥ 1.00x".into(),
                verdict: "-",
            }),
        }
    }

    if cli.wants("static") {
        // 2b. Static files from a site (edge cache) vs nginx from the same folder.
        eprintln!("static files vs nginx…");
        let nginx_dir = tempfile::tempdir()?;
        let nginx_port = procs::free_port();
        match procs::nginx_static(nginx_dir.path(), nginx_port, &p.dir.path().join("static")) {
            Ok(nginx) => {
                for (file, budget) in [("1k.txt", Some(1.0)), ("1m.bin", None)] {
                    let ours_path = format!("/files/{file}");
                    let theirs_path = format!("/{file}");
                    let (base, ours) = load::compare(
                        load::Target {
                            addr: ([127, 0, 0, 1], nginx_port).into(),
                            path: &theirs_path,
                            pid: Some(nginx.pid()),
                        },
                        load::Target {
                            addr: p.gateway,
                            path: &ours_path,
                            pid: Some(server.pid()),
                        },
                        conc,
                        duration,
                        rounds,
                    )
                    .await;
                    rows.push(throughput_row(
                        format!("static file {file} (site, edge cache) vs nginx, c={conc}"),
                        &ours,
                        "nginx",
                        &base,
                        budget,
                    ));
                }
                drop(nginx);
            }
            Err(e) => rows.push(Row {
                scenario: "static files vs nginx".into(),
                stratus: "-".into(),
                baseline: format!("not measured: {e}"),
                ratio: "-".into(),
                budget: "≥ 1.00x".into(),
                verdict: "-",
            }),
        }
    }

    // 3. Warm function calls. The platform's floor first: bare hyper,
    // measured now, at c=1 and c=32.
    let gw = |path| load::Target {
        addr: p.gateway,
        path,
        pid: Some(server.pid()),
    };
    if cli.wants("std") {
        eprintln!("warm std-only function calls vs bare hyper…");
        let hyper_port = procs::free_port();
        let hyper = procs::hyper_baseline(hyper_port)?;
        let floor = t(([127, 0, 0, 1], hyper_port).into(), "/", hyper.pid());
        let (floor1, std1) = load::compare(floor, gw("/std"), 1, duration, rounds).await;
        let (floor32, std32) = load::compare(floor, gw("/std"), conc, duration, rounds).await;
        drop(hyper);
        let added = std1.p50_us - floor1.p50_us;
        rows.push(Row {
            scenario: "warm std-only call, c=1: p50 over bare hyper".into(),
            stratus: format!("{added:.0} µs over ({})", rps(&std1)),
            baseline: format!("bare hyper: {}", rps(&floor1)),
            ratio: format!("{:.2}x", std1.p50_us / floor1.p50_us),
            budget: "≤ 100 µs over".into(),
            verdict: verdict(Some(added <= 100.0)),
        });
        rows.push(Row {
            scenario: format!("warm std-only call, c={conc}"),
            stratus: rps(&std32),
            baseline: format!("bare hyper: {}", rps(&floor32)),
            ratio: format!("{:.2}x", std32.rps / floor32.rps),
            budget: "≥ 15,000 rps, ≤ 40 µs Stratus CPU/call".into(),
            verdict: verdict(Some(
                std32.rps >= 15_000.0 && std32.cpu_us.is_some_and(|c| c <= 40.0),
            )),
        });
    }

    // 3b. The official Rust client (lambda_runtime): against the same
    // binary driven by a bare Runtime API loop, and under load.
    if cli.wants("rust") {
        eprintln!("warm Rust function calls…");
        let bootstrap = repo_root().join("target/stratus-bench-data/build/rust/bootstrap");
        let event = serde_json::to_vec(&serde_json::json!({
            "version": "2.0", "routeKey": "GET /rust/{name}", "rawPath": "/rust/x", "rawQueryString": "",
            "headers": {"host": "127.0.0.1"}, "pathParameters": {"name": "x"},
            "requestContext": {"accountId": "000000000000", "apiId": "web", "domainName": "127.0.0.1",
                "http": {"method": "GET", "path": "/rust/x", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
                "requestId": "r", "routeKey": "GET /rust/{name}", "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0},
            "isBase64Encoded": false
        }))?;
        let (base_p50, _) = runtime_api::baseline(&bootstrap, &event, 2000).await?;
        let hyper_port = procs::free_port();
        let hyper = procs::hyper_baseline(hyper_port)?;
        let floor = t(([127, 0, 0, 1], hyper_port).into(), "/", hyper.pid());
        let (floor1, warm1) = load::compare(floor, gw("/rust/x"), 1, duration, rounds).await;
        drop(hyper);
        let over = warm1.p50_us - floor1.p50_us;
        rows.push(Row {
            scenario: "warm Rust call (lambda_runtime), c=1: p50 over bare hyper".into(),
            stratus: format!("{over:.0} µs over ({})", rps(&warm1)),
            baseline: format!(
                "bare hyper: {}; the same function on a bare Runtime API loop: p50 {base_p50:.0} µs",
                rps(&floor1)
            ),
            ratio: format!("{:.2}x", warm1.p50_us / floor1.p50_us),
            budget: "< 150 µs over".into(),
            verdict: verdict(Some(over < 150.0)),
        });
        let warm32 = load::run_target(gw("/rust/x"), conc, duration).await;
        rows.push(Row {
            scenario: format!("warm Rust call (lambda_runtime), c={conc}"),
            stratus: rps(&warm32),
            baseline: format!("c=1: {:.0} rps", warm1.rps),
            ratio: format!("{:.2}x", warm32.rps / warm1.rps),
            budget: "≥ 8,000 rps".into(),
            verdict: verdict(Some(warm32.rps >= 8_000.0)),
        });
    }

    // 4. Node.js and Python through Stratus's own bootstraps, against
    // serverless-offline running the same handlers (when installed).
    let sls_bin = procs::serverless_bin(&repo_root());
    let sls_port = procs::free_port();
    let sls = match (&sls_bin, cli.wants("node") || cli.wants("python")) {
        (Some(bin), true) => {
            eprintln!("starting serverless-offline…");
            match procs::serverless_offline(bin, sls_port, NODE_ECHO, PY_ECHO) {
                Ok(proc) => Ok(proc),
                Err(e) => Err(format!(
                    "not measured: serverless-offline did not start ({e:#})"
                )),
            }
        }
        (None, _) => Err(
            "not measured: serverless-offline not installed (scripts/bench installs it with npm)"
                .into(),
        ),
        (_, false) => Err(String::new()),
    };
    for (group, label, path) in [("node", "Node.js", "/node"), ("python", "Python", "/py")] {
        if !cli.wants(group) {
            continue;
        }
        eprintln!("warm {label} function calls…");
        let peer = sls
            .as_ref()
            .ok()
            .map(|proc| t(([127, 0, 0, 1], sls_port).into(), path, proc.pid()));
        let mut ours = Vec::new();
        for c in [1, conc] {
            let (theirs, mine) = match peer {
                Some(peer) => {
                    let (a, b) = load::compare(peer, gw(path), c, duration, rounds).await;
                    (Some(a), b)
                }
                None => (None, load::run_target(gw(path), c, duration).await),
            };
            let (baseline, ratio) = match (&theirs, &sls) {
                (Some(th), _) => (
                    format!("serverless-offline 12: {}", rps(th)),
                    format!("{:.2}x", mine.rps / th.rps),
                ),
                (None, Err(why)) => (why.clone(), "-".into()),
                (None, Ok(_)) => ("-".into(), "-".into()),
            };
            let (budget, ok) = if c == 1 {
                ("-".to_owned(), None)
            } else {
                let mut budget = "≥ 3.00x serverless-offline".to_owned();
                let mut ok = theirs.map(|th| mine.rps >= 3.0 * th.rps);
                if group == "node" {
                    budget.push_str(", ≥ its c=1");
                    let c1: &load::Stats = &ours[0];
                    ok = Some(ok.unwrap_or(true) && mine.rps >= c1.rps);
                }
                (budget, ok)
            };
            rows.push(Row {
                scenario: format!("warm {label} call, c={c}"),
                stratus: rps(&mine),
                baseline,
                ratio,
                budget,
                verdict: verdict(ok),
            });
            ours.push(mine);
        }
    }
    drop(sls);

    // 6. WebSockets (before the cold starts, on the server that is up).
    let n_small = if cli.quick { 2_000 } else { 10_000 };
    if cli.wants("ws") {
        rows.extend(websockets(&server, &p, n_small, cli.quick).await?);
    }
    drop(server);

    // 5. Cold starts: a fresh server each time, first call timed.
    let cold: &[(&str, &str, Option<f64>)] = if cli.wants("cold") {
        &[
            ("cold start, provided (Rust)", "/rust/cold", Some(15.0)),
            ("cold start, Python", "/py", None),
        ]
    } else {
        &[]
    };
    if !cold.is_empty() {
        eprintln!("cold starts…");
    }
    for &(label, path, budget) in cold {
        let mut times = Vec::new();
        for _ in 0..5 {
            let server = procs::stratus(&stratus_bin, p.dir.path(), p.admin)?;
            let t = Instant::now();
            let resp = hyper_get(p.gateway, path).await?;
            anyhow::ensure!(resp == 200, "cold call answered {resp}");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            drop(server);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        rows.push(Row {
            scenario: format!("{label}: first response"),
            stratus: format!("median {median:.1} ms of 5"),
            baseline: "-".into(),
            ratio: "-".into(),
            budget: budget.map_or("-".into(), |b| format!("< {b:.0} ms")),
            verdict: verdict(budget.map(|b| median < b)),
        });
    }
    Ok(rows)
}

async fn websockets(
    server: &procs::Proc,
    p: &Project,
    n: usize,
    quick: bool,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    eprintln!("WebSocket: {n} idle connections…");
    let before = server.rss_mb();
    let mut conns = ws::open(p.gateway, "/ws", n).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_mb();
    let per_conn_kb = (after - before) * 1024.0 / n as f64;
    let at_50k_mb = per_conn_kb * 50_000.0 / 1024.0 + before;
    rows.push(Row {
        scenario: format!("WebSocket: {n} idle connections"),
        stratus: format!("RSS {before:.0} → {after:.0} MB, {per_conn_kb:.1} KB/connection"),
        baseline: "-".into(),
        ratio: "-".into(),
        budget: "50,000 in < 1,500 MB".into(),
        verdict: verdict(Some(at_50k_mb < 1500.0)),
    });
    let (p50, p99) = ws::round_trip(&mut conns[0], 500).await?;
    rows.push(Row {
        scenario: "WebSocket: message round trip through a Python function".into(),
        stratus: format!("p50 {:.2} ms, p99 {:.2} ms", p50 / 1000.0, p99 / 1000.0),
        baseline: "-".into(),
        ratio: "-".into(),
        budget: "-".into(),
        verdict: "-",
    });
    eprintln!("WebSocket: broadcast to {n} connections…");
    let ids = ws::ids(&mut conns, 32).await?;
    let secs = ws::broadcast(p.admin, "ws/%24default", &mut conns, &ids).await?;
    rows.push(Row {
        scenario: format!("WebSocket: one message to {n} connections via @connections"),
        stratus: format!("{secs:.2} s ({:.0} messages/s)", n as f64 / secs),
        baseline: "-".into(),
        ratio: "-".into(),
        budget: "-".into(),
        verdict: "-",
    });
    drop(conns);
    // 50,000 needs 50,000 descriptors on each side.
    let limit = fd_limit();
    if !quick {
        let big = 50_000usize;
        if limit as usize > big + 1000 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let before = server.rss_mb();
            let conns = ws::open(p.gateway, "/ws", big).await?;
            let after = server.rss_mb();
            rows.push(Row {
                scenario: format!("WebSocket: {big} idle connections"),
                stratus: format!("RSS {before:.0} → {after:.0} MB"),
                baseline: "-".into(),
                ratio: "-".into(),
                budget: "< 1,500 MB".into(),
                verdict: verdict(Some(after < 1500.0)),
            });
            drop(conns);
        } else {
            rows.push(Row {
                scenario: "WebSocket: 50000 idle connections".into(),
                stratus: format!("not run: the open-file limit here is {limit}"),
                baseline: "-".into(),
                ratio: "-".into(),
                budget: "< 1,500 MB".into(),
                verdict: "-",
            });
        }
    }
    Ok(rows)
}

async fn hyper_get(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake::<
        _,
        http_body_util::Empty<bytes::Bytes>,
    >(hyper_util::rt::TokioIo::new(stream))
    .await?;
    tokio::spawn(conn);
    let resp = send
        .send_request(
            http::Request::get(path)
                .header("host", addr.to_string())
                .body(http_body_util::Empty::new())?,
        )
        .await?;
    Ok(resp.status().as_u16())
}

/// The baseline: hyper answering `pong` to everything, nothing else.
fn hyper_baseline(port: u16) -> anyhow::Result<()> {
    use hyper::service::service_fn;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"pong")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

fn print_table(rows: &[Row], markdown: bool) {
    let header = [
        "scenario", "Stratus", "baseline", "ratio", "budget", "result",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.stratus.clone(),
                r.baseline.clone(),
                r.ratio.clone(),
                r.budget.clone(),
                r.verdict.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        row.iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    println!("{}", line(&header));
    println!("{}", widths.map(|w| "-".repeat(w)).join("-|-"));
    for row in &cells {
        println!("{}", line(row));
    }
    if markdown {
        println!();
        println!("| {} |", header.join(" | "));
        println!("|{}", "---|".repeat(header.len()));
        for row in &cells {
            println!("| {} |", row.join(" | "));
        }
    }
}
