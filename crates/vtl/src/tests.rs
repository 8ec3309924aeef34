//! Every construct on known input, with its exact output: the kinds of
//! template the API Gateway developer guide's "Mapping template reference"
//! and "Mapping template examples" show, written afresh.

use super::*;

const BODY: &str = r#"{"name": "Ann", "age": 41, "pets": [{"kind": "cat", "name": "Tom"}, {"kind": "dog", "name": "Rex"}], "note": "say \"hi\"\n", "nested": {"deep": {"x": 1}}}"#;

fn path() -> Vec<(String, String)> {
    vec![("id".into(), "42".into())]
}
fn query() -> Vec<(String, String)> {
    vec![
        ("sort".into(), "asc".into()),
        ("id".into(), "from-query".into()),
    ]
}
fn header() -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("X-Trace".into(), "t-1".into()),
    ]
}

fn vars() -> Vars {
    let mut v = Vars::new();
    v.insert(
        "context".into(),
        Value::map([
            ("requestId", Value::str("req-1")),
            ("stage", Value::str("prod")),
            ("httpMethod", Value::str("POST")),
            (
                "identity",
                Value::map([("sourceIp", Value::str("127.0.0.1"))]),
            ),
            (
                "authorizer",
                Value::map([("principalId", Value::str("user-7"))]),
            ),
        ]),
    );
    v.insert(
        "stageVariables".into(),
        Value::map([("table", Value::str("pets-prod"))]),
    );
    v
}

fn render_with(src: &str, body: &str) -> (String, Vars) {
    let t = Template::parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
    let (p, q, h) = (path(), query(), header());
    let input = Input {
        body,
        path: &p,
        querystring: &q,
        header: &h,
    };
    let mut v = vars();
    let out = t
        .render(&input, &mut v)
        .unwrap_or_else(|e| panic!("{src:?}: {e}"));
    (out, v)
}

fn render(src: &str) -> String {
    render_with(src, BODY).0
}

#[test]
fn input_variables_and_functions() {
    let table: &[(&str, &str)] = &[
        ("$input.body", BODY),
        ("$input.json('$.name')", r#""Ann""#),
        ("$input.json('$.age')", "41"),
        ("$input.json('$.pets[0]')", r#"{"kind":"cat","name":"Tom"}"#),
        ("$input.json('$.pets[*].name')", r#"["Tom","Rex"]"#),
        ("$input.path('$.name')", "Ann"),
        ("$input.path('$.pets').size()", "2"),
        ("$input.path('$.pets')[1].name", "Rex"),
        ("$input.path('$.nested.deep.x')", "1"),
        ("$input.path('$.pets[*].kind')", "[cat, dog]"),
        ("$input.params('id')", "42"),
        ("$input.params('sort')", "asc"),
        ("$input.params('x-trace')", "t-1"),
        ("[$input.params('nothing')]", "[]"),
        ("$input.params().header.get('X-Trace')", "t-1"),
        ("$input.params().querystring.sort", "asc"),
        ("$input.params().path", "{id=42}"),
        ("$input.json('$.missing')", ""),
    ];
    for (src, want) in table {
        assert_eq!(render(src), *want, "{src}");
    }
}

#[test]
fn context_stage_variables_and_util() {
    let table: &[(&str, &str)] = &[
        ("$context.requestId", "req-1"),
        ("${context.stage}", "prod"),
        ("$context.identity.sourceIp", "127.0.0.1"),
        ("$context.authorizer.principalId", "user-7"),
        ("$stageVariables.table", "pets-prod"),
        (
            "$util.escapeJavaScript($input.path('$.note'))",
            r#"say \"hi\"\n"#,
        ),
        (
            "$util.escapeJavaScript(\"it's a/b é\")",
            r"it\'s a\/b \u00E9",
        ),
        ("$util.urlEncode('a b&c=d/é')", "a+b%26c%3Dd%2F%C3%A9"),
        ("$util.urlDecode('a+b%26c%3Dd')", "a b&c=d"),
        ("$util.base64Encode('hello')", "aGVsbG8="),
        ("$util.base64Decode('aGVsbG8=')", "hello"),
        ("$util.parseJson('{\"a\": [1, 2]}').a.get(1)", "2"),
    ];
    for (src, want) in table {
        assert_eq!(render(src), *want, "{src}");
    }
}

#[test]
fn references_quiet_and_escaped() {
    let table: &[(&str, &str)] = &[
        ("$nothing", "$nothing"),
        ("$!nothing", ""),
        ("$!{nothing}", ""),
        ("${nothing}", "${nothing}"),
        ("\\$context.stage", "$context.stage"),
        ("cost: $5", "cost: $5"),
        ("a.${context.stage}.b", "a.prod.b"),
        // A property of a string is null: the reference is written as it is.
        ("a.$context.stage.b", "a.$context.stage.b"),
        ("${context.stage}-1", "prod-1"),
        // Velocity names may hold '-': `stage-1` is a property of its own.
        ("$context.stage-1", "$context.stage-1"),
        ("mail@$context.stage.", "mail@prod."),
        ("#notadirective", "#notadirective"),
        ("#[[$raw #if]]#", "$raw #if"),
        ("a ## a comment\nb", "a b"),
        ("a #* a\nblock *# b", "a  b"),
    ];
    for (src, want) in table {
        assert_eq!(render(src), *want, "{src}");
    }
}

#[test]
fn set_if_and_foreach() {
    let table: &[(&str, &str)] = &[
        ("#set($x = 5)$x", "5"),
        ("#set($x = \"v$context.stage\")$x", "vprod"),
        ("#set($x = 'v$context.stage')$x", "v$context.stage"),
        ("#set($x = 1)#set($x = $nothing)$x", "1"),
        ("#set($l = [1, 2, 3])$l.size() $l.get(0) $l[2]", "3 1 3"),
        ("#set($m = {\"a\": 1, \"b\": [true]})$m.a $m.b $m", "1 [true] {a=1, b=[true]}"),
        ("#set($r = [1..4])$r", "[1, 2, 3, 4]"),
        ("#set($r = [3..1])$r", "[3, 2, 1]"),
        ("#if($input.path('$.age') > 40)old#{else}young#end", "old"),
        ("#if($context.stage == 'dev')d#elseif($context.stage == 'prod')p#{else}x#end", "p"),
        ("#if(!$nothing)none#end", "none"),
        ("#if($nothing || $context.stage)yes#end", "yes"),
        ("#if($context.stage && !$nothing && 1 < 2)all#end", "all"),
        ("#if(\"\")empty strings are true#end", "empty strings are true"),
        ("#if($context.stage eq \"prod\" and not $nothing)words#end", "words"),
        ("#if(2 + 3 * 4 == 14 && 7 / 2 == 3 && 7 % 2 == 1 && 1.5 * 2 == 3)math#end", "math"),
        (
            "#foreach($p in $input.path('$.pets'))$p.name#if($foreach.hasNext),#end#end",
            "Tom,Rex",
        ),
        (
            "#foreach($p in $input.path('$.pets'))$foreach.index:$foreach.count:$velocityCount #end",
            "0:1:1 1:2:2 ",
        ),
        ("#foreach($i in [1..5])#if($i == 3)#break#end$i#end", "12"),
        ("#foreach($v in {\"a\": 1, \"b\": 2})$v#end", "12"),
        ("#foreach($k in $input.path('$.nested').keySet())$k#end", "deep"),
        ("before#stop after", "before"),
        ("#set($l = [])#set($ok = $l.add('x'))$l.add('y')$l", "true[x, y]"),
        ("#set($m = {})#set($old = $m.put('k', 'v'))$m.k $m.containsKey('k')", "v true"),
        ("#set($context.responseOverride.status = 400)$context.responseOverride.status", "400"),
    ];
    for (src, want) in table {
        assert_eq!(render(src), *want, "{src}");
    }
}

#[test]
fn methods_of_strings_lists_and_maps() {
    let table: &[(&str, &str)] = &[
        ("#set($s = ' Hello, World ')$s.trim().toLowerCase()", "hello, world"),
        ("#set($s = 'Hello')$s.length() $s.toUpperCase() $s.substring(1, 3)", "5 HELLO el"),
        ("#set($s = 'a,b,,c')$s.split(',') $s.split(',').size()", "[a, b, , c] 4"),
        ("#set($s = 'a-b-c')$s.replace('-', '+') $s.replaceAll('[a-z]', 'x')", "a+b+c x-x-x"),
        ("#set($s = 'abc')$s.contains('b') $s.startsWith('ab') $s.endsWith('bc') $s.indexOf('c')", "true true true 2"),
        ("#set($s = 'abc')$s.matches('[a-c]+') $s.equals('abc') $s.isEmpty()", "true true false"),
        ("#set($l = ['x', 'y'])$l.contains('y') $l.indexOf('y') $l.isEmpty() $l.subList(1, 2)", "true 1 false [y]"),
        ("#set($m = {'a': 1})$m.size() $m.get('a') $m.values() $m.entrySet()", "1 1 [1] [{key=a, value=1}]"),
        ("#set($n = 7)$n.toString().length()", "1"),
    ];
    for (src, want) in table {
        assert_eq!(render(src), *want, "{src}");
    }
}

/// A request template as the guide's examples write them: JSON out of the
/// body and the context, a line per directive left out.
#[test]
fn a_whole_template_with_the_lines_of_its_directives_left_out() {
    let src = r#"#set($pets = $input.path('$.pets'))
{
  "owner": "$input.path('$.name')",
  "stage": "$context.stage",
  "pets": [
    #foreach($p in $pets)
    {"kind": "$p.kind", "name": "$util.escapeJavaScript($p.name)"}#if($foreach.hasNext),#end

    #end
  ]
}"#;
    let want = r#"{
  "owner": "Ann",
  "stage": "prod",
  "pets": [
    {"kind": "cat", "name": "Tom"},

    {"kind": "dog", "name": "Rex"}

  ]
}"#;
    assert_eq!(render(src), want);
    let out: serde_json::Value = serde_json::from_str(&render(src)).unwrap();
    assert_eq!(out["pets"][1]["name"], "Rex");
}

#[test]
fn a_body_that_is_not_json_is_a_string() {
    assert_eq!(
        render_with("$input.json('$')", "plain text").0,
        r#""plain text""#
    );
    assert_eq!(render_with("$input.body", "plain text").0, "plain text");
}

#[test]
fn bad_templates_are_named_with_their_line_and_column() {
    let table: &[(&str, &str)] = &[
        ("#if($a)\nno end", "#if is not closed with #end"),
        ("#foreach($x in $l)\n", "#foreach is not closed with #end"),
        (
            "ok\n$util.toJson($x)",
            "line 2, column 1: $util.toJson is not a $util function",
        ),
        ("#end", "#end without a block to end"),
        ("#else", "outside an #if"),
        ("#set(x = 1)", "#set needs a reference"),
        ("#set($x 1)", "expected = in #set"),
        ("${a", "is not closed with }"),
        ("#if($a == 'x)#end", "string is not closed"),
        ("#macro(m)#end", "#macro is not available"),
        ("#* open", "not closed with *#"),
    ];
    for (src, want) in table {
        let e = Template::parse(src).unwrap_err().to_string();
        assert!(e.contains(want), "{src:?}: {e}");
    }
    // Hostile nesting is refused at parse, not by the stack.
    let deep = "#if(true)".repeat(100);
    assert!(Template::parse(&deep)
        .unwrap_err()
        .to_string()
        .contains("nested deeper"));
    let deep = format!("$x.m({}1{})", "(".repeat(200), ")".repeat(200));
    assert!(Template::parse(&deep)
        .unwrap_err()
        .to_string()
        .contains("nested deeper"));
}

#[test]
fn limits_end_a_rendering_with_an_error() {
    let t = Template::parse("#foreach($i in [1..1000])#foreach($j in [1..1000])x#end#end").unwrap();
    let e = t.render(&Input::default(), &mut Vars::new()).unwrap_err();
    assert!(e.contains("steps") || e.contains("bytes"), "{e}");
    let t = Template::parse("#set($l = [1..2000])").unwrap();
    let e = t.render(&Input::default(), &mut Vars::new()).unwrap_err();
    assert!(e.contains("limit is 1000"), "{e}");
    let t = Template::parse("$input.path('$[')").unwrap();
    let e = t.render(&Input::default(), &mut Vars::new()).unwrap_err();
    assert!(e.contains("is not a JSONPath"), "{e}");
}
