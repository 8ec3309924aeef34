use std::path::Path;

use super::*;

fn load(text: &str) -> Result<App, Diagnostics> {
    load_str(
        text,
        Path::new("stratus.toml"),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
}

#[test]
fn empty_file_gets_every_default() {
    let app = load("").unwrap();
    assert_eq!(app.server.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(app.server.admin_listen.to_string(), DEFAULT_ADMIN_LISTEN);
    assert!(app.apis.is_empty() && app.functions.is_empty());
}

#[test]
fn path_patterns_parse_and_print_back() {
    for p in ["/", "/items", "/items/{id}", "/a/{b}/c/{proxy+}"] {
        assert_eq!(PathPattern::parse(p).unwrap().to_string(), p);
    }
    for bad in ["items", "/a//b", "/{proxy+}/x", "/a{b}", "/{}", "/{a-b}"] {
        assert!(PathPattern::parse(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn rest_stages_are_mounted_under_base_path() {
    let app = load(
        r#"
[apis.shop]
type = "rest"
base_path = "/shop/"
stages = { prod = { variables = { table = "items" } }, dev = {} }
[apis.shop.routes]
"GET /items/{id}" = { mock = { body = "x" } }
"#,
    )
    .unwrap();
    let api = &app.apis[0];
    assert_eq!(api.base_path, "/shop");
    let mounts: Vec<_> = api.stages.iter().map(|s| s.mount.as_str()).collect();
    assert_eq!(mounts, ["/shop/dev", "/shop/prod"]);
    assert_eq!(api.stages[1].variables["table"], "items");
    assert_eq!(api.routes[0].timeout.as_millis(), 29_000);
}

#[test]
fn http_api_defaults_to_one_default_stage_at_root() {
    let app = load("[apis.web]\ntype = \"http\"\n[apis.web.routes]\n\"ANY /{proxy+}\" = { http = \"http://127.0.0.1:1/{proxy}\" }\n").unwrap();
    let api = &app.apis[0];
    assert_eq!(api.stages.len(), 1);
    assert_eq!(api.stages[0].name, "$default");
    assert_eq!(api.stages[0].mount, "/");
    assert_eq!(api.routes[0].timeout.as_millis(), 30_000);
}

#[test]
fn listener_clash_is_reported() {
    let e = load("[server]\nlisten = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n")
        .unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].line, 3);
    assert_eq!(e.0[0].key, "server.admin_listen");
}

#[test]
fn port_zero_on_both_listeners_is_not_a_clash() {
    load("[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n").unwrap();
}

#[test]
fn selection_expressions_parse_once_into_parts() {
    use SelectionPart::*;
    let e = SelectionExpr::parse("$request.body.a.b").unwrap();
    assert_eq!(e.parts, [Body(vec!["a".into(), "b".into()])]);
    let e = SelectionExpr::parse(r"${request.body.service}/\$${request.body.action}!").unwrap();
    assert_eq!(
        e.parts,
        [
            Body(vec!["service".into()]),
            Literal("/$".into()),
            Body(vec!["action".into()]),
            Literal("!".into()),
        ]
    );
    // Static expressions (AWS accepts them): every message selects the constant.
    assert_eq!(
        SelectionExpr::parse("action").unwrap().constant(),
        Some("action")
    );
    assert_eq!(
        SelectionExpr::parse(r"\$default").unwrap().constant(),
        Some("$default")
    );
    assert_eq!(
        SelectionExpr::parse("$request.body.a").unwrap().constant(),
        None
    );
    for bad in [
        "",
        "$request.body.",
        "${request.body.a",
        "${request.header.x}",
        "$request.body.a..b",
    ] {
        assert!(SelectionExpr::parse(bad).is_err(), "{bad}");
    }
}
