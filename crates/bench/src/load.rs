//! A closed-loop HTTP/1.1 load generator: `conns` keep-alive connections,
//! each sending the next request as soon as the previous answer is read,
//! for a fixed time. Latencies go into an HDR histogram.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) errors: u64,
    /// CPU time (user + system) the server spent per request, when known:
    /// steadier than throughput on a shared machine.
    pub(crate) cpu_us: Option<f64>,
    /// CPU time the server's descendants (function processes, workers)
    /// spent per request, when it has any.
    pub(crate) children_cpu_us: Option<f64>,
}

/// What a comparison loads: address, path, and the server's pid (for CPU).
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) path: &'a str,
    pub(crate) pid: Option<u32>,
}

/// utime + stime of a process, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // After "pid (comm) ", utime and stime are the 12th and 13th fields.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Every descendant of `pid` (through `/proc/PID/task/TID/children`).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
                for child in list.split_whitespace().filter_map(|c| c.parse().ok()) {
                    out.push(child);
                    stack.push(child);
                }
            }
        }
    }
    out
}

/// `run`, plus the CPU time per request of the server and of its
/// descendants (those alive after the warm-up: warm environments).
pub(crate) async fn run_target(t: Target<'_>, conns: usize, duration: Duration) -> Stats {
    let _ = drive(t.addr, t.path, conns, Duration::from_millis(300)).await;
    let kids = t.pid.map(descendants).unwrap_or_default();
    let kids_ticks = |kids: &[u32]| kids.iter().filter_map(|k| cpu_ticks(*k)).sum::<u64>();
    let before = t.pid.and_then(cpu_ticks);
    let kids_before = kids_ticks(&kids);
    let started = Instant::now();
    let mut stats = match wrk(t.addr, t.path, conns, duration).await {
        Some(s) => s,
        None => drive(t.addr, t.path, conns, duration).await,
    };
    let secs = started.elapsed().as_secs_f64();
    let after = t.pid.and_then(cpu_ticks);
    let kids_after = kids_ticks(&kids);
    let requests = stats.rps * secs;
    if let (Some(b), Some(a)) = (before, after) {
        if requests > 0.0 {
            stats.cpu_us = Some((a - b) as f64 * 10_000.0 / requests);
            if !kids.is_empty() {
                let spent = kids_after.saturating_sub(kids_before);
                stats.children_cpu_us = Some(spent as f64 * 10_000.0 / requests);
            }
        }
    }
    stats
}

/// Runs `a` and `b` alternately `rounds` times (so drifts of this shared
/// machine hit both alike) and keeps each side's median run by throughput.
pub(crate) async fn compare(
    a: Target<'_>,
    b: Target<'_>,
    conns: usize,
    duration: Duration,
    rounds: usize,
) -> (Stats, Stats) {
    let mut ra = Vec::new();
    let mut rb = Vec::new();
    for _ in 0..rounds {
        ra.push(run_target(a, conns, duration).await);
        rb.push(run_target(b, conns, duration).await);
    }
    (median(ra), median(rb))
}

fn median(mut runs: Vec<Stats>) -> Stats {
    runs.sort_by(|x, y| x.rps.total_cmp(&y.rps));
    runs[runs.len() / 2]
}

pub(crate) fn have_wrk() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
}

async fn wrk(addr: SocketAddr, path: &str, conns: usize, duration: Duration) -> Option<Stats> {
    let out = tokio::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{}s", duration.as_secs().max(1)),
            "--latency",
            &format!("http://{addr}{path}"),
        ])
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |prefix: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(prefix))?;
        let v = line.trim_start()[prefix.len()..].trim();
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.trim().parse().ok()?;
        Some(match unit.trim() {
            "us" => n,
            "ms" => n * 1000.0,
            "s" => n * 1_000_000.0,
            _ => n,
        })
    };
    let errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Some(Stats {
        rps: value("Requests/sec:")?,
        p50_us: value("50%")?,
        p99_us: value("99%")?,
        errors,
        cpu_us: None,
        children_cpu_us: None,
    })
}

async fn drive(addr: SocketAddr, path: &str, conns: usize, duration: Duration) -> Stats {
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
            let mut errors = 0u64;
            let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                return (hist, 1);
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut send, conn)) =
                hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                    .await
            else {
                return (hist, 1);
            };
            tokio::spawn(conn);
            while Instant::now() < end {
                let req = http::Request::get(path.as_str())
                    .header("host", addr.to_string())
                    .body(Empty::new())
                    .expect("request");
                let t = Instant::now();
                match send.send_request(req).await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        let _ = resp.into_body().collect().await;
                        if ok {
                            let _ = hist.record(t.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (hist, errors)
        }));
    }
    let mut all = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    let mut errors = 0;
    for t in tasks {
        if let Ok((h, e)) = t.await {
            let _ = all.add(&h);
            errors += e;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Stats {
        rps: all.len() as f64 / secs,
        p50_us: all.value_at_quantile(0.5) as f64,
        p99_us: all.value_at_quantile(0.99) as f64,
        errors,
        cpu_us: None,
        children_cpu_us: None,
    }
}
