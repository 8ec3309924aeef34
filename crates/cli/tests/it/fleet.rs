//! A fleet (issue 27), first piece: two nodes with `[cluster] redis`
//! take from the same throttle buckets, on the real Redis
//! (127.0.0.1:6379), so a route's `rate`/`burst` hold for the fleet.

use stratus_testkit::write_file;

use crate::support::Serving;

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_a_routes_throttle_on_redis() {
    // An API name of its own per run: the buckets outlive a run in Redis.
    let api = format!("fleet-{:x}", rand::random::<u64>());
    let project = format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[cluster]
redis = "redis://127.0.0.1:6379/0"

[apis.{api}]
type = "http"
base_path = "/fleet"

[apis.{api}.routes]
"GET /slow" = {{ mock = {{ status = 200, body = "ok" }}, throttle = {{ rate = 0.001, burst = 3 }} }}
"#
    );
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_file(a_dir.path(), "stratus.toml", &project);
    write_file(b_dir.path(), "stratus.toml", &project);
    let (a, b) = (Serving::start(a_dir.path()), Serving::start(b_dir.path()));
    let get = |s: &Serving| {
        let url = s.url("/fleet/slow");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    // Three tokens for the fleet: two taken on A, one on B; then both
    // nodes refuse (each alone would still have had tokens).
    assert_eq!(get(&a).await, 200);
    assert_eq!(get(&a).await, 200);
    assert_eq!(get(&b).await, 200);
    assert_eq!(get(&b).await, 429);
    assert_eq!(get(&a).await, 429);
}

#[test]
fn what_a_fleet_does_not_share_yet_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        "[cluster]\nredis = \"localhost:6379\"\npostgres = \"postgres://127.0.0.1:5432/test\"\n",
    );
    let (ok, _, err) = crate::support::run_cli(&["validate", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("cluster.redis: a Redis url starts with redis://"),
        "{err}"
    );
    assert!(
        err.contains("cluster.postgres: cluster.postgres is not served yet"),
        "{err}"
    );
}

/// A Redis of this test's own, on a free port, to stop and start again.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    async fn start(port: u16) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (.ci/run installs it)");
        // Ready when it answers.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        OwnRedis { port, child }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Redis away: throttled routes answer 503 (nothing a throttle would
/// refuse is let through unchecked); back: served again.
#[tokio::test(flavor = "multi_thread")]
async fn throttles_answer_503_while_redis_is_away_and_recover() {
    let port = crate::support::free_port();
    let redis = OwnRedis::start(port).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        &format!(
            r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[cluster]
redis = "redis://127.0.0.1:{}/0"

[apis.web]
type = "http"
base_path = "/web"

[apis.web.routes]
"GET /t" = {{ mock = {{ status = 200, body = "ok" }}, throttle = {{ rate = 1000, burst = 1000 }} }}
"GET /free" = {{ mock = {{ status = 200, body = "free" }} }}
"#,
            redis.port
        ),
    );
    let s = Serving::start(dir.path());
    let get = |p: &str| {
        let url = s.url(p);
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/web/t").await, (200, "ok".into()));
    drop(redis);
    assert_eq!(
        get("/web/t").await,
        (503, r#"{"message":"Service Unavailable"}"#.into())
    );
    // A route without a throttle does not need Redis.
    assert_eq!(get("/web/free").await, (200, "free".into()));
    let _back = OwnRedis::start(port).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, _) = get("/web/t").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis is back, the node is not"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
