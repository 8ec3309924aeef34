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
    db = sqlite3.connect(os.environ["STRATUS_DB_MAIN_URL"])
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
sel = run("SELECT n, d, s, b, missing FROM kinds WHERE n = :n", [{{"name": "n", "value": {{"longValue": 9007199254740993}}}}], includeResultMetadata=True)
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
    assert_eq!(
        v["columns"],
        serde_json::json!([
            ["n", "INTEGER"],
            ["d", "REAL"],
            ["s", "TEXT"],
            ["b", "BLOB"],
            ["missing", "TEXT"]
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
