//! Databases for functions: SQLite files in the data directory (PostgreSQL
//! is next), their migrations, and what the RDS Data API runs on them —
//! statements with named parameters, results as typed values, and
//! transactions held on one pooled connection each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Column, Row, TypeInfo, ValueRef};

/// A typed value, as the Data API's `Field`s carry them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    String(String),
    Blob(Vec<u8>),
}

/// What a statement gave back.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Column names and the database's type names.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Value>>,
    pub updated: u64,
    /// SQLite's rowid of an INSERT.
    pub generated: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database refused the statement: its own message.
    #[error("{0}")]
    Statement(String),
    #[error("no transaction {0:?}")]
    NoTransaction(String),
    #[error("{0}")]
    Setup(String),
}

type Tx = Arc<tokio::sync::Mutex<sqlx::pool::PoolConnection<sqlx::Sqlite>>>;

/// One database.
pub struct Db {
    pub name: String,
    pub arn: String,
    /// The SQLite file (absolute): what drivers open.
    pub path: PathBuf,
    pool: SqlitePool,
    /// Open transactions and when each was last used.
    transactions: Mutex<HashMap<String, (Tx, tokio::time::Instant)>>,
}

/// A transaction unused this long is rolled back, as the Data API's are
/// (3 minutes), and its connection returned to the pool.
pub const TRANSACTION_IDLE: std::time::Duration = std::time::Duration::from_secs(180);

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `:name` placeholders → `?N`, the names in order of first use; quoted
/// text and `::` casts left alone.
pub fn numbered(sql: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<String> = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let ch = chars[i];
        if let Some(q) = quote {
            out.push(ch);
            if ch == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            out.push(ch);
            i += 1;
            continue;
        }
        if ch == ':' && chars.get(i + 1) == Some(&':') {
            out.push_str("::");
            i += 2;
            continue;
        }
        if ch == ':'
            && chars
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
        {
            let start = i + 1;
            let mut end = start;
            while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                end += 1;
            }
            let name: String = chars[start..end].iter().collect();
            let n = match names.iter().position(|x| *x == name) {
                Some(p) => p + 1,
                None => {
                    names.push(name);
                    names.len()
                }
            };
            out.push_str(&format!("?{n}"));
            i = end;
            continue;
        }
        out.push(ch);
        i += 1;
    }
    (out, names)
}

impl Db {
    /// Opens (creating) `path`, applies the migrations not yet applied, in
    /// file-name order, each in a transaction; then the seed.
    pub async fn open(
        name: &str,
        arn: String,
        path: &Path,
        migrations: Option<&Path>,
        seed: Option<&Path>,
    ) -> Result<Db, DbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Setup(e.to_string()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| DbError::Setup(format!("cannot open {}: {e}", path.display())))?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS _stratus_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .map_err(|e| DbError::Setup(e.to_string()))?;
        if let Some(dir) = migrations {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| DbError::Setup(format!("{}: {e}", dir.display())))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .collect();
            files.sort();
            for f in files {
                let file = f
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let done: Option<(String,)> =
                    sqlx::query_as("SELECT name FROM _stratus_migrations WHERE name = ?1")
                        .bind(&file)
                        .fetch_optional(&pool)
                        .await
                        .map_err(|e| DbError::Setup(e.to_string()))?;
                if done.is_some() {
                    continue;
                }
                let sql = std::fs::read_to_string(&f)
                    .map_err(|e| DbError::Setup(format!("{}: {e}", f.display())))?;
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(|e| DbError::Setup(e.to_string()))?;
                sqlx::raw_sql(&sql).execute(&mut *tx).await.map_err(|e| {
                    DbError::Setup(format!(
                        "migration {} of database {name:?} failed: {e}",
                        f.display()
                    ))
                })?;
                sqlx::query("INSERT INTO _stratus_migrations (name, applied_at) VALUES (?1, ?2)")
                    .bind(&file)
                    .bind(chrono::Utc::now().timestamp())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| DbError::Setup(e.to_string()))?;
                tx.commit()
                    .await
                    .map_err(|e| DbError::Setup(e.to_string()))?;
                tracing::info!("database {name}: migration {file} applied");
            }
        }
        if let Some(seed) = seed {
            let sql = std::fs::read_to_string(seed)
                .map_err(|e| DbError::Setup(format!("{}: {e}", seed.display())))?;
            sqlx::raw_sql(&sql).execute(&pool).await.map_err(|e| {
                DbError::Setup(format!(
                    "seed {} of database {name:?} failed: {e}",
                    seed.display()
                ))
            })?;
        }
        Ok(Db {
            name: name.to_owned(),
            arn,
            path: path.to_path_buf(),
            pool,
            transactions: Mutex::default(),
        })
    }

    /// Runs one statement, with `params` by name, in a transaction or not.
    pub async fn execute(
        &self,
        sql: &str,
        params: &[(String, Value)],
        transaction: Option<&str>,
    ) -> Result<Outcome, DbError> {
        match transaction {
            Some(id) => {
                let tx = self.transaction(id)?;
                let mut conn = tx.lock().await;
                run(&mut conn, sql, params).await
            }
            None => {
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| DbError::Statement(e.to_string()))?;
                run(&mut conn, sql, params).await
            }
        }
    }

    fn transaction(&self, id: &str) -> Result<Tx, DbError> {
        let mut all = self.transactions.lock().expect("transactions lock");
        let (tx, used) = all
            .get_mut(id)
            .ok_or_else(|| DbError::NoTransaction(id.to_owned()))?;
        *used = tokio::time::Instant::now();
        Ok(tx.clone())
    }

    /// Rolls back the transactions unused for `idle`; how many.
    pub async fn expire_idle(&self, idle: std::time::Duration) -> usize {
        let stale: Vec<String> = self
            .transactions
            .lock()
            .expect("transactions lock")
            .iter()
            .filter(|(_, (_, used))| used.elapsed() >= idle)
            .map(|(id, _)| id.clone())
            .collect();
        let mut n = 0;
        for id in stale {
            if self.end(&id, false).await.is_ok() {
                tracing::info!(
                    "database {}: transaction {id} rolled back after {idle:?} unused",
                    self.name
                );
                n += 1;
            }
        }
        n
    }

    pub async fn begin(&self) -> Result<String, DbError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| DbError::Statement(e.to_string()))?;
        sqlx::query("BEGIN")
            .execute(&mut *conn)
            .await
            .map_err(|e| DbError::Statement(e.to_string()))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.transactions.lock().expect("transactions lock").insert(
            id.clone(),
            (
                Arc::new(tokio::sync::Mutex::new(conn)),
                tokio::time::Instant::now(),
            ),
        );
        Ok(id)
    }

    /// Commits (`true`) or rolls back a transaction and frees its connection.
    pub async fn end(&self, id: &str, commit: bool) -> Result<(), DbError> {
        let tx = self
            .transactions
            .lock()
            .expect("transactions lock")
            .remove(id)
            .map(|(tx, _)| tx)
            .ok_or_else(|| DbError::NoTransaction(id.to_owned()))?;
        let mut conn = tx.lock().await;
        sqlx::query(if commit { "COMMIT" } else { "ROLLBACK" })
            .execute(&mut **conn)
            .await
            .map_err(|e| DbError::Statement(e.to_string()))?;
        Ok(())
    }
}

async fn run(
    conn: &mut sqlx::SqliteConnection,
    sql: &str,
    params: &[(String, Value)],
) -> Result<Outcome, DbError> {
    let (sql, names) = numbered(sql);
    let mut q = sqlx::query(&sql);
    for name in &names {
        let v = params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| DbError::Statement(format!("no value for parameter :{name}")))?;
        q = match v {
            Value::Null => q.bind(None::<String>),
            Value::Bool(b) => q.bind(b),
            Value::Long(n) => q.bind(n),
            Value::Double(d) => q.bind(d),
            Value::String(s) => q.bind(s),
            Value::Blob(b) => q.bind(b),
        };
    }
    let mut out = Outcome::default();
    // Whether it returns rows decides how it is run (one prepare more, on
    // the same connection: SQLite caches it).
    let desc = sqlx::Executor::describe(&mut *conn, &sql)
        .await
        .map_err(|e| DbError::Statement(message(&e)))?;
    out.columns = desc
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
        .collect();
    if out.columns.is_empty() {
        let done = q
            .execute(&mut *conn)
            .await
            .map_err(|e| DbError::Statement(message(&e)))?;
        out.updated = done.rows_affected();
        let is_insert = sql
            .trim_start()
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("insert"));
        if is_insert && done.rows_affected() > 0 {
            out.generated = Some(done.last_insert_rowid());
        }
        return Ok(out);
    }
    let rows = q
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| DbError::Statement(message(&e)))?;
    for row in rows {
        let mut values = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let raw = row
                .try_get_raw(i)
                .map_err(|e| DbError::Statement(e.to_string()))?;
            let v = if raw.is_null() {
                Value::Null
            } else {
                match raw.type_info().name() {
                    "INTEGER" => Value::Long(row.try_get::<i64, _>(i).unwrap_or_default()),
                    "REAL" => Value::Double(row.try_get::<f64, _>(i).unwrap_or_default()),
                    "BLOB" => Value::Blob(row.try_get::<Vec<u8>, _>(i).unwrap_or_default()),
                    "BOOLEAN" => Value::Bool(row.try_get::<bool, _>(i).unwrap_or_default()),
                    _ => Value::String(row.try_get::<String, _>(i).unwrap_or_default()),
                }
            };
            values.push(v);
        }
        out.rows.push(values);
    }
    Ok(out)
}

/// The database's own message.
fn message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        other => other.to_string(),
    }
}

/// Every database of an app.
#[derive(Debug, Default)]
pub struct Databases {
    pub all: Vec<Arc<Db>>,
}

impl Databases {
    /// Expires idle transactions every 10 s until the task is aborted.
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let dbs = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            loop {
                tick.tick().await;
                for db in &dbs.all {
                    db.expire_idle(TRANSACTION_IDLE).await;
                }
            }
        })
    }

    /// The database an ARN (or a bare name) names.
    pub fn find(&self, arn: &str) -> Option<Arc<Db>> {
        self.all
            .iter()
            .find(|d| d.arn == arn || d.name == arn)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_idle_transaction_is_rolled_back_and_its_connection_freed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open("t", "arn".into(), &dir.path().join("t.sqlite"), None, None)
            .await
            .unwrap();
        db.execute("CREATE TABLE x (v INTEGER)", &[], None)
            .await
            .unwrap();
        let tx = db.begin().await.unwrap();
        db.execute("INSERT INTO x VALUES (1)", &[], Some(&tx))
            .await
            .unwrap();
        // Used just now: kept.
        assert_eq!(db.expire_idle(std::time::Duration::from_secs(60)).await, 0);
        assert_eq!(db.expire_idle(std::time::Duration::ZERO).await, 1);
        assert!(matches!(
            db.execute("SELECT 1", &[], Some(&tx)).await,
            Err(DbError::NoTransaction(_))
        ));
        let out = db
            .execute("SELECT count(*) FROM x", &[], None)
            .await
            .unwrap();
        assert_eq!(out.rows[0][0], Value::Long(0), "rolled back");
    }

    #[test]
    fn named_parameters_become_numbered_ones() {
        let (sql, names) = numbered(
            "SELECT * FROM t WHERE a = :a AND b = ':not' AND c = :c OR d = :a AND e::text = :c",
        );
        assert_eq!(
            sql,
            "SELECT * FROM t WHERE a = ?1 AND b = ':not' AND c = ?2 OR d = ?1 AND e::text = ?2"
        );
        assert_eq!(names, ["a", "c"]);
    }
}
