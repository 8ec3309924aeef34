//! Versions (issue 18), what exists so far: the REST stage response cache
//! through the real binary — a real function not called on a hit, the
//! metrics (CacheHitCount/CacheMissCount) and access lines saying so, and
//! `stratus cache flush`.

use std::time::Duration;

use crate::support::{free_port, run_cli, Serving};

/// What `/metrics` says now.
fn metrics_of(rt: &tokio::runtime::Runtime, s: &Serving) -> String {
    rt.block_on(async {
        reqwest::get(format!("http://{}/metrics", s.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

/// A project on a known admin port (for the CLI); `body` after `[server]`.
fn project(dir: &std::path::Path, body: &str) {
    let admin = free_port();
    stratus_testkit::write_file(
        dir,
        "stratus.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:{admin}\"\n{body}"
        ),
    );
}

const COUNTER_PY: &str = r#"
import itertools
calls = itertools.count(1)
def handler(event, context):
    return {"statusCode": 200, "body": "call %d for %s" % (next(calls), event["pathParameters"]["id"])}
"#;

#[test]
fn a_cached_rest_stage_answers_without_calling_the_function_and_counts_hits() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        r#"

[functions.items]
runtime = "python3"
handler = "app.handler"
code = "items"
warm = 1
environments = 1

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = { cache = { ttl = 300, keys = ["path.id"] } } }
[apis.shop.routes]
"GET /items/{id}" = { function = "items" }
"#,
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
    let metrics = metrics_of(&rt, &s);
    let labels = r#"{api="shop",stage="prod",deployment="latest",route="GET /items/{id}"}"#;
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

const GREET_PY: &str = r#"
import os
WORD = "one"
def handler(event, context):
    return {"word": WORD, "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "arn": context.invoked_function_arn}
"#;

const GREET_HTTP_PY: &str = r#"
import json, os
WORD = "one"
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"word": WORD, "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"]})}
"#;

/// Lambda's versions and aliases through boto3 and the CLI: frozen code
/// per version, idempotent publishing, qualified invokes (name:N, the
/// Qualifier parameter, an alias ARN), weighted aliases, routes to
/// `name:alias`, and the environment's version and invoked ARN.
#[test]
fn published_versions_keep_their_code_and_aliases_split_calls_by_weight() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        r#"

[functions.greet]
runtime = "python3"
handler = "app.handler"
code = "greet"

[functions.page]
runtime = "python3"
handler = "app.handler"
code = "page"

[apis.web]
type = "http"
[apis.web.routes]
"GET /live" = { function = "page:live" }
"GET /v1" = { function = "page:1" }
"GET /latest" = { function = "page" }
"#,
    );
    stratus_testkit::write_file(dir.path(), "greet/app.py", GREET_PY);
    stratus_testkit::write_file(dir.path(), "page/app.py", GREET_HTTP_PY);
    let s = Serving::start(dir.path());
    let project = dir.path().to_str().unwrap().to_owned();
    let endpoint = format!("http://{}", s.admin);

    // Version 1, then the same again (nothing changed), then version 2.
    let (ok, out, err) = run_cli(&["publish", "greet", "--project", &project]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "greet: version 1");
    let (ok, out, _) = run_cli(&["publish", "greet", "--project", &project]);
    assert!(ok);
    assert_eq!(
        out.trim(),
        "greet: version 1",
        "unchanged: the same version"
    );
    stratus_testkit::write_file(
        dir.path(),
        "greet/app.py",
        &GREET_PY.replace("\"one\"", "\"two\""),
    );
    let (ok, out, _) = run_cli(&["publish", "greet", "--project", &project]);
    assert!(ok);
    assert_eq!(out.trim(), "greet: version 2");
    // The same for the HTTP function; an alias through the CLI.
    assert!(run_cli(&["publish", "page", "--project", &project]).0);
    stratus_testkit::write_file(
        dir.path(),
        "page/app.py",
        &GREET_HTTP_PY.replace("\"one\"", "\"two\""),
    );
    assert!(run_cli(&["publish", "page", "--project", &project]).0);
    let (ok, out, err) = run_cli(&[
        "alias",
        "page",
        "live",
        "--version",
        "1",
        "--project",
        &project,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("page:live → version 1"), "{out}");

    let script = r#"
import sys, json, collections, boto3, botocore
lam = boto3.client("lambda", endpoint_url=sys.argv[1])
def call(name, **kw):
    r = lam.invoke(FunctionName=name, **kw)
    return json.loads(r["Payload"].read()), r["ExecutedVersion"]
out = {}
out["v1"] = call("greet:1")
out["q2"] = call("greet", Qualifier="2")
out["latest"] = call("greet")
lam.invoke(FunctionName="greet")  # $LATEST is the working tree (two)
out["create"] = lam.create_alias(FunctionName="greet", Name="live", FunctionVersion="1",
    RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
words = collections.Counter()
arns = set()
for _ in range(200):
    body, executed = call("greet:live")
    words[body["word"]] += 1
    arns.add(body["arn"])
    assert (body["word"] == "one") == (executed == "1")
out["split"] = dict(words)
out["arns"] = sorted(arns)
out["via_arn"] = call("arn:aws:lambda:us-east-1:000000000000:function:greet:live")[0]["arn"]
lam.update_alias(FunctionName="greet", Name="live", FunctionVersion="2", RoutingConfig={"AdditionalVersionWeights": {}})
out["after_update"] = sorted({call("greet:live")[0]["word"] for _ in range(20)})
out["versions"] = [v["Version"] for v in lam.list_versions_by_function(FunctionName="greet")["Versions"]]
out["alias"] = lam.get_alias(FunctionName="greet", Name="live")["FunctionVersion"]
def code(f):
    try:
        f()
        return None
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
out["conflict"] = code(lambda: lam.create_alias(FunctionName="greet", Name="live", FunctionVersion="1"))
out["bad_version"] = code(lambda: lam.create_alias(FunctionName="greet", Name="beta", FunctionVersion="9"))
lam.delete_alias(FunctionName="greet", Name="live")
out["deleted"] = code(lambda: call("greet:live"))
out["no_version"] = code(lambda: call("greet:9"))
print(json.dumps(out))
"#;
    let v = crate::support::boto3_script(script, &endpoint);
    assert_eq!(v["v1"][0]["word"], "one", "version 1 keeps its code: {v}");
    assert_eq!(v["v1"][0]["version"], "1");
    assert_eq!(v["v1"][1], "1");
    assert_eq!(
        v["v1"][0]["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:greet:1"
    );
    assert_eq!(v["q2"][0]["word"], "two");
    assert_eq!(v["q2"][1], "2");
    assert_eq!(v["latest"][0]["word"], "two");
    assert_eq!(v["latest"][0]["version"], "$LATEST");
    assert_eq!(v["latest"][1], "$LATEST");
    assert_eq!(
        v["create"]["AliasArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:greet:live"
    );
    assert_eq!(
        v["create"]["RoutingConfig"]["AdditionalVersionWeights"]["2"],
        0.1
    );
    // 10% of 200: a wide band (random, unseeded), that 0% or 50% would miss.
    let two = v["split"]["two"].as_u64().unwrap_or(0);
    let one = v["split"]["one"].as_u64().unwrap_or(0);
    assert_eq!(one + two, 200);
    assert!((4..=45).contains(&two), "about 10% to version 2: {two}");
    assert_eq!(
        v["arns"],
        serde_json::json!(["arn:aws:lambda:us-east-1:000000000000:function:greet:live"]),
        "the invoked ARN is the alias's"
    );
    assert_eq!(
        v["via_arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:greet:live"
    );
    assert_eq!(v["after_update"], serde_json::json!(["two"]));
    assert_eq!(v["versions"], serde_json::json!(["$LATEST", "1", "2"]));
    assert_eq!(v["alias"], "2");
    assert_eq!(v["conflict"], "ResourceConflictException");
    assert_eq!(v["bad_version"], "ResourceNotFoundException");
    assert_eq!(v["deleted"], "ResourceNotFoundException");
    assert_eq!(v["no_version"], "ResourceNotFoundException");

    // Routes name versions and aliases.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |path: &str| -> serde_json::Value {
        rt.block_on(async {
            let r = reqwest::get(s.url(path)).await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json().await.unwrap()
        })
    };
    assert_eq!(get("/v1")["word"], "one");
    assert_eq!(get("/live")["word"], "one");
    assert_eq!(get("/live")["version"], "1");
    assert_eq!(get("/latest")["word"], "two");
    assert_eq!(get("/latest")["version"], "$LATEST");
}

const ITEMS_PY: &str = r#"
WORD = "one"
def handler(event, context):
    return {"statusCode": 200, "body": WORD}
"#;

const STAGES: &str = r#"
[functions.items]
runtime = "python3"
handler = "app.handler"
code = "items"

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = {}, dev = {} }
[apis.shop.routes]
"GET /items" = { function = "items" }
"#;

/// Deployments: a stage pinned to one keeps its code while `latest` follows
/// the working tree; moving it under load drops nothing; rollback; a
/// canary's share; what `stratus routes` and `stratus deployments` show.
#[test]
fn stages_serve_deployments_move_under_load_and_split_with_a_canary() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), STAGES);
    stratus_testkit::write_file(dir.path(), "items/app.py", ITEMS_PY);
    let s = Serving::start_dev(dir.path());
    let project = dir.path().to_str().unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |path: &str| -> String {
        rt.block_on(async {
            let r = reqwest::get(s.url(path)).await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.text().await.unwrap()
        })
    };

    let (ok, out, err) = run_cli(&[
        "deploy",
        "--stage",
        "prod",
        "--description",
        "first",
        "--project",
        &project,
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "deployment 1 (items:1)");
    assert!(err.contains("stage shop/prod now serves it"), "{err}");
    assert_eq!(get("/shop/prod/items"), "one");

    // The working tree changes: dev (latest) follows, prod keeps deployment 1.
    stratus_testkit::write_file(
        dir.path(),
        "items/app.py",
        &ITEMS_PY.replace("\"one\"", "\"two\""),
    );
    s.wait_line("app.py; reloading", Duration::from_secs(30));
    s.wait_line("reloaded /", Duration::from_secs(30));
    assert_eq!(get("/shop/dev/items"), "two");
    assert_eq!(get("/shop/prod/items"), "one");
    let (ok, out, _) = run_cli(&["deploy", "--project", &project]);
    assert!(ok);
    assert_eq!(out.trim(), "deployment 2 (items:2)");
    assert_eq!(
        get("/shop/prod/items"),
        "one",
        "a deployment alone moves no stage"
    );

    // Moved under load: every request answered, by one or the other.
    let url = s.url("/shop/prod/items");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        rt.spawn(async move {
            let client = reqwest::Client::new();
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = client.get(&url).send().await;
                seen.push(match r {
                    Ok(r) => format!(
                        "{} {}",
                        r.status().as_u16(),
                        r.text().await.unwrap_or_default()
                    ),
                    Err(e) => format!("error {e}"),
                });
            }
            seen
        })
    };
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    let (ok, _, err) = run_cli(&["stage", "prod", "--deployment", "2", "--project", &project]);
    assert!(ok, "{err}");
    assert_eq!(
        get("/shop/prod/items"),
        "two",
        "moved once the command returns"
    );
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = rt.block_on(load).unwrap();
    assert!(seen.len() > 20, "{}", seen.len());
    assert!(
        seen.iter().all(|r| r == "200 one" || r == "200 two"),
        "nothing dropped: {:?}",
        seen.iter()
            .filter(|r| !r.starts_with("200"))
            .collect::<Vec<_>>()
    );
    assert_eq!(seen.first().map(String::as_str), Some("200 one"));
    assert_eq!(seen.last().map(String::as_str), Some("200 two"));

    // Rollback is moving it back.
    assert!(run_cli(&["stage", "prod", "--deployment", "1", "--project", &project]).0);
    assert_eq!(get("/shop/prod/items"), "one");

    // A canary: 25% of prod's requests served by deployment 2.
    let toml = std::fs::read_to_string(dir.path().join("stratus.toml"))
        .unwrap()
        .replace(
            "prod = {}",
            "prod = { canary = { deployment = 2, percent = 25 } }",
        );
    std::fs::write(dir.path().join("stratus.toml"), toml).unwrap();
    s.wait_line("stratus.toml; reloading", Duration::from_secs(30));
    s.wait_line("reloaded /", Duration::from_secs(30));
    let twos = (0..200)
        .filter(|_| get("/shop/prod/items") == "two")
        .count();
    assert!(
        (20..=90).contains(&twos),
        "about 25% from the canary: {twos}"
    );

    // The stage's figures, split by the deployment that served.
    let metrics = metrics_of(&rt, &s);
    let served_by = |dep: &str| -> u64 {
        let prefix = format!(
            "stratus_api_requests_total{{api=\"shop\",stage=\"prod\",deployment=\"{dep}\",route=\"GET /items\",class=\"2xx\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0, |n| n.parse().unwrap())
    };
    assert!(served_by("2") >= twos as u64, "{metrics}");
    assert!(served_by("1") >= (200 - twos) as u64, "{metrics}");
    let (ok, out, err) = run_cli(&["deployments", "--project", &project]);
    assert!(ok, "{err}");
    assert!(out.contains("first"), "{out}");
    assert!(out.contains("shop  prod   1 (canary 2 at 25%)"), "{out}");
    let (ok, routes, _) = run_cli(&["routes", &project]);
    assert!(ok);

    // Canaries by command: promoted (the stage moves to it), set, removed.
    let canary = |args: &[&str]| {
        let mut all = vec!["canary", "prod"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--project", &project]);
        let (ok, _, err) = run_cli(&all);
        assert!(ok, "{args:?}: {err}");
    };
    canary(&["--promote"]);
    assert!(
        (0..20).all(|_| get("/shop/prod/items") == "two"),
        "promoted"
    );
    canary(&["--deployment", "1", "--percent", "100"]);
    assert!(
        (0..5).all(|_| get("/shop/prod/items") == "one"),
        "a canary at 100%"
    );
    canary(&["--remove"]);
    assert!((0..5).all(|_| get("/shop/prod/items") == "two"), "removed");

    // Mistakes are named, and change nothing.
    for (args, said) in [
        (
            vec!["stage", "nope", "--deployment", "1"],
            "no stage \"nope\"",
        ),
        (
            vec!["stage", "prod", "--deployment", "99"],
            "no deployment 99",
        ),
        (
            vec!["stage", "prod", "--deployment", "soon"],
            "deployment: an id, or \"latest\"",
        ),
        (
            vec!["canary", "prod", "--deployment", "99", "--percent", "5"],
            "no deployment 99",
        ),
        (
            vec!["canary", "prod", "--deployment", "1", "--percent", "150"],
            "percent: 0 to 100",
        ),
        (vec!["canary", "prod", "--promote"], "has no canary"),
    ] {
        let mut all = args.clone();
        all.extend_from_slice(&["--project", &project]);
        let (ok, _, err) = run_cli(&all);
        assert!(!ok, "{args:?}");
        assert!(err.contains(said), "{args:?}: {err}");
    }
    assert_eq!(get("/shop/prod/items"), "two");
    let out = routes;
    let prod = out
        .lines()
        .find(|l| l.contains("/shop/prod/items"))
        .expect(&out);
    let cells: Vec<&str> = prod.split_whitespace().collect();
    assert_eq!(cells[..3], ["shop", "prod", "1"], "{prod}");
    assert!(prod.contains("function items:1"), "{prod}");
    let dev = out
        .lines()
        .find(|l| l.contains("/shop/dev/items"))
        .expect(&out);
    assert!(
        dev.contains("latest") && dev.contains("function items "),
        "{dev}"
    );
}
