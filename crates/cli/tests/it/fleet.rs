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
