//! `stratus dev` and SIGHUP: the project reloaded while it serves, as a
//! user edits it — code, configuration, mistakes in both — with open
//! WebSocket connections and in-flight requests kept.

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::Serving;

const TOML: &str = r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.hi]
runtime = "python3"
handler = "app.handler"
code = "hi"

[functions.ws]
runtime = "python3"
handler = "app.handler"
code = "ws"

[apis.web]
type = "http"
[apis.web.routes]
"GET /hi" = { function = "hi" }
"GET /slow" = { function = "hi" }

[apis.chat]
type = "websocket"
base_path = "/chat"
[apis.chat.routes]
"$default" = { function = "ws", respond = true }
"#;

fn hi_py(word: &str) -> String {
    format!(
        r#"
import time
def handler(event, context):
    if event["rawPath"] == "/slow":
        time.sleep(1.5)
    return {{"statusCode": 200, "body": "{word}"}}
"#
    )
}

const WS_PY: &str = r#"
def handler(event, context):
    return {"statusCode": 200, "body": "echo:" + (event.get("body") or "")}
"#;

const RELOADED: &str = "reloaded /";
const REFUSED: &str = "not reloaded";
const WAIT: Duration = Duration::from_secs(60);

fn get(rt: &tokio::runtime::Runtime, s: &Serving, path: &str) -> (u16, String) {
    rt.block_on(async {
        let r = reqwest::get(s.url(path)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

/// Writes `text` to `path` as an editor saves: the whole file at once.
fn save(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn dev_reloads_code_and_config_keeping_connections_and_refusing_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    stratus_testkit::write_file(root, "stratus.toml", TOML);
    stratus_testkit::write_file(root, "hi/app.py", &hi_py("one"));
    stratus_testkit::write_file(root, "ws/app.py", WS_PY);
    let s = Serving::start_dev(root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(get(&rt, &s, "/hi"), (200, "one".into()));

    let mut ws = rt.block_on(async {
        let url = format!("ws://{}/chat", s.gateway);
        tokio_tungstenite::connect_async(url).await.unwrap().0
    });
    let echo = |ws: &mut tokio_tungstenite::WebSocketStream<_>, text: &str| {
        rt.block_on(async {
            ws.send(Message::text(text)).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("an answer within 10 s")
                .expect("the connection is open")
                .unwrap();
            got.into_text().unwrap().to_string()
        })
    };
    assert_eq!(echo(&mut ws, "a"), "echo:a");

    // A slow call in flight while the code changes: it finishes on the
    // old code; the next call runs the new.
    let slow = {
        let url = s.url("/slow");
        rt.spawn(async move { reqwest::get(url).await.unwrap().text().await.unwrap() })
    };
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    save(&root.join("hi/app.py"), &hi_py("two"));
    let seen = s.wait_line(RELOADED, WAIT);
    assert!(
        seen.last()
            .is_some_and(|l| l.contains("functions replaced: hi")),
        "{seen:?}"
    );
    assert_eq!(get(&rt, &s, "/hi"), (200, "two".into()));
    assert_eq!(rt.block_on(slow).unwrap(), "one", "the in-flight call");
    assert_eq!(echo(&mut ws, "b"), "echo:b", "the WebSocket stayed open");

    // A broken file: reported, and the old configuration keeps serving.
    let broken = format!("{TOML}\n\"GET /new\" = {{ mock = {{ status = 201 }}\n");
    save(&root.join("stratus.toml"), &broken);
    s.wait_line(REFUSED, WAIT);
    // The diagnostics follow: file, line and column, and what is wrong.
    let seen = s.wait_line("stratus.toml:", Duration::from_secs(5));
    let last = seen.last().expect("the diagnostic line");
    assert!(
        last.contains("stratus.toml:28:") && last.contains("unclosed inline table"),
        "{seen:?}"
    );
    assert_eq!(get(&rt, &s, "/hi"), (200, "two".into()));
    assert_eq!(get(&rt, &s, "/new").0, 404);

    // Fixed: the new route serves, the function unchanged keeps its
    // environment, the WebSocket is still the same connection.
    let fixed = TOML.replace(
        "\"GET /slow\"",
        "\"GET /new\" = { mock = { status = 201, body = \"new\" } }\n\"GET /slow\"",
    );
    save(&root.join("stratus.toml"), &fixed);
    let seen = s.wait_line(RELOADED, WAIT);
    assert!(
        seen.last()
            .is_some_and(|l| l.contains("functions replaced: none")),
        "{seen:?}"
    );
    assert_eq!(get(&rt, &s, "/new"), (201, "new".into()));
    assert_eq!(get(&rt, &s, "/hi"), (200, "two".into()));
    assert_eq!(echo(&mut ws, "c"), "echo:c");
}

#[test]
fn sighup_reloads_serve() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    stratus_testkit::write_file(root, "stratus.toml", TOML);
    stratus_testkit::write_file(root, "hi/app.py", &hi_py("one"));
    stratus_testkit::write_file(root, "ws/app.py", WS_PY);
    let s = Serving::start(root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(get(&rt, &s, "/hi"), (200, "one".into()));
    // serve does not watch: a change waits for the signal (the warm
    // environment keeps the code it loaded).
    save(&root.join("hi/app.py"), &hi_py("two"));
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(800)).await });
    assert_eq!(get(&rt, &s, "/hi"), (200, "one".into()));
    s.signal("HUP");
    let seen = s.wait_line(RELOADED, WAIT);
    assert!(
        seen.iter().any(|l| l.contains("SIGHUP received")),
        "{seen:?}"
    );
    assert_eq!(get(&rt, &s, "/hi"), (200, "two".into()));
}

const RUST_OLD: &str = "\"message\": format!(\"hello, {name}\")";

#[test]
fn dev_rebuilds_a_rust_function_and_a_compile_error_keeps_the_old_build() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rs");
    let (ok, _, err) =
        crate::support::run_cli(&["init", root.to_str().unwrap(), "--template", "rust"]);
    assert!(ok, "{err}");
    let toml = std::fs::read_to_string(root.join("stratus.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:8081", "127.0.0.1:0");
    save(&root.join("stratus.toml"), &toml);
    let main = root.join("functions/hello/src/main.rs");
    let code = std::fs::read_to_string(&main).unwrap();
    assert!(code.contains(RUST_OLD), "the template changed: {code}");
    let s = Serving::start_dev(&root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(get(&rt, &s, "/hello/you").1.contains("hello, you"));

    // A compile error: the compiler's message is shown, the old build serves.
    save(
        &main,
        &code.replace(RUST_OLD, "\"message\": no_such_function(name)"),
    );
    let seen = s.wait_line(REFUSED, Duration::from_secs(300));
    let all = seen.join("\n");
    assert!(
        all.contains("no_such_function"),
        "the compiler's error: {all}"
    );
    assert!(all.contains("cargo build failed"), "{all}");
    assert!(get(&rt, &s, "/hello/you").1.contains("hello, you"));

    // Fixed: rebuilt, and the new build answers.
    save(
        &main,
        &code.replace(RUST_OLD, "\"message\": format!(\"hi, {name}\")"),
    );
    let seen = s.wait_line(RELOADED, Duration::from_secs(300));
    assert!(
        seen.last()
            .is_some_and(|l| l.contains("functions replaced: hello")),
        "{seen:?}"
    );
    assert!(get(&rt, &s, "/hello/you").1.contains("hi, you"));
}
