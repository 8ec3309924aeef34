//! The `stratus` command as a user runs it.

use std::path::{Path, PathBuf};

use stratus_testkit::write_file;

use crate::support::{free_port, stratus, Serving};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello")
}

use crate::support::run_cli as run;

#[test]
fn version_and_help() {
    let (ok, out, _) = run(&["--version"]);
    assert!(ok);
    assert_eq!(out.trim(), format!("stratus {}", env!("CARGO_PKG_VERSION")));
    let (ok, out, _) = run(&["--help"]);
    assert!(ok);
    for cmd in ["serve", "validate", "routes", "init"] {
        assert!(out.contains(cmd), "help lacks {cmd}: {out}");
    }
}

#[test]
fn validate_accepts_the_example() {
    let (ok, out, err) = run(&["validate", example().to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains(": ok ("), "{out}");
}

#[test]
fn validate_reports_three_mistakes_with_lines_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "stratus.toml",
        r#"[apis.web]
type = "http"

[apis.web.routes]
"GET items" = { mock = {} }
"GET /a" = { function = "ghost" }
"GET /b" = { mock = {}, timeout_ms = 10 }
"#,
    );
    let (ok, _, err) = run(&["validate", dir.path().to_str().unwrap()]);
    assert!(!ok);
    let f = file.display();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].starts_with(&format!("{f}:5:")), "{err}");
    assert!(
        lines[0].contains(r#"apis.web.routes."GET items": malformed route key"#),
        "{err}"
    );
    assert!(lines[1].starts_with(&format!("{f}:6:")), "{err}");
    assert!(lines[1].contains(r#"unknown function "ghost""#), "{err}");
    assert!(lines[2].starts_with(&format!("{f}:7:")), "{err}");
    assert!(lines[2].contains("timeout_ms: 10 is out of range"), "{err}");
    assert_eq!(lines[3], "3 errors");
}

#[test]
fn validate_names_a_missing_project_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(&["validate", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("stratus.toml: error: cannot read project file"),
        "{err}"
    );
}

#[test]
fn routes_prints_a_table() {
    let (ok, out, err) = run(&["routes", example().to_str().unwrap()]);
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "API",
            "STAGE",
            "DEPLOYMENT",
            "METHOD",
            "PATH",
            "INTEGRATION",
            "THROTTLE",
            "AUTHORIZER",
            "API",
            "KEY"
        ]
    );
    let row = out
        .lines()
        .find(|l| l.contains("/shop/prod/items/{id}"))
        .expect(&out);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        ["shop", "prod", "latest", "GET", "/shop/prod/items/{id}"]
    );
    // Each API's own host follows.
    let hosts = out.split("\n\n").nth(1).expect(&out);
    let shop = hosts.lines().find(|l| l.starts_with("shop")).expect(hosts);
    assert_eq!(
        shop.split_whitespace().collect::<Vec<_>>(),
        [
            "shop",
            &format!(
                "{}.execute-api.localhost:8080",
                stratus_config::api_id("shop")
            ),
            "yes"
        ]
    );
    // The schedules follow, each with its next run.
    let schedules: Vec<&str> = out.split("\n\n").nth(2).expect(&out).lines().collect();
    assert_eq!(
        schedules[0].split_whitespace().collect::<Vec<_>>(),
        [
            "SCHEDULE",
            "FUNCTION",
            "EXPRESSION",
            "TIME",
            "ZONE",
            "NEXT",
            "RUN"
        ]
    );
    assert!(
        schedules[1].starts_with("morning-digest  digest    cron(0 7 * * ? *)  Europe/Paris  ")
            && schedules[1].ends_with(" UTC"),
        "{out}"
    );
    // Then the databases, with the ARN the Data API answers to.
    let dbs: Vec<&str> = out.split("\n\n").nth(3).expect(&out).lines().collect();
    assert_eq!(
        dbs,
        [
            "DATABASE  ENGINE  DATA API ARN",
            "notes     sqlite  arn:aws:rds:us-east-1:000000000000:cluster:notes"
        ]
    );
    // A WebSocket API's $default is a WebSocket route, not ANY.
    let ws = out
        .lines()
        .find(|l| l.starts_with("chat") && l.contains("$default"))
        .expect(&out);
    assert!(ws.contains(" WS "), "{ws}");
    assert!(
        row.contains(" 100/s, burst 200 "),
        "the stage's throttle: {row}"
    );
    assert_eq!(cells[cells.len() - 2..], ["-", "-"], "{row}");
    let own = out.lines().find(|l| l.contains("POST")).expect(&out);
    assert!(own.contains(" 5/s, burst 10 "), "the route's own: {own}");
    // Each route's authorizer and key requirement.
    let guarded = out.lines().find(|l| l.contains("/orders/")).expect(&out);
    assert!(guarded.contains(" tok (token) "), "{guarded}");
    let keyed = out.lines().find(|l| l.contains("/reports/")).expect(&out);
    assert!(keyed.ends_with(" required"), "{keyed}");
}

#[test]
fn init_writes_a_project_per_template_that_validates_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    for template in ["python", "node", "rust", "websocket", "mock", "portal"] {
        let target = dir.path().join(template);
        let (ok, out, err) = run(&["init", target.to_str().unwrap(), "--template", template]);
        assert!(ok, "{template}: {err}");
        assert!(out.contains(&format!("({template})")), "{out}");
        // What Stratus and the languages leave in the project is ignored.
        let ignore = std::fs::read_to_string(target.join(".gitignore")).unwrap();
        assert!(ignore.lines().any(|l| l == ".stratus/"), "{ignore}");
        let (ok, out, err) = run(&["validate", target.to_str().unwrap()]);
        assert!(ok, "{template}: {err}");
        let functions = match template {
            "mock" => "0 functions, 1 API,",
            "websocket" => "2 functions, 2 APIs,",
            "portal" => "3 functions, 3 APIs,",
            _ => "1 function, 1 API,",
        };
        assert!(out.contains(functions), "{template}: {out}");
    }
    // `--list`: one line per template, each the name and what it holds.
    let (ok, out, err) = run(&["init", "--list"]);
    assert!(ok, "{err}");
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        ["python", "node", "rust", "websocket", "mock", "portal"]
    );
    assert!(
        out.lines().all(|l| l.split_whitespace().count() > 3),
        "{out}"
    );
    let python = dir.path().join("python");
    let (ok, _, err) = run(&["init", python.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    // The Python template's function runs as written.
    let (ok, out, err) = run(&[
        "invoke",
        "hello",
        "--payload",
        r#"{"pathParameters": {"name": "init"}}"#,
        python.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains(r#"hello, init"#), "{out}");
}

/// The example project, served by the binary, answers its routes as configured:
/// mock, proxy, and a Python, a Node and a Rust function.
#[tokio::test]
async fn serve_answers_the_example_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, admin) = (free_port(), free_port());
    let example = example().canonicalize().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/stratus-test-data");
    let text = std::fs::read_to_string(example.join("stratus.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gw}"))
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{admin}"))
        .replace(
            "code = \"functions/",
            &format!("code = \"{}/functions/", example.display()),
        )
        .replace(
            "source = \"site\"",
            &format!("source = \"{}/site\"", example.display()),
        )
        .replace(
            "migrations = \"migrations\"",
            &format!("migrations = \"{}/migrations\"", example.display()),
        )
        .replace(
            "[server]\n",
            &format!("[server]\ndata_dir = {:?}\n", data.display().to_string()),
        );
    write_file(dir.path(), "stratus.toml", &text);
    let s = Serving::start(dir.path());
    let get = |p: &str| {
        let url = s.url(p);
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/ping").await, (200, "pong".into()));
    assert_eq!(get("/health").await, (200, "ok\n".into()));
    assert_eq!(get("/shop/prod/status").await, (200, "ready\n".into()));
    assert_eq!(get("/shop/prod/static/9").await, (200, "an item".into()));
    assert_eq!(get("/shop/prod/nope").await.0, 403);
    assert_eq!(get("/missing").await.0, 404);
    for (path, runtime, name) in [
        ("/hello/py", "python", "py"),
        ("/node/js", "node", "js"),
        ("/rust/rs", "rust", "rs"),
        ("/shop/prod/items/7", "python", "7"),
    ] {
        let (status, body) = get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["runtime"], runtime, "{path}");
        assert_eq!(v["message"], format!("hello, {name}"), "{path}");
    }
    // The authorizer's route and the key-protected one.
    let with = |p: &str, k: &'static str, v: &'static str| {
        let url = s.url(p);
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .header(k, v)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // The example's database, through its notes function.
    let (status, body) = get("/notes").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("the first note, from a migration"), "{body}");
    // The example's site.
    let (status, body) = get("/www/").await;
    assert_eq!(status, 200);
    assert!(body.contains("Hello from a Stratus site"), "{body}");
    assert_eq!(get("/shop/prod/orders/5").await.0, 401);
    let (status, body) = with("/shop/prod/orders/5", "authorization", "Bearer let-me-in").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello, 5"), "{body}");
    // Without a key: the example's gateway response for it.
    let refused = reqwest::get(s.url("/shop/prod/reports/1")).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.headers()["x-hint"],
        "send x-api-key: demo-key-0123456789abcdef"
    );
    assert_eq!(
        refused.text().await.unwrap(),
        r#"{"message": "Forbidden", "hint": "see the x-hint header"}"#
    );
    // The request validator of POST /items.
    let post = |body: &'static str| {
        reqwest::Client::new()
            .post(s.url("/shop/prod/items"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post(r#"{"price": 3}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Invalid request body"}"#
    );
    let r = post(r#"{"name": "pen"}"#).await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.text().await.unwrap(), "created");
    let keyed = with(
        "/shop/prod/reports/1",
        "x-api-key",
        "demo-key-0123456789abcdef",
    )
    .await;
    assert_eq!(keyed, (200, "a report".into()));
    let health = reqwest::get(format!("http://{}/healthz", s.admin))
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok\n");
    // The chat answers a message that is not JSON (it once crashed on it:
    // "Internal server error").
    {
        use futures_util::{SinkExt, StreamExt};
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/chat", s.gateway))
            .await
            .unwrap();
        ws.send(tokio_tungstenite::tungstenite::Message::text("hello?"))
            .await
            .unwrap();
        let reply = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let text = reply.into_text().unwrap().to_string();
        assert!(text.contains("messages are JSON objects"), "{text}");
        // A join is broadcast through `https://{domainName}/{stage}`, the
        // callback URL as on AWS.
        ws.send(tokio_tungstenite::tungstenite::Message::text(
            r#"{"action":"join","name":"ann"}"#,
        ))
        .await
        .unwrap();
        let said = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("the join was broadcast")
            .unwrap()
            .unwrap();
        let said: serde_json::Value = serde_json::from_str(said.to_text().unwrap()).unwrap();
        assert_eq!(said["system"], "ann joined");
    }
    // The access log names the request.
    let log: Vec<String> =
        std::iter::from_fn(|| s.lines.recv_timeout(std::time::Duration::from_secs(2)).ok())
            .take_while(|l| !l.contains("GET /missing"))
            .collect();
    assert!(
        log.iter()
            .any(|l| l.contains("GET /ping 200") && l.contains("request_id=")),
        "{log:?}"
    );
    // The digest: its morning schedule run now, and an upload to `www`
    // (an S3 event notification), each in the function's log.
    let project = dir.path().to_str().unwrap().to_owned();
    let (ok, _, err) =
        crate::support::run_cli(&["schedule", "run", "morning-digest", "--project", &project]);
    assert!(ok, "{err}");
    let r = reqwest::Client::new()
        .put(format!("http://{}/s3/www/news.txt", s.admin))
        .body("fresh news")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The site's source copies at start are uploads too (each one a
    // `digest:` line of its own, on a fresh data directory), so read on
    // until both lines this test caused are seen.
    let mut seen: Vec<String> = Vec::new();
    let wanted = |seen: &[String]| {
        seen.iter().any(|l| l.contains("digest: morning run at"))
            && seen
                .iter()
                .any(|l| l.contains("digest: ObjectCreated:Put www/news.txt (10 bytes)"))
    };
    while !wanted(&seen) {
        match s.lines.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(l) if l.contains("digest: ") => seen.push(l),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(wanted(&seen), "{seen:?}");
}

#[test]
fn serve_names_a_listener_that_is_taken_and_exits_non_zero() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\n"),
    );
    let (ok, _, err) = run(&["serve", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "cannot listen on 127.0.0.1:{port} (server.listen)"
        )),
        "{err}"
    );
    drop(taken);
}

#[tokio::test]
async fn a_quiet_log_level_keeps_the_addresses_and_the_failures() {
    let dir = tempfile::tempdir().unwrap();
    let dead = free_port(); // nothing listens there: the proxy answers 502
    write_file(
        dir.path(),
        "stratus.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
             [apis.web]\ntype = \"http\"\n[apis.web.routes]\n\
             \"GET /ok\" = {{ mock = {{ status = 200 }} }}\n\
             \"GET /broken\" = {{ http = \"http://127.0.0.1:{dead}/\" }}\n"
        ),
    );
    // `start` waits for the listening lines: they print at any level.
    let s = Serving::start_with_env(dir.path(), &[("STRATUS_LOG", "warn")]);
    assert_eq!(reqwest::get(s.url("/ok")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(s.url("/broken")).await.unwrap().status(), 502);
    // The failure is logged at WARN; the success is not logged at all.
    let seen = s.wait_line("GET /broken 502", std::time::Duration::from_secs(5));
    assert!(seen.last().unwrap().contains("WARN"), "{seen:?}");
    assert!(!seen.iter().any(|l| l.contains("GET /ok")), "{seen:?}");
}

#[tokio::test]
async fn serve_takes_its_addresses_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    // Addresses that cannot be bound (port 1 needs privileges we drop
    // nowhere, and 192.0.2.1 is not this machine's): the flags must win.
    let project = |listen: &str, admin: &str| {
        write_file(
            dir.path(),
            "stratus.toml",
            &format!(
                "[server]\nlisten = \"{listen}\"\nadmin_listen = \"{admin}\"\n\
                 [apis.web]\ntype = \"http\"\n[apis.web.routes]\n\"GET /ok\" = {{ mock = {{ status = 200, body = \"ok\" }} }}\n"
            ),
        );
    };
    project("192.0.2.1:8080", "127.0.0.1:1");
    let s = Serving::start_with(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        &[],
    );
    assert_ne!(s.gateway.port(), 0);
    assert_eq!(
        reqwest::get(s.url("/ok"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    drop(s);
    // --port keeps the configured address and changes the port only.
    project("127.0.0.1:1", "127.0.0.1:2");
    let s = Serving::start_with(
        dir.path(),
        &["--port", "0", "--admin-listen", "127.0.0.1:0"],
        &[],
    );
    assert_eq!(s.gateway.ip().to_string(), "127.0.0.1");
    assert_eq!(reqwest::get(s.url("/ok")).await.unwrap().status(), 200);
    drop(s);
    // The admin listener off loopback needs [server.credentials], as in stratus.toml.
    let (ok, _, err) = run(&[
        "serve",
        dir.path().to_str().unwrap(),
        "--port",
        "0",
        "--admin-listen",
        "0.0.0.0:0",
    ]);
    assert!(!ok);
    assert!(err.contains("--admin-listen 0.0.0.0:0"), "{err}");
}

#[test]
fn a_node_version_other_than_the_machines_is_warned_about() {
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let asked = format!("nodejs{}.x", major + 2);
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "n/a.mjs",
        "export const handler = async () => 'hi';\n",
    );
    write_file(
        dir.path(),
        "stratus.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
             [functions.n]\nruntime = \"{asked}\"\nhandler = \"a.handler\"\ncode = \"n\"\n"
        ),
    );
    // Not a mistake in the project: it validates.
    let (ok, _, err) = run(&["validate", dir.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    // The warning is printed at start, before the listening lines.
    let mut child = stratus()
        .args(["serve", dir.path().to_str().unwrap(), "--port", "0"])
        .env("STRATUS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(reader) {
        let line = line.unwrap();
        let done = line.contains("gateway listening on");
        seen.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let expected = format!(
        "{asked} asks for Node.js {}; functions of that runtime run on Node.js {}",
        major + 2,
        version.trim()
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("WARN") && l.contains(&expected)),
        "{seen:?}"
    );
}

#[test]
fn stratus_event_gives_what_the_rust_templates_function_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("rs");
    let project_arg = project.to_str().unwrap();
    let (ok, _, err) = run(&["init", project_arg, "--template", "rust"]);
    assert!(ok, "{err}");
    let (ok, event, err) = run(&[
        "event",
        "GET",
        "/hello/cli?lang=en",
        "--project",
        project_arg,
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("\"hello\""), "names the function: {err}");
    let v: serde_json::Value = serde_json::from_str(&event).unwrap();
    assert_eq!(v["version"], "2.0");
    assert_eq!(v["routeKey"], "GET /hello/{name}");
    assert_eq!(v["pathParameters"]["name"], "cli");
    assert_eq!(v["queryStringParameters"]["lang"], "en");
    // lambda_http parses it (a bare {"pathParameters": ...} it refuses).
    let (ok, out, err) = run(&["invoke", "hello", "--payload", &event, project_arg]);
    assert!(ok, "{err}");
    assert!(out.contains("hello, cli"), "{out}");
    // A path no function serves is said so.
    let (ok, _, err) = run(&["event", "GET", "/ping", "--project", project_arg]);
    assert!(!ok);
    assert!(err.contains("calls no function"), "{err}");
}

#[test]
fn stratus_event_builds_websocket_events_with_route_selection() {
    let project = example();
    let project = project.to_str().unwrap();
    let event = |args: &[&str]| {
        let mut all = vec!["event"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--project", project]);
        let (ok, out, err) = run(&all);
        assert!(ok, "{err}");
        assert!(err.contains("\"chat\""), "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let v = event(&[
        "MESSAGE",
        "/chat",
        "--body",
        r#"{"action":"send","text":"hi"}"#,
    ]);
    assert_eq!(v["requestContext"]["eventType"], "MESSAGE");
    assert_eq!(
        v["requestContext"]["routeKey"], "send",
        "selected by $request.body.action"
    );
    assert_eq!(v["body"], r#"{"action":"send","text":"hi"}"#);
    let v = event(&["MESSAGE", "/chat", "--body", "not json"]);
    assert_eq!(v["requestContext"]["routeKey"], "$default");
    let v = event(&["CONNECT", "/chat?name=ann"]);
    assert_eq!(v["requestContext"]["eventType"], "CONNECT");
    assert_eq!(v["queryStringParameters"]["name"], "ann");
    let v = event(&["DISCONNECT", "/chat"]);
    assert_eq!(v["requestContext"]["disconnectStatusCode"], 1000);
}
