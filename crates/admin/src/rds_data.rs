//! The RDS Data API (`rds-data`, rest-json: `POST /Execute`, `/BatchExecute`,
//! `/BeginTransaction`, `/CommitTransaction`, `/RollbackTransaction`) on
//! the project's databases, as boto3's `rds-data` client and `aws rds-data`
//! call it (SigV4 service `rds-data`, the one rule). Answers and errors are
//! AWS's: typed `Field`s, `columnMetadata`, `formattedRecords`,
//! `BadRequestException` carrying the database's message.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{json, Value as Json};
use stratus_state::databases::{Budget, Db, DbError, Hint, Outcome, Param, Value};

use crate::error::aws_error;
use crate::AdminState;

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new()
        .route("/Execute", post(execute))
        .route("/BatchExecute", post(batch))
        .route("/BeginTransaction", post(begin))
        .route("/CommitTransaction", post(commit))
        .route("/RollbackTransaction", post(rollback))
}

fn fail(status: StatusCode, code: &str, message: &str) -> Response {
    aws_error(status, code, json!({ "message": message }))
}

fn db_error(e: DbError) -> Response {
    match e {
        DbError::Timeout(m) => fail(StatusCode::BAD_REQUEST, "StatementTimeoutException", &m),
        DbError::NoTransaction(id) => fail(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            &format!("Transaction {id} is not found"),
        ),
        other => fail(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            &other.to_string(),
        ),
    }
}

/// The body as read, or the Data API's JSON error for one past the admin
/// listener's request limit (not axum's plain-text 413).
type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

/// Signature, JSON body, and the database its `resourceArn` names.
fn open(
    s: &AdminState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Body,
) -> Result<(Json, std::sync::Arc<Db>), Box<Response>> {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return Err(Box::new(fail(
                e.status(),
                "BadRequestException",
                &format!("the request body could not be read: {}", e.body_text()),
            )))
        }
    };
    if let Err((code, why)) = crate::sigv4::authorize(s, "rds-data", method, uri, headers, body) {
        return Err(Box::new(fail(StatusCode::FORBIDDEN, code, &why)));
    }
    let req: Json = serde_json::from_slice(body).map_err(|e| {
        Box::new(fail(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            &format!("the body is not JSON: {e}"),
        ))
    })?;
    if !req.is_object() {
        return Err(Box::new(fail(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "the body is not a JSON object",
        )));
    }
    let arn = required(&req, "resourceArn").map_err(|r| *r)?;
    let db = s.databases.find(arn).ok_or_else(|| {
        let known: Vec<String> = s.databases.all.iter().map(|d| d.arn.clone()).collect();
        Box::new(fail(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            &format!("no database {arn:?} (databases: {})", known.join(", ")),
        ))
    })?;
    Ok((req, db))
}

/// A string member the operation needs, or 400 saying so.
fn required<'a>(req: &'a Json, key: &str) -> Result<&'a str, Box<Response>> {
    req[key].as_str().ok_or_else(|| {
        Box::new(fail(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            &format!("{key} is required"),
        ))
    })
}

/// A `Field` of a request → a value.
fn value(name: &str, v: &Json) -> Result<Value, String> {
    Ok(if v["isNull"].as_bool() == Some(true) {
        Value::Null
    } else if let Some(b) = v["booleanValue"].as_bool() {
        Value::Bool(b)
    } else if let Some(n) = v["longValue"].as_i64() {
        Value::Long(n)
    } else if let Some(d) = v["doubleValue"].as_f64() {
        Value::Double(d)
    } else if let Some(t) = v["stringValue"].as_str() {
        Value::String(t.to_owned())
    } else if let Some(b) = v["blobValue"].as_str() {
        Value::Blob(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| format!("parameter {name}: blobValue is not base64"))?,
        )
    } else if let Some(a) = v["arrayValue"].as_object() {
        let (member, items) = a
            .iter()
            .next()
            .and_then(|(k, v)| Some((k.as_str(), v.as_array()?)))
            .ok_or_else(|| format!("parameter {name}: arrayValue needs one list"))?;
        let kind = match member {
            "longValues" => "longValue",
            "doubleValues" => "doubleValue",
            "stringValues" => "stringValue",
            "booleanValues" => "booleanValue",
            _ => {
                return Err(format!(
                    "parameter {name}: arrays of {member} are not supported"
                ))
            }
        };
        let items = items
            .iter()
            .map(|x| value(name, &json!({ kind: x })))
            .collect::<Result<Vec<_>, _>>()?;
        Value::Array("", items)
    } else {
        return Err(format!("parameter {name}: no value (isNull, booleanValue, longValue, doubleValue, stringValue, blobValue or arrayValue)"));
    })
}

/// A `SqlParameter` list → named values.
fn params(list: &Json) -> Result<Vec<Param>, String> {
    let mut out = Vec::new();
    for p in list.as_array().into_iter().flatten() {
        let name = p["name"].as_str().ok_or("a parameter needs a name")?;
        let hint = match p["typeHint"].as_str() {
            None => None,
            Some(h) => Some(Hint::parse(h).ok_or_else(|| {
                format!("parameter {name}: typeHint {h:?} is not one of JSON, UUID, TIMESTAMP, DATE, TIME, DECIMAL")
            })?),
        };
        out.push(Param {
            name: name.to_owned(),
            value: value(name, &p["value"])?,
            hint,
        });
    }
    Ok(out)
}

/// How the answer writes values (`resultSetOptions`).
#[derive(Clone, Copy)]
struct Options {
    decimal_as_number: bool,
    long_as_string: bool,
}

impl Options {
    fn of(req: &Json) -> Options {
        let o = &req["resultSetOptions"];
        Options {
            decimal_as_number: o["decimalReturnType"].as_str() == Some("DOUBLE_OR_LONG"),
            long_as_string: o["longReturnType"].as_str() == Some("STRING"),
        }
    }

    fn field(self, v: &Value) -> Json {
        match v {
            Value::Null => json!({ "isNull": true }),
            Value::Bool(b) => json!({ "booleanValue": b }),
            Value::Long(n) if self.long_as_string => json!({ "stringValue": n.to_string() }),
            Value::Long(n) => json!({ "longValue": n }),
            Value::Double(d) => json!({ "doubleValue": d }),
            Value::String(s) => json!({ "stringValue": s }),
            Value::Decimal(s) if self.decimal_as_number => match s.parse::<i64>() {
                Ok(n) => json!({ "longValue": n }),
                Err(_) => json!({ "doubleValue": s.parse::<f64>().unwrap_or(f64::NAN) }),
            },
            Value::Decimal(s) => json!({ "stringValue": s }),
            Value::Blob(b) => {
                json!({ "blobValue": base64::engine::general_purpose::STANDARD.encode(b) })
            }
            Value::Array(member, items) => {
                let list: Vec<Json> = items
                    .iter()
                    .map(|x| match x {
                        Value::Array(..) => self.field(x)["arrayValue"].clone(),
                        other => self.plain(other),
                    })
                    .collect();
                json!({ "arrayValue": { *member: list } })
            }
        }
    }

    fn plain(self, v: &Value) -> Json {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => json!(b),
            Value::Long(n) if self.long_as_string => json!(n.to_string()),
            Value::Long(n) => json!(n),
            Value::Double(d) => json!(d),
            Value::String(s) => json!(s),
            Value::Decimal(s) if self.decimal_as_number => s
                .parse::<i64>()
                .map_or_else(|_| json!(s.parse::<f64>().ok()), |n| json!(n)),
            Value::Decimal(s) => json!(s),
            Value::Blob(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Array(_, items) => Json::Array(items.iter().map(|x| self.plain(x)).collect()),
        }
    }
}

/// JDBC's type code for a database type name (SQLite's declared types,
/// PostgreSQL's names), as `columnMetadata.type` carries it.
fn jdbc_type(type_name: &str) -> i32 {
    if type_name.starts_with('_') {
        return 2003; // ARRAY
    }
    match type_name.to_ascii_lowercase().as_str() {
        "int2" | "smallint" => 5,
        "int4" | "int" | "integer" | "serial" => 4,
        "int8" | "bigint" | "bigserial" => -5,
        "float4" | "real" => 7,
        "float8" | "double" | "float" => 8,
        "numeric" | "decimal" => 2,
        "bool" | "boolean" => -7,
        "bytea" | "blob" => -2,
        "date" => 91,
        "time" => 92,
        "timestamp" | "timestamptz" | "datetime" => 93,
        "json" | "jsonb" | "uuid" => 1111,
        _ => 12, // VARCHAR
    }
}

/// The most an answer's records may take (`formattedRecords`: 10 MB).
const MAX_RECORDS: usize = 1 << 20;
const MAX_FORMATTED: usize = 10_000_000;

fn answer(out: &Outcome, req: &Json) -> Result<Json, Box<Response>> {
    let opts = Options::of(req);
    let too_big = || {
        Box::new(fail(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "Database returned more than the allowed response size limit",
        ))
    };
    let mut resp = json!({
        "numberOfRecordsUpdated": out.updated,
        "generatedFields": out.generated.map_or_else(Vec::new, |id| vec![json!({ "longValue": id })]),
    });
    if req["includeResultMetadata"].as_bool() == Some(true) {
        resp["columnMetadata"] = out
            .columns
            .iter()
            .map(|(name, t)| {
                json!({
                    "name": name, "label": name, "typeName": t, "type": jdbc_type(t),
                    "nullable": 2, "isSigned": matches!(jdbc_type(t), -5 | 8),
                    "precision": 0, "scale": 0, "schemaName": "", "tableName": "",
                    "arrayBaseColumnType": 0, "isAutoIncrement": false,
                    "isCaseSensitive": jdbc_type(t) == 12, "isCurrency": false,
                })
            })
            .collect();
    }
    if !out.columns.is_empty() {
        if req["formatRecordsAs"].as_str() == Some("JSON") {
            let rows: Vec<Json> = out
                .rows
                .iter()
                .map(|r| {
                    let obj: serde_json::Map<String, Json> = out
                        .columns
                        .iter()
                        .zip(r)
                        .map(|((name, _), v)| (name.clone(), opts.plain(v)))
                        .collect();
                    Json::Object(obj)
                })
                .collect();
            let text = Json::Array(rows).to_string();
            if text.len() > MAX_FORMATTED {
                return Err(too_big());
            }
            resp["formattedRecords"] = Json::String(text);
        } else {
            let records: Json = out
                .rows
                .iter()
                .map(|r| Json::Array(r.iter().map(|v| opts.field(v)).collect()))
                .collect();
            if records.to_string().len() > MAX_RECORDS {
                return Err(too_big());
            }
            resp["records"] = records;
        }
    }
    Ok(resp)
}

/// How large the answer `req` asks for may grow (see `answer`): a
/// `Field` is at least `{"isNull":true}`, a JSON record's value at least
/// `"name":1,`.
fn budget(req: &Json) -> Budget {
    if req["formatRecordsAs"].as_str() == Some("JSON") {
        Budget {
            bytes: MAX_FORMATTED,
            per_value: 4,
            named: true,
        }
    } else {
        Budget {
            bytes: MAX_RECORDS,
            per_value: 15,
            named: false,
        }
    }
}

macro_rules! opened {
    ($s:expr, $m:expr, $u:expr, $h:expr, $b:expr) => {
        match open(&$s, &$m, &$u, &$h, &$b) {
            Ok(x) => x,
            Err(r) => return *r,
        }
    };
}

async fn execute(
    State(s): State<AdminState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Body,
) -> Response {
    let (req, db) = opened!(s, m, u, h, body);
    let sql = match required(&req, "sql") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let params = match params(&req["parameters"]) {
        Ok(p) => p,
        Err(e) => return fail(StatusCode::BAD_REQUEST, "BadRequestException", &e),
    };
    match db
        .execute(sql, &params, req["transactionId"].as_str(), budget(&req))
        .await
    {
        Ok(out) => match answer(&out, &req) {
            Ok(v) => axum::Json(v).into_response(),
            Err(r) => *r,
        },
        Err(e) => db_error(e),
    }
}

async fn batch(
    State(s): State<AdminState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Body,
) -> Response {
    let (req, db) = opened!(s, m, u, h, body);
    let sql = match required(&req, "sql") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    // All sets in one transaction: the caller's, or one of its own.
    let (tx, own) = match req["transactionId"].as_str() {
        Some(t) => (t.to_owned(), false),
        None => match db.begin().await {
            Ok(t) => (t, true),
            Err(e) => return db_error(e),
        },
    };
    let mut results = Vec::new();
    for set in req["parameterSets"].as_array().into_iter().flatten() {
        let out = match params(set) {
            Ok(p) => db.execute(sql, &p, Some(&tx), budget(&req)).await,
            Err(e) => Err(DbError::Statement(e)),
        };
        match out {
            Ok(out) => results.push(json!({
                "generatedFields": out.generated.map_or_else(Vec::new, |id| vec![json!({ "longValue": id })]),
            })),
            Err(e) => {
                if own {
                    let _ = db.end(&tx, false).await;
                }
                return db_error(e);
            }
        }
    }
    if own {
        if let Err(e) = db.end(&tx, true).await {
            return db_error(e);
        }
    }
    axum::Json(json!({ "updateResults": results })).into_response()
}

async fn begin(
    State(s): State<AdminState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Body,
) -> Response {
    let (_, db) = opened!(s, m, u, h, body);
    match db.begin().await {
        Ok(id) => axum::Json(json!({ "transactionId": id })).into_response(),
        Err(e) => db_error(e),
    }
}

async fn end(s: AdminState, m: Method, u: Uri, h: HeaderMap, body: Body, commit: bool) -> Response {
    let (req, db) = opened!(s, m, u, h, body);
    let id = match required(&req, "transactionId") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match db.end(id, commit).await {
        Ok(()) => axum::Json(json!({
            "transactionStatus": if commit { "Transaction Committed" } else { "Rollback Complete" }
        }))
        .into_response(),
        Err(e) => db_error(e),
    }
}

async fn commit(
    State(s): State<AdminState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Body,
) -> Response {
    end(s, m, u, h, body, true).await
}

async fn rollback(
    State(s): State<AdminState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Body,
) -> Response {
    end(s, m, u, h, body, false).await
}
