//! Databases (SQLite) through the real server: migrations applied once and
//! in order, a function using Python's own `sqlite3` on its injected path,
//! and boto3's `rds-data` client against the RDS Data API.

use std::process::Command;

use serde_json::Value;
use stratus_testkit::TestServer;

const PROJECT: &str = r#"
[functions.notes]
runtime = "python3"
handler = "app.handler"
code = "notes"
# The name the code reads, mapped to the one Stratus gives.
environment = { DATABASE_URL = "${STRATUS_DB_MAIN_URL}" }

[databases.main]
migrations = "migrations"

[apis.web]
type = "http"
[apis.web.routes]
"ANY /notes" = { function = "notes" }
"#;

const NOTES_PY: &str = r#"
import json, os, sqlite3
def handler(event, context):
    db = sqlite3.connect(os.environ["DATABASE_URL"])
    if event["requestContext"]["http"]["method"] == "POST":
        db.execute("INSERT INTO notes (text) VALUES (?)", (event["body"],))
        db.commit()
    rows = [r[0] for r in db.execute("SELECT text FROM notes ORDER BY id")]
    return {"statusCode": 200, "body": json.dumps({"notes": rows, "arn": os.environ["STRATUS_DB_MAIN_ARN"]})}
"#;

const MIGRATIONS: [(&str, &str); 2] = [
    (
        "migrations/001_tables.sql",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);\n\
         CREATE TABLE kinds (id INTEGER PRIMARY KEY, n INTEGER, d REAL, s TEXT, b BLOB, flag BOOLEAN, missing TEXT);",
    ),
    ("migrations/002_first_note.sql", "INSERT INTO notes (text) VALUES ('from a migration');"),
];

#[tokio::test]
async fn migrations_a_python_sqlite3_function_and_the_rds_data_api() {
    let mut files = vec![("notes/app.py", NOTES_PY)];
    files.extend(MIGRATIONS);
    let s = TestServer::start_with_files(PROJECT, &files).await;
    let client = reqwest::Client::new();

    // A function with the stdlib's sqlite3 on its injected path.
    let r = client
        .post(s.url("/notes"))
        .body("from a function")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["notes"],
        serde_json::json!(["from a migration", "from a function"])
    );
    let arn = v["arn"].as_str().unwrap().to_owned();
    assert_eq!(arn, "arn:aws:rds:us-east-1:000000000000:cluster:main");

    // boto3's rds-data client: every parameter type, round-tripped.
    let endpoint = s.admin_url("");
    let script = format!(
        r#"
import sys, json, base64, boto3, botocore
rds = boto3.client("rds-data", endpoint_url=sys.argv[1])
arn, secret = {arn:?}, "arn:aws:secretsmanager:us-east-1:000000000000:secret:any"
def run(sql, params=(), **kw):
    return rds.execute_statement(resourceArn=arn, secretArn=secret, sql=sql, parameters=list(params), **kw)
ins = run("INSERT INTO kinds (n, d, s, b, flag, missing) VALUES (:n, :d, :s, :b, :flag, :missing)", [
    {{"name": "n", "value": {{"longValue": 9007199254740993}}}},
    {{"name": "d", "value": {{"doubleValue": 2.5}}}},
    {{"name": "s", "value": {{"stringValue": "héllo 'quoted'"}}}},
    {{"name": "b", "value": {{"blobValue": b"\x00\x01\xff"}}}},
    {{"name": "flag", "value": {{"booleanValue": True}}}},
    {{"name": "missing", "value": {{"isNull": True}}}},
])
sel = run("SELECT n, d, s, b, missing, flag FROM kinds WHERE n = :n", [{{"name": "n", "value": {{"longValue": 9007199254740993}}}}], includeResultMetadata=True)
js = run("SELECT id, s FROM kinds", formatRecordsAs="JSON")
batch = rds.batch_execute_statement(resourceArn=arn, secretArn=secret, sql="INSERT INTO notes (text) VALUES (:t)",
    parameterSets=[[{{"name": "t", "value": {{"stringValue": "b1"}}}}], [{{"name": "t", "value": {{"stringValue": "b2"}}}}]])
tx = rds.begin_transaction(resourceArn=arn, secretArn=secret)["transactionId"]
run("INSERT INTO notes (text) VALUES ('committed')", transactionId=tx)
committed = rds.commit_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)["transactionStatus"]
tx = rds.begin_transaction(resourceArn=arn, secretArn=secret)["transactionId"]
run("INSERT INTO notes (text) VALUES ('rolled back')", transactionId=tx)
inside = run("SELECT count(*) FROM notes WHERE text = 'rolled back'", transactionId=tx)["records"][0][0]["longValue"]
rolled = rds.rollback_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)["transactionStatus"]
notes = [r[0]["stringValue"] for r in run("SELECT text FROM notes ORDER BY id")["records"]]
try:
    run("SELECT * FROM no_such_table")
    error = None
except botocore.exceptions.ClientError as e:
    error = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
try:
    rds.execute_statement(resourceArn="arn:aws:rds:us-east-1:000000000000:cluster:nope", secretArn=secret, sql="SELECT 1")
    unknown = None
except botocore.exceptions.ClientError as e:
    unknown = e.response["Error"]["Code"]
print(json.dumps({{
  "inserted": [ins["numberOfRecordsUpdated"], ins["generatedFields"]],
  "row": sel["records"][0],
  "columns": [[c["name"], c["typeName"]] for c in sel["columnMetadata"]],
  "json": json.loads(js["formattedRecords"]),
  "batch": [r["generatedFields"] for r in batch["updateResults"]],
  "committed": committed, "rolled": rolled, "inside": inside, "notes": notes,
  "error": error, "unknown": unknown,
}}, default=lambda b: base64.b64encode(b).decode()))
"#
    );
    let v = tokio::task::spawn_blocking(move || crate::support::boto3_script(&script, &endpoint))
        .await
        .unwrap();
    assert_eq!(v["inserted"][0], 1);
    assert_eq!(v["inserted"][1], serde_json::json!([{"longValue": 1}]));
    let row = &v["row"];
    // Beyond 2^53: a long survives exactly.
    assert_eq!(
        row[0],
        serde_json::json!({"longValue": 9007199254740993_i64})
    );
    assert_eq!(row[1], serde_json::json!({"doubleValue": 2.5}));
    assert_eq!(row[2], serde_json::json!({"stringValue": "héllo 'quoted'"}));
    assert_eq!(row[3], serde_json::json!({"blobValue": "AAH/"}));
    assert_eq!(row[4], serde_json::json!({"isNull": true}));
    assert_eq!(row[5], serde_json::json!({"booleanValue": true}));
    assert_eq!(
        v["columns"],
        serde_json::json!([
            ["n", "INTEGER"],
            ["d", "REAL"],
            ["s", "TEXT"],
            ["b", "BLOB"],
            ["missing", "TEXT"],
            ["flag", "BOOLEAN"]
        ])
    );
    assert_eq!(
        v["json"],
        serde_json::json!([{"id": 1, "s": "héllo 'quoted'"}])
    );
    assert_eq!(v["batch"][0][0]["longValue"], 3);
    assert_eq!(v["committed"], "Transaction Committed");
    assert_eq!(v["rolled"], "Rollback Complete");
    assert_eq!(
        v["inside"], 1,
        "the uncommitted row is visible inside its transaction"
    );
    assert_eq!(
        v["notes"],
        serde_json::json!([
            "from a migration",
            "from a function",
            "b1",
            "b2",
            "committed"
        ]),
        "the rolled-back row is really absent"
    );
    assert_eq!(v["error"][0], "BadRequestException");
    assert_eq!(v["error"][1], "no such table: no_such_table");
    assert_eq!(v["unknown"], "NotFoundException");

    // The AWS CLI, unchanged.
    let endpoint = s.admin_url("");
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        crate::support::aws(
            &endpoint,
            &[
                "rds-data",
                "execute-statement",
                "--resource-arn",
                "arn:aws:rds:us-east-1:000000000000:cluster:main",
                "--secret-arn",
                "arn:aws:secretsmanager:us-east-1:000000000000:secret:any",
                "--sql",
                "SELECT text FROM notes WHERE id > :n ORDER BY id",
                "--parameters",
                r#"[{"name": "n", "value": {"longValue": 4}}]"#,
                "--format-records-as",
                "JSON",
            ],
        )
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        out["formattedRecords"].as_str().unwrap(),
        r#"[{"text":"committed"}]"#
    );

    // Started again on the same data: migrations are not applied again.
    let dir = s.dir.path().to_path_buf();
    let app = stratus_config::load(&dir).unwrap();
    let server = stratus_server::Server::bind(app).await.expect("restart");
    drop(server);
    let count = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from notes').fetchone()[0])",
        ])
        .arg(dir.join(".stratus/databases/main.sqlite"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "5");
}

#[tokio::test]
async fn a_failing_migration_stops_the_start_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    stratus_testkit::write_file(
        dir.path(),
        "stratus.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[databases.main]\nmigrations = \"m\"\n",
    );
    stratus_testkit::write_file(dir.path(), "m/001_ok.sql", "CREATE TABLE a (x INTEGER);");
    stratus_testkit::write_file(dir.path(), "m/002_bad.sql", "CREATE TABLE a (x INTEGER);");
    let app = stratus_config::load(dir.path()).unwrap();
    let err = stratus_server::Server::bind(app).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("002_bad.sql") && msg.contains("table a already exists"),
        "{msg}"
    );
}

/// A schema of its own in the PostgreSQL at 127.0.0.1:5432 (database
/// `test`), dropped when the test ends; the URL selects it.
pub(crate) struct PgSchema {
    pub(crate) url: String,
    name: String,
}

pub(crate) const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

impl PgSchema {
    pub(crate) async fn new() -> PgSchema {
        let name = format!("stratus_t_{}", uuid_like());
        let mut c: sqlx::PgConnection = sqlx::Connection::connect(PG_SERVER)
            .await
            .expect("PostgreSQL runs at 127.0.0.1:5432 with trust auth and a database test");
        sqlx::Executor::execute(&mut c, format!("CREATE SCHEMA {name}").as_str())
            .await
            .unwrap();
        PgSchema {
            url: format!("{PG_SERVER}?options=-csearch_path%3D{name}"),
            name,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA {} CASCADE", self.name);
        // Drop runs outside the test's runtime: a small one of its own.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                if let Ok(mut c) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(PG_SERVER).await
                {
                    let _ = sqlx::Executor::execute(&mut c, sql.as_str()).await;
                }
            })
        })
        .join()
        .ok();
    }
}

fn uuid_like() -> String {
    use rand::Rng as _;
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

const NOTES_PSYCOPG: &str = r#"
import json, os, psycopg
def handler(event, context):
    with psycopg.connect(os.environ["STRATUS_DB_MAIN_URL"]) as db:
        if event["requestContext"]["http"]["method"] == "POST":
            db.execute("INSERT INTO notes (text) VALUES (%s)", (event["body"],))
        rows = [r[0] for r in db.execute("SELECT text FROM notes ORDER BY id")]
    return {"statusCode": 200, "body": json.dumps({"notes": rows})}
"#;

const PG_MIGRATIONS: [(&str, &str); 2] = [
    (
        "migrations/001_tables.sql",
        "CREATE TABLE notes (id SERIAL PRIMARY KEY, text TEXT NOT NULL);\n\
         CREATE TABLE kinds (id SERIAL PRIMARY KEY, i2 SMALLINT, i4 INTEGER, i8 BIGINT, r REAL, \
         d DOUBLE PRECISION, num NUMERIC(20,5), t TEXT, vc VARCHAR(10), b BYTEA, flag BOOLEAN, \
         ts TIMESTAMP, tstz TIMESTAMPTZ, dt DATE, tm TIME, j JSONB, u UUID, ai INTEGER[], \
         at TEXT[], missing TEXT);",
    ),
    (
        "migrations/002_first_note.sql",
        "INSERT INTO notes (text) VALUES ('from a migration');",
    ),
];

#[tokio::test]
async fn on_postgresql_a_psycopg_function_and_the_rds_data_api_with_every_type() {
    let schema = PgSchema::new().await;
    let mut files = vec![("notes/app.py", NOTES_PSYCOPG)];
    files.extend(PG_MIGRATIONS);
    // The SQLite project, moved to PostgreSQL by one setting.
    let project = PROJECT.replace(
        "[databases.main]\n",
        &format!(
            "[databases.main]\nengine = \"postgres\"\nurl = \"{}\"\n",
            schema.url
        ),
    );
    let s = TestServer::start_with_files(&project, &files).await;
    let client = reqwest::Client::new();

    let r = client
        .post(s.url("/notes"))
        .body("from psycopg")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["notes"],
        serde_json::json!(["from a migration", "from psycopg"])
    );

    let endpoint = s.admin_url("");
    let script = r#"
import sys, json, base64, boto3, botocore
rds = boto3.client("rds-data", endpoint_url=sys.argv[1])
arn, secret = "arn:aws:rds:us-east-1:000000000000:cluster:main", "arn:aws:secretsmanager:us-east-1:000000000000:secret:any"
def run(sql, params=(), **kw):
    return rds.execute_statement(resourceArn=arn, secretArn=secret, database="test", sql=sql, parameters=list(params), **kw)
def p(name, hint=None, **value):
    d = {"name": name, "value": value}
    if hint: d["typeHint"] = hint
    return d
ins = run("INSERT INTO kinds (i2, i4, i8, r, d, num, t, vc, b, flag, ts, tstz, dt, tm, j, u, ai, at, missing) VALUES "
          "(:i2, :i4, :i8, :r, :d, :num, :t, :vc, :b, :flag, :ts, :tstz, :dt, :tm, :j, :u, :ai, :at, :missing) RETURNING id", [
    p("i2", longValue=7), p("i4", longValue=-5), p("i8", longValue=9007199254740993),
    p("r", doubleValue=1.5), p("d", doubleValue=2.25),
    p("num", "DECIMAL", stringValue="12345.67890"),
    p("t", stringValue="héllo 'quoted'"), p("vc", stringValue="short"),
    p("b", blobValue=b"\x00\x01\xff"), p("flag", booleanValue=True),
    p("ts", "TIMESTAMP", stringValue="2024-02-29 13:14:15.123"),
    p("tstz", "TIMESTAMP", stringValue="2024-02-29 13:14:15"),
    p("dt", "DATE", stringValue="2024-02-29"), p("tm", "TIME", stringValue="13:14:15"),
    p("j", "JSON", stringValue='{"a": [1, 2]}'),
    p("u", "UUID", stringValue="6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c"),
    p("ai", arrayValue={"longValues": [1, 2, 3]}), p("at", arrayValue={"stringValues": ["x", "y"]}),
    p("missing", isNull=True),
])
sel = run("SELECT i2, i4, i8, r, d, num, t, vc, b, flag, ts, tstz, dt, tm, j, u, ai, at, missing FROM kinds WHERE id = :id",
          [p("id", longValue=ins["records"][0][0]["longValue"])], includeResultMetadata=True)
asnum = run("SELECT num, i8 FROM kinds", resultSetOptions={"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"})
js = run("SELECT id, num, ai, j FROM kinds", formatRecordsAs="JSON")
batch = rds.batch_execute_statement(resourceArn=arn, secretArn=secret, sql="INSERT INTO notes (text) VALUES (:t)",
    parameterSets=[[p("t", stringValue="b1")], [p("t", stringValue="b2")]])
tx = rds.begin_transaction(resourceArn=arn, secretArn=secret)["transactionId"]
run("INSERT INTO notes (text) VALUES ('committed')", transactionId=tx)
committed = rds.commit_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)["transactionStatus"]
tx = rds.begin_transaction(resourceArn=arn, secretArn=secret)["transactionId"]
run("INSERT INTO notes (text) VALUES ('rolled back')", transactionId=tx)
rolled = rds.rollback_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)["transactionStatus"]
notes = [r[0]["stringValue"] for r in run("SELECT text FROM notes ORDER BY id")["records"]]
def code(f):
    try:
        f()
        return None
    except botocore.exceptions.ClientError as e:
        return [e.response["Error"]["Code"], e.response["Error"]["Message"]]
error = code(lambda: run("SELECT * FROM no_such_table"))
typed = code(lambda: run("INSERT INTO kinds (i4) VALUES (:v)", [p("v", stringValue="not a number")]))
tx = rds.begin_transaction(resourceArn=arn, secretArn=secret)["transactionId"]
run("SET LOCAL statement_timeout = 100", transactionId=tx)
timeout = code(lambda: run("SELECT pg_sleep(5)", transactionId=tx))
rds.rollback_transaction(resourceArn=arn, secretArn=secret, transactionId=tx)
print(json.dumps({
  "inserted": [ins["numberOfRecordsUpdated"], ins["generatedFields"], ins["records"]],
  "row": sel["records"][0],
  "columns": [[c["name"], c["typeName"], c["type"]] for c in sel["columnMetadata"]],
  "asnum": asnum["records"][0],
  "json": json.loads(js["formattedRecords"]),
  "batch": len(batch["updateResults"]),
  "committed": committed, "rolled": rolled, "notes": notes,
  "error": error, "typed": typed, "timeout": timeout,
}, default=lambda b: base64.b64encode(b).decode()))
"#;
    let script = script.to_owned();
    let v = tokio::task::spawn_blocking(move || crate::support::boto3_script(&script, &endpoint))
        .await
        .unwrap();
    // PostgreSQL has no generated fields: RETURNING gives the id.
    assert_eq!(v["inserted"][0], 1);
    assert_eq!(v["inserted"][1], serde_json::json!([]));
    assert_eq!(v["inserted"][2], serde_json::json!([[{"longValue": 1}]]));
    let expected = serde_json::json!([
        {"longValue": 7},
        {"longValue": -5},
        {"longValue": 9007199254740993_i64},
        {"doubleValue": 1.5},
        {"doubleValue": 2.25},
        {"stringValue": "12345.67890"},
        {"stringValue": "héllo 'quoted'"},
        {"stringValue": "short"},
        {"blobValue": "AAH/"},
        {"booleanValue": true},
        {"stringValue": "2024-02-29 13:14:15.123"},
        {"stringValue": "2024-02-29 13:14:15"},
        {"stringValue": "2024-02-29"},
        {"stringValue": "13:14:15"},
        {"stringValue": "{\"a\":[1,2]}"},
        {"stringValue": "6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c"},
        {"arrayValue": {"longValues": [1, 2, 3]}},
        {"arrayValue": {"stringValues": ["x", "y"]}},
        {"isNull": true},
    ]);
    for (i, (got, want)) in v["row"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected.as_array().unwrap())
        .enumerate()
    {
        assert_eq!(got, want, "column {i}");
    }
    assert_eq!(v["row"].as_array().unwrap().len(), 19);
    let columns: Vec<(String, String, i64)> = serde_json::from_value(v["columns"].clone()).unwrap();
    let types: Vec<&str> = columns.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        types,
        [
            "int2",
            "int4",
            "int8",
            "float4",
            "float8",
            "numeric",
            "text",
            "varchar",
            "bytea",
            "bool",
            "timestamp",
            "timestamptz",
            "date",
            "time",
            "jsonb",
            "uuid",
            "_int4",
            "_text",
            "text"
        ]
    );
    assert_eq!(columns[2].2, -5, "JDBC BIGINT");
    assert_eq!(columns[16].2, 2003, "JDBC ARRAY");
    assert_eq!(
        v["asnum"],
        serde_json::json!([{"doubleValue": 12345.6789}, {"stringValue": "9007199254740993"}])
    );
    assert_eq!(
        v["json"],
        serde_json::json!([{"id": 1, "num": "12345.67890", "ai": [1, 2, 3], "j": "{\"a\":[1,2]}"}])
    );
    assert_eq!(v["batch"], 2);
    assert_eq!(v["committed"], "Transaction Committed");
    assert_eq!(v["rolled"], "Rollback Complete");
    assert_eq!(
        v["notes"],
        serde_json::json!(["from a migration", "from psycopg", "b1", "b2", "committed"]),
        "the rolled-back row is really absent"
    );
    assert_eq!(
        v["error"],
        serde_json::json!([
            "BadRequestException",
            "relation \"no_such_table\" does not exist"
        ])
    );
    assert_eq!(v["typed"][0], "BadRequestException");
    assert!(
        v["typed"][1].as_str().unwrap().contains("integer"),
        "{}",
        v["typed"]
    );
    assert_eq!(
        v["timeout"],
        serde_json::json!([
            "StatementTimeoutException",
            "canceling statement due to statement timeout"
        ])
    );
    s.shutdown().await;
}

#[tokio::test]
async fn on_postgresql_a_failing_migration_stops_the_start_naming_its_file() {
    let schema = PgSchema::new().await;
    let dir = tempfile::tempdir().unwrap();
    stratus_testkit::write_file(
        dir.path(),
        "stratus.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[databases.main]\nengine = \"postgres\"\nurl = \"{}\"\nmigrations = \"m\"\n",
            schema.url
        ),
    );
    stratus_testkit::write_file(dir.path(), "m/001_ok.sql", "CREATE TABLE a (x INTEGER);");
    stratus_testkit::write_file(
        dir.path(),
        "m/002_bad.sql",
        "CREATE TABLE b (x INTEGER); CREATE TABLE a (x INTEGER);",
    );
    let app = stratus_config::load(dir.path()).unwrap();
    let err = stratus_server::Server::bind(app).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("002_bad.sql") && msg.contains("relation \"a\" already exists"),
        "{msg}"
    );
    // The failed migration left nothing behind: b was rolled back with it,
    // and 001 is recorded once.
    let mut c: sqlx::PgConnection = sqlx::Connection::connect(&schema.url).await.unwrap();
    let (b,): (Option<String>,) = sqlx::query_as("SELECT to_regclass('b')::text")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(b, None);
    let applied: Vec<(String,)> = sqlx::query_as("SELECT name FROM _stratus_migrations")
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert_eq!(applied, [("001_ok.sql".to_owned(),)]);
}

/// `stratus db` as a user runs it, on both engines; on PostgreSQL the url
/// comes from the environment (`${DATABASE_URL}`), as in production.
#[tokio::test]
async fn stratus_db_migrates_runs_a_statement_and_reads_a_prompt_on_both_engines() {
    let schema = PgSchema::new().await;
    for (engine, toml, blob) in [
        ("sqlite", "[databases.main]\nmigrations = \"m\"\n", "x'00ff'"),
        (
            "postgres",
            "[databases.main]\nengine = \"postgres\"\nurl = \"${DATABASE_URL}\"\nmigrations = \"m\"\n",
            "'\\x00ff'::bytea",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        stratus_testkit::write_file(dir.path(), "stratus.toml", toml);
        stratus_testkit::write_file(
            dir.path(),
            "m/001_t.sql",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, b BYTEA);",
        );
        stratus_testkit::write_file(dir.path(), "m/002_rows.sql", "INSERT INTO t (id, name) VALUES (1, 'one'), (2, NULL);");
        let run = |args: &[&str], stdin: &str| {
            let mut child = crate::support::stratus()
                .args(["db", "main", "--project"])
                .arg(dir.path())
                .args(args)
                .env("DATABASE_URL", &schema.url)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (ok, out, err) = run(&["--migrate"], "");
        assert!(ok, "{engine}: {err}");
        assert_eq!(
            out,
            format!("applied 001_t.sql\napplied 002_rows.sql\nmain: 2 applied, 2 now ({engine})\n")
        );
        let (ok, out, _) = run(&["--migrate"], "");
        assert!(ok);
        assert_eq!(out, format!("main: 2 applied, 0 now ({engine})\n"), "once");

        let (ok, out, err) = run(&["-e", "SELECT id, name FROM t ORDER BY id"], "");
        assert!(ok, "{err}");
        assert_eq!(out, "id  name\n1   one\n2   NULL\n(2 rows)\n", "{engine}");

        // The prompt, fed by a pipe: statements end at `;`, an error is
        // reported and the next statement still runs; the exit is non-zero.
        let (ok, out, err) = run(
            &[],
            &format!("UPDATE t SET b = {blob}\n  WHERE id = 1;\nSELECT nope FROM t;\nSELECT b FROM t WHERE id = 1;\n"),
        );
        assert!(!ok);
        assert_eq!(out, "1 row updated\nb\n\\x00ff\n(1 row)\n", "{engine}: {err}");
        assert!(err.contains("error: ") && err.contains("nope"), "{err}");
    }
}
