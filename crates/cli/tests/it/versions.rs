//! Versions (issue 18), what exists so far: the REST stage response cache
//! through the real binary — a real function not called on a hit, the
//! metrics (CacheHitCount/CacheMissCount) and access lines saying so, and
//! `stratus cache flush`.

use std::time::Duration;

use crate::support::{free_port, run_cli, Serving};

const COUNTER_PY: &str = r#"
import itertools
calls = itertools.count(1)
def handler(event, context):
    return {"statusCode": 200, "body": "call %d for %s" % (next(calls), event["pathParameters"]["id"])}
"#;

#[test]
fn a_cached_rest_stage_answers_without_calling_the_function_and_counts_hits() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    stratus_testkit::write_file(
        dir.path(),
        "stratus.toml",
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:{admin}"

[functions.items]
runtime = "python3"
handler = "app.handler"
code = "items"
warm = 1
environments = 1

[apis.shop]
type = "rest"
base_path = "/shop"
stages = {{ prod = {{ cache = {{ ttl = 300, keys = ["path.id"] }} }} }}
[apis.shop.routes]
"GET /items/{{id}}" = {{ function = "items" }}
"#
        ),
    );
    stratus_testkit::write_file(dir.path(), "items/app.py", COUNTER_PY);
    let s = Serving::start(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |path: &str| {
        rt.block_on(async {
            let r = reqwest::get(s.url(path)).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    assert_eq!(get("/shop/prod/items/1"), (200, "call 1 for 1".into()));
    assert_eq!(get("/shop/prod/items/1"), (200, "call 1 for 1".into()));
    assert_eq!(get("/shop/prod/items/1"), (200, "call 1 for 1".into()));
    assert_eq!(get("/shop/prod/items/2"), (200, "call 2 for 2".into()));
    let seen = s.wait_line("cache=\"hit\"", Duration::from_secs(5));
    assert!(
        seen.iter().any(|l| l.contains("cache=\"miss\"")),
        "the access lines say miss, then hit: {seen:?}"
    );
    let metrics = rt.block_on(async {
        reqwest::get(format!("http://{}/metrics", s.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let labels = r#"{api="shop",stage="prod",route="GET /items/{id}"}"#;
    assert!(
        metrics.contains(&format!("stratus_api_cache_hits_total{labels} 2")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("stratus_api_cache_misses_total{labels} 2")),
        "{metrics}"
    );
    // Flushed through the admin API: the next call reaches the function.
    let project = dir.path().to_str().unwrap();
    let (ok, _, err) = run_cli(&["cache", "flush", "shop", "prod", "--project", project]);
    assert!(ok, "{err}");
    assert!(err.contains("flushed the cache of shop/prod"), "{err}");
    assert_eq!(get("/shop/prod/items/1"), (200, "call 3 for 1".into()));
    let (ok, _, err) = run_cli(&["cache", "flush", "shop", "dev", "--project", project]);
    assert!(!ok);
    assert!(err.contains("no cache on stage shop/dev"), "{err}");
}
