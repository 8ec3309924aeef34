//! Databases for functions: SQLite files in the data directory or
//! PostgreSQL servers, their migrations, and what the RDS Data API runs on
//! them — statements with named parameters, results as typed values, and
//! transactions held on one pooled connection each.
//!
//! What a Data API client may do is bounded here, since it is anyone who
//! reaches the admin listener: rows are streamed and the statement
//! stopped once its answer would pass the caller's [`Budget`] (never
//! fetched whole first); a statement runs at most its statement timeout
//! on either engine (SQLite's through a progress handler); and a SQLite
//! connection can open no other file (`ATTACH`, and `VACUUM` whose `INTO`
//! form writes anywhere, are refused), so Stratus's own stores in the
//! data directory stay out of reach.

mod rows;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::SqlitePool;
use sqlx::{Column, Postgres, Sqlite, TypeInfo};

/// A typed value, as the Data API's `Field`s carry them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    String(String),
    Blob(Vec<u8>),
    /// An exact number (NUMERIC/DECIMAL), as text.
    Decimal(String),
    /// An array, with the `ArrayValue` member its elements go in
    /// (`longValues`, `doubleValues`, `stringValues`, `booleanValues`,
    /// `arrayValues`).
    Array(&'static str, Vec<Value>),
}

/// A parameter's `typeHint`: how a string is sent to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    Json,
    Uuid,
    Timestamp,
    Date,
    Time,
    Decimal,
}

impl Hint {
    pub fn parse(s: &str) -> Option<Hint> {
        Some(match s {
            "JSON" => Hint::Json,
            "UUID" => Hint::Uuid,
            "TIMESTAMP" => Hint::Timestamp,
            "DATE" => Hint::Date,
            "TIME" => Hint::Time,
            "DECIMAL" => Hint::Decimal,
            _ => return None,
        })
    }

    /// PostgreSQL's cast for it.
    fn pg_type(self) -> &'static str {
        match self {
            Hint::Json => "json",
            Hint::Uuid => "uuid",
            Hint::Timestamp => "timestamp",
            Hint::Date => "date",
            Hint::Time => "time",
            Hint::Decimal => "numeric",
        }
    }
}

/// A named parameter of a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub value: Value,
    pub hint: Option<Hint>,
}

impl Param {
    pub fn new(name: &str, value: Value) -> Param {
        Param {
            name: name.to_owned(),
            value,
            hint: None,
        }
    }
}

/// What a statement gave back.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Column names and the database's type names.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Value>>,
    pub updated: u64,
    /// SQLite's rowid of an INSERT (PostgreSQL has none: use RETURNING).
    pub generated: Option<i64>,
}

impl Outcome {
    /// A statement that returned rows but is not a query (`INSERT ...
    /// RETURNING`) updated as many.
    fn count_rows(&mut self, sql: &str) {
        if !is_query(sql) {
            self.updated = self.rows.len() as u64;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database refused the statement: its own message.
    #[error("{0}")]
    Statement(String),
    /// The statement ran past the database's statement timeout.
    #[error("{0}")]
    Timeout(String),
    #[error("no transaction {0:?}")]
    NoTransaction(String),
    #[error("{0}")]
    TooManyTransactions(String),
    #[error("{0}")]
    Setup(String),
    /// The answer would pass the caller's budget; the statement was
    /// stopped.
    #[error("Database returned more than the allowed response size limit")]
    TooLarge,
}

/// How large an answer may grow, in the bytes of its JSON: rows are read
/// one at a time and the statement stopped once they pass it. Counted
/// from below (a value's content, plus what the answer writes around
/// every value at the least), so the caller's exact check, made on the
/// answer it writes, is never stricter than what was fetched.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub bytes: usize,
    /// Bytes the answer writes around each value, at the least.
    pub per_value: usize,
    /// Each value also carries its column's name (JSON records).
    pub named: bool,
}

impl Budget {
    /// No bound (statements Stratus runs itself).
    pub const UNBOUNDED: Budget = Budget {
        bytes: usize::MAX,
        per_value: 0,
        named: false,
    };

    fn cost(&self, columns: &[(String, String)], row: &[Value]) -> usize {
        row.iter()
            .zip(columns)
            .map(|(v, (name, _))| {
                self.per_value + value_len(v) + if self.named { name.len() } else { 0 }
            })
            .sum()
    }
}

/// The fewest bytes a value takes in JSON.
fn value_len(v: &Value) -> usize {
    match v {
        Value::String(s) | Value::Decimal(s) => s.len(),
        Value::Blob(b) => b.len() / 3 * 4,
        Value::Array(_, items) => items.iter().map(|x| value_len(x) + 1).sum::<usize>() + 1,
        _ => 1,
    }
}

/// Where a database lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A SQLite file (absolute), created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL server by URL (`postgres://...`).
    Postgres(String),
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// The same code on either engine's connection (each arm compiles on its
/// own type; sqlx's `Any` driver would lose the types the Data API maps).
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
        }
    };
}

impl Conn {
    fn close_on_drop(&mut self) {
        on_conn!(self, c => c.close_on_drop())
    }
}

/// No `ATTACH` on this connection (SQLite's `SQLITE_LIMIT_ATTACHED` set to
/// 0): a statement can reach no file but the database's own. `VACUUM`
/// attaches its copy the same way, so its `INTO 'any/path'` form (and the
/// plain one) are refused too. sqlx offers no safe call for a limit.
#[allow(unsafe_code)]
fn forbid_other_files(handle: &mut sqlx::sqlite::LockedSqliteHandle<'_>) {
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the open connection sqlx hands out locked (no other
    // thread uses it meanwhile); `sqlite3_limit` only sets a number on it.
    unsafe {
        libsqlite3_sys::sqlite3_limit(db, libsqlite3_sys::SQLITE_LIMIT_ATTACHED, 0);
    }
}

impl Pool {
    async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Conn::Sqlite(p.acquire().await?),
            Pool::Postgres(p) => Conn::Postgres(p.acquire().await?),
        })
    }
}

impl Conn {
    /// Runs SQL text as it is, several statements at once (a plain `&str`
    /// has no arguments: the simple query protocol).
    async fn raw(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        on_conn!(self, c => sqlx::Executor::execute(c.as_mut(), sql).await.map(|_| ()))
    }

    async fn applied(&mut self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        const SQL: &str = "SELECT name, applied_at FROM _stratus_migrations ORDER BY name";
        on_conn!(self, c => sqlx::query_as(SQL).fetch_all(c.as_mut()).await)
    }

    async fn record(&mut self, file: &str) -> Result<(), sqlx::Error> {
        const SQL: &str = "INSERT INTO _stratus_migrations (name, applied_at) VALUES ($1, $2)";
        let now = chrono::Utc::now().timestamp();
        on_conn!(self, c => sqlx::query(SQL).bind(file).bind(now).execute(c.as_mut()).await.map(|_| ()))
    }
}

type Tx = Arc<tokio::sync::Mutex<Conn>>;

/// One database.
pub struct Db {
    pub name: String,
    pub arn: String,
    /// What drivers open: the SQLite file's absolute path, or the
    /// PostgreSQL URL.
    pub url: String,
    pub engine: &'static str,
    pool: Pool,
    statement_timeout: std::time::Duration,
    /// Open transactions and when each was last used.
    transactions: Mutex<HashMap<String, (Tx, tokio::time::Instant)>>,
    /// The migrations applied (as of the last `migrate`).
    applied: Mutex<Vec<String>>,
    /// Statements run, and how many the database refused.
    pub statements: AtomicU64,
    pub errors: AtomicU64,
}

/// A transaction unused this long is rolled back, as the Data API's are
/// (3 minutes), and its connection returned to the pool.
pub const TRANSACTION_IDLE: std::time::Duration = std::time::Duration::from_secs(180);

/// Connections per database; open transactions may hold all but two, so
/// statements outside them always find one.
pub const POOL_SIZE: u32 = 10;
pub const MAX_TRANSACTIONS: usize = 8;

/// The Data API's statement timeout (45 s): PostgreSQL cancels the
/// statement, SQLite's progress handler interrupts it.
pub const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

/// Virtual-machine steps between two looks at the clock on SQLite.
const PROGRESS_STEPS: i32 = 10_000;

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("name", &self.name)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// `:name` placeholders in `sql` replaced by what `to` gives for each
/// name; quoted text, quoted identifiers and `::` casts left alone.
pub fn replace_names(
    sql: &str,
    mut to: impl FnMut(&str) -> Result<String, DbError>,
) -> Result<String, DbError> {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        if let Some(q) = quote {
            out.push(ch);
            if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '\'' | '"' => {
                quote = Some(ch);
                out.push(ch);
            }
            ':' if chars.peek().is_some_and(|(_, c)| *c == ':') => {
                chars.next();
                out.push_str("::");
            }
            ':' if chars
                .peek()
                .is_some_and(|(_, c)| c.is_ascii_alphabetic() || *c == '_') =>
            {
                let start = i + 1;
                let mut end = start;
                while let Some((j, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || *c == '_' {
                        end = j + 1;
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push_str(&to(&sql[start..end])?);
            }
            _ => out.push(ch),
        }
    }
    Ok(out)
}

/// The statement as the engine runs it (`$1`, `$2`... in order of first
/// use; NULLs written as `NULL`, so PostgreSQL types them from their
/// place; PostgreSQL casts for the type hints) and the values to bind.
fn prepare<'p>(
    sql: &str,
    params: &'p [Param],
    postgres: bool,
) -> Result<(String, Vec<&'p Value>), DbError> {
    let mut numbers: HashMap<&str, usize> = HashMap::new();
    let mut binds: Vec<&Value> = Vec::new();
    let sql = replace_names(sql, |name| {
        let p = params
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| DbError::Statement(format!("no value for parameter :{name}")))?;
        if p.value == Value::Null {
            return Ok("NULL".to_owned());
        }
        let n = match numbers.get(p.name.as_str()) {
            Some(n) => *n,
            None => {
                binds.push(&p.value);
                numbers.insert(&p.name, binds.len());
                binds.len()
            }
        };
        if !postgres {
            return Ok(format!("${n}"));
        }
        // Each placeholder typed as the value is sent (PostgreSQL would
        // otherwise take the column's type and misread the bytes), then
        // cast as the hint says.
        Ok(match p.hint {
            Some(h) => format!("(${n}::{})::{}", pg_param_type(&p.value), h.pg_type()),
            None => format!("${n}::{}", pg_param_type(&p.value)),
        })
    })?;
    Ok((sql, binds))
}

/// The PostgreSQL type a value is bound as.
fn pg_param_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "text",
        Value::Bool(_) => "bool",
        Value::Long(_) => "int8",
        Value::Double(_) => "float8",
        Value::String(_) | Value::Decimal(_) => "text",
        Value::Blob(_) => "bytea",
        Value::Array(_, items) => match items.first() {
            Some(Value::Long(_)) => "int8[]",
            Some(Value::Double(_)) => "float8[]",
            Some(Value::Bool(_)) => "bool[]",
            _ => "text[]",
        },
    }
}

/// The database's own message; PostgreSQL's cancelled statements are
/// timeouts.
fn refused(e: &sqlx::Error) -> DbError {
    match e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("57014") => {
            DbError::Timeout(d.message().to_owned())
        }
        sqlx::Error::Database(d) => DbError::Statement(d.message().to_owned()),
        other => DbError::Statement(other.to_string()),
    }
}

fn setup(e: impl std::fmt::Display) -> DbError {
    DbError::Setup(e.to_string())
}

/// Whether a statement that returns rows also counts updated ones
/// (`INSERT ... RETURNING`), as opposed to a query.
fn is_query(sql: &str) -> bool {
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        word.as_str(),
        "select" | "with" | "values" | "show" | "explain" | "table" | "pragma"
    )
}

impl Db {
    /// Opens the database (creating a SQLite file), applies the
    /// migrations not yet applied, in file-name order, each in a
    /// transaction; then the seed.
    pub async fn open(
        name: &str,
        arn: String,
        location: &Location,
        migrations: Option<&Path>,
        seed: Option<&Path>,
    ) -> Result<Db, DbError> {
        let db = Db::connect(name, arn, location, STATEMENT_TIMEOUT).await?;
        db.migrate(migrations).await?;
        if let Some(seed) = seed {
            db.seed(seed).await?;
        }
        Ok(db)
    }

    /// Runs a seed file's SQL.
    pub async fn seed(&self, seed: &Path) -> Result<(), DbError> {
        let sql = std::fs::read_to_string(seed)
            .map_err(|e| DbError::Setup(format!("{}: {e}", seed.display())))?;
        let mut conn = self.pool.acquire().await.map_err(setup)?;
        conn.raw(&sql).await.map_err(|e| {
            DbError::Setup(format!(
                "seed {} of database {:?} failed: {}",
                seed.display(),
                self.name,
                refused(&e)
            ))
        })
    }

    /// Opens the database (creating a SQLite file) and nothing more;
    /// statements are stopped after `statement_timeout`.
    pub async fn connect(
        name: &str,
        arn: String,
        location: &Location,
        statement_timeout: std::time::Duration,
    ) -> Result<Db, DbError> {
        let (pool, url, engine) = match location {
            Location::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(setup)?;
                }
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            forbid_other_files(&mut conn.lock_handle().await?);
                            Ok(())
                        })
                    })
                    .connect_with(crate::sqlite_options(path))
                    .await
                    .map_err(|e| DbError::Setup(format!("cannot open {}: {e}", path.display())))?;
                (Pool::Sqlite(pool), path.display().to_string(), "sqlite")
            }
            Location::Postgres(url) => {
                let options: PgConnectOptions = url
                    .parse()
                    .map_err(|e| DbError::Setup(format!("database {name:?}: bad url: {e}")))?;
                let options = options.options([(
                    "statement_timeout",
                    statement_timeout.as_millis().to_string(),
                )]);
                let pool = PgPoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .acquire_timeout(std::time::Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(|e| {
                        DbError::Setup(format!(
                            "database {name:?}: cannot connect to PostgreSQL: {e}"
                        ))
                    })?;
                (Pool::Postgres(pool), url.clone(), "postgres")
            }
        };
        Ok(Db {
            name: name.to_owned(),
            arn,
            url,
            engine,
            pool,
            statement_timeout,
            transactions: Mutex::default(),
            applied: Mutex::default(),
            statements: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// Applies the migrations of `dir` not applied yet; the names applied.
    pub async fn migrate(&self, dir: Option<&Path>) -> Result<Vec<String>, DbError> {
        let mut conn = self.pool.acquire().await.map_err(setup)?;
        conn.raw(
            "CREATE TABLE IF NOT EXISTS _stratus_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(setup)?;
        let Some(dir) = dir else {
            return Ok(Vec::new());
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| DbError::Setup(format!("{}: {e}", dir.display())))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        let done: Vec<String> = conn
            .applied()
            .await
            .map_err(setup)?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut applied = Vec::new();
        for f in files {
            let file = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if done.contains(&file) {
                continue;
            }
            let sql = std::fs::read_to_string(&f)
                .map_err(|e| DbError::Setup(format!("{}: {e}", f.display())))?;
            let name = &self.name;
            conn.raw("BEGIN").await.map_err(setup)?;
            let ran = match conn.raw(&sql).await {
                Ok(()) => conn.record(&file).await,
                Err(e) => Err(e),
            };
            if let Err(e) = ran {
                let _ = conn.raw("ROLLBACK").await;
                return Err(DbError::Setup(format!(
                    "migration {} of database {name:?} failed: {}",
                    f.display(),
                    refused(&e)
                )));
            }
            conn.raw("COMMIT").await.map_err(setup)?;
            tracing::info!("database {name}: migration {file} applied");
            applied.push(file);
        }
        let mut all = done;
        all.extend(applied.iter().cloned());
        *self.applied.lock().expect("applied lock") = all;
        Ok(applied)
    }

    /// The migrations applied as of the last `migrate`, in order.
    pub fn migrations(&self) -> Vec<String> {
        self.applied.lock().expect("applied lock").clone()
    }

    /// The migrations applied, with when (Unix seconds).
    pub async fn applied_migrations(&self) -> Result<Vec<(String, i64)>, DbError> {
        let mut conn = self.pool.acquire().await.map_err(setup)?;
        conn.applied().await.map_err(|e| refused(&e))
    }

    /// Connections open and idle in the pool, and open transactions.
    pub fn pool_use(&self) -> (u32, usize, usize) {
        let (size, idle) = match &self.pool {
            Pool::Sqlite(p) => (p.size(), p.num_idle()),
            Pool::Postgres(p) => (p.size(), p.num_idle()),
        };
        (
            size,
            idle,
            self.transactions.lock().expect("transactions lock").len(),
        )
    }

    /// Runs one statement, with `params` by name, in a transaction or not;
    /// its rows within `budget`.
    pub async fn execute(
        &self,
        sql: &str,
        params: &[Param],
        transaction: Option<&str>,
        budget: Budget,
    ) -> Result<Outcome, DbError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let limits = (budget, self.statement_timeout);
        let out = match transaction {
            Some(id) => {
                let tx = self.transaction(id)?;
                let mut conn = tx.lock().await;
                run(&mut conn, sql, params, limits).await
            }
            None => {
                let mut conn = self.pool.acquire().await.map_err(|e| refused(&e))?;
                let out = run(&mut conn, sql, params, limits).await;
                if matches!(out, Err(DbError::TooLarge)) {
                    // PostgreSQL is still sending the rows: a connection
                    // used again would first read them all to the end.
                    conn.close_on_drop();
                }
                out
            }
        };
        if out.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        out
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

    fn too_many(&self) -> DbError {
        DbError::TooManyTransactions(format!(
            "database {:?} has {MAX_TRANSACTIONS} open transactions, its most: commit or roll one back",
            self.name
        ))
    }

    /// Starts a transaction on a connection of its own; its id.
    pub async fn begin(&self) -> Result<String, DbError> {
        if self.transactions.lock().expect("transactions lock").len() >= MAX_TRANSACTIONS {
            return Err(self.too_many());
        }
        let mut conn = self.pool.acquire().await.map_err(|e| refused(&e))?;
        conn.raw("BEGIN").await.map_err(|e| refused(&e))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let conn = {
            let mut all = self.transactions.lock().expect("transactions lock");
            if all.len() < MAX_TRANSACTIONS {
                all.insert(
                    id.clone(),
                    (
                        Arc::new(tokio::sync::Mutex::new(conn)),
                        tokio::time::Instant::now(),
                    ),
                );
                None
            } else {
                Some(conn)
            }
        };
        if let Some(mut conn) = conn {
            // Another one began meanwhile: this BEGIN is undone before the
            // connection goes back to the pool.
            let _ = conn.raw("ROLLBACK").await;
            return Err(self.too_many());
        }
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
        conn.raw(if commit { "COMMIT" } else { "ROLLBACK" })
            .await
            .map_err(|e| refused(&e))
    }
}

/// Binds each value with the type the engine takes it as.
macro_rules! bind_all {
    ($q:expr, $values:expr, $arrays:expr) => {{
        let mut q = $q;
        for v in $values {
            q = match v {
                Value::Null => q.bind(None::<String>),
                Value::Bool(b) => q.bind(*b),
                Value::Long(n) => q.bind(*n),
                Value::Double(d) => q.bind(*d),
                Value::String(s) | Value::Decimal(s) => q.bind(s.as_str()),
                Value::Blob(b) => q.bind(b.as_slice()),
                Value::Array(_, items) => $arrays(q, items)?,
            };
        }
        q
    }};
}

/// Reads the rows of a query one at a time into `out`, stopping (which
/// drops the stream, and so ends the statement) once they pass `budget`.
macro_rules! fetch_within {
    ($q:expr, $conn:expr, $out:expr, $budget:expr, $decode:path) => {{
        use futures_util::TryStreamExt as _;
        let mut rows = $q.fetch($conn);
        let mut spent = 0usize;
        while let Some(row) = rows.try_next().await.map_err(|e| refused(&e))? {
            let values = $decode(&row)?;
            spent = spent.saturating_add($budget.cost(&$out.columns, &values));
            if spent > $budget.bytes {
                return Err(DbError::TooLarge);
            }
            $out.rows.push(values);
        }
    }};
}

type Limits = (Budget, std::time::Duration);

async fn run(
    conn: &mut Conn,
    sql: &str,
    params: &[Param],
    (budget, timeout): Limits,
) -> Result<Outcome, DbError> {
    match conn {
        Conn::Sqlite(c) => {
            // SQLite has no statement timeout of its own: a progress handler
            // interrupts the statement once the deadline passes. It runs on
            // sqlx's worker thread, outside the runtime: std's clock.
            #[allow(clippy::disallowed_types)]
            let deadline = std::time::Instant::now() + timeout;
            #[allow(clippy::disallowed_types)]
            c.lock_handle()
                .await
                .map_err(|e| refused(&e))?
                .set_progress_handler(PROGRESS_STEPS, move || std::time::Instant::now() < deadline);
            let out = run_sqlite(c, sql, params, budget).await;
            if let Ok(mut h) = c.lock_handle().await {
                h.remove_progress_handler();
            }
            #[allow(clippy::disallowed_types)]
            let late = std::time::Instant::now() >= deadline;
            match out {
                Err(DbError::Statement(_)) if late => Err(DbError::Timeout(format!(
                    "the statement ran past the statement timeout ({} s) and was stopped",
                    timeout.as_secs()
                ))),
                other => other,
            }
        }
        Conn::Postgres(c) => {
            let (sql, values) = prepare(sql, params, true)?;
            let q = bind_all!(sqlx::query::<Postgres>(&sql), values, pg_array);
            let desc = sqlx::Executor::describe(&mut **c, &sql)
                .await
                .map_err(|e| refused(&e))?;
            let columns = desc
                .columns()
                .iter()
                .map(|c| (c.name().to_owned(), pg_type_name(c.type_info().name())))
                .collect();
            let mut out = Outcome {
                columns,
                ..Outcome::default()
            };
            if out.columns.is_empty() {
                out.updated = q
                    .execute(c.as_mut())
                    .await
                    .map_err(|e| refused(&e))?
                    .rows_affected();
            } else {
                fetch_within!(q, c.as_mut(), out, budget, rows::postgres);
                out.count_rows(&sql);
            }
            Ok(out)
        }
    }
}

async fn run_sqlite(
    c: &mut PoolConnection<Sqlite>,
    sql: &str,
    params: &[Param],
    budget: Budget,
) -> Result<Outcome, DbError> {
    let (sql, values) = prepare(sql, params, false)?;
    let q = bind_all!(
        sqlx::query::<Sqlite>(&sql),
        values,
        |_, _| Err::<_, DbError>(DbError::Statement(
            "arrays are parameters on PostgreSQL only".into()
        ))
    );
    let desc = sqlx::Executor::describe(&mut **c, &sql)
        .await
        .map_err(|e| refused(&e))?;
    let columns = desc
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
        .collect();
    let mut out = Outcome {
        columns,
        ..Outcome::default()
    };
    if out.columns.is_empty() {
        let done = q.execute(c.as_mut()).await.map_err(|e| refused(&e))?;
        out.updated = done.rows_affected();
        let is_insert = sql
            .trim_start()
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("insert"));
        if is_insert && done.rows_affected() > 0 {
            out.generated = Some(done.last_insert_rowid());
        }
    } else {
        fetch_within!(q, c.as_mut(), out, budget, rows::sqlite);
        out.count_rows(&sql);
    }
    Ok(out)
}

/// PostgreSQL's own (JDBC's) spelling: `int4`, arrays as `_int4`.
fn pg_type_name(sqlx_name: &str) -> String {
    match sqlx_name.strip_suffix("[]") {
        Some(base) => format!("_{}", base.to_ascii_lowercase()),
        None => sqlx_name.to_ascii_lowercase(),
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// An `arrayValue` parameter bound as a PostgreSQL array of its kind.
fn pg_array<'q>(q: PgQuery<'q>, items: &'q [Value]) -> Result<PgQuery<'q>, DbError> {
    fn all<T>(items: &[Value], f: impl Fn(&Value) -> Option<T>) -> Result<Vec<T>, DbError> {
        items
            .iter()
            .map(|v| {
                f(v).ok_or_else(|| {
                    DbError::Statement("an array parameter's values are all of one kind".into())
                })
            })
            .collect()
    }
    Ok(match items.first() {
        None => q.bind(Vec::<String>::new()),
        Some(Value::Long(_)) => q.bind(all(items, |v| match v {
            Value::Long(n) => Some(*n),
            _ => None,
        })?),
        Some(Value::Double(_)) => q.bind(all(items, |v| match v {
            Value::Double(d) => Some(*d),
            _ => None,
        })?),
        Some(Value::Bool(_)) => q.bind(all(items, |v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        })?),
        Some(Value::String(_)) => q.bind(all(items, |v| match v {
            Value::String(s) => Some(s.clone()),
            _ => None,
        })?),
        Some(_) => {
            return Err(DbError::Statement(
                "array parameters of arrays are not supported".into(),
            ))
        }
    })
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
        let location = Location::Sqlite(dir.path().join("t.sqlite"));
        let db = Db::open("t", "arn".into(), &location, None, None)
            .await
            .unwrap();
        db.execute("CREATE TABLE x (v INTEGER)", &[], None, Budget::UNBOUNDED)
            .await
            .unwrap();
        let tx = db.begin().await.unwrap();
        db.execute(
            "INSERT INTO x VALUES (1)",
            &[],
            Some(&tx),
            Budget::UNBOUNDED,
        )
        .await
        .unwrap();
        // Used just now: kept.
        assert_eq!(db.expire_idle(std::time::Duration::from_secs(60)).await, 0);
        assert_eq!(db.expire_idle(std::time::Duration::ZERO).await, 1);
        assert!(matches!(
            db.execute("SELECT 1", &[], Some(&tx), Budget::UNBOUNDED)
                .await,
            Err(DbError::NoTransaction(_))
        ));
        let out = db
            .execute("SELECT count(*) FROM x", &[], None, Budget::UNBOUNDED)
            .await
            .unwrap();
        assert_eq!(out.rows[0][0], Value::Long(0), "rolled back");
    }

    async fn sqlite(dir: &Path, timeout: std::time::Duration) -> Db {
        let location = Location::Sqlite(dir.join("t.sqlite"));
        Db::connect("t", "arn".into(), &location, timeout)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_sqlite_statement_can_open_no_other_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(dir.path(), STATEMENT_TIMEOUT).await;
        let other = dir.path().join("other.db");
        for sql in [
            format!("ATTACH DATABASE '{}' AS x", other.display()),
            format!("VACUUM INTO '{}'", other.display()),
        ] {
            let e = db.execute(&sql, &[], None, Budget::UNBOUNDED).await;
            assert!(
                matches!(&e, Err(DbError::Statement(m)) if m.contains("too many attached")),
                "{sql}: {e:?}"
            );
        }
        assert!(!other.exists(), "no file was written");
    }

    #[tokio::test]
    async fn rows_past_the_budget_stop_the_statement() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(dir.path(), STATEMENT_TIMEOUT).await;
        let budget = Budget {
            bytes: 1000,
            per_value: 15,
            named: false,
        };
        let endless =
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c";
        assert!(matches!(
            db.execute(endless, &[], None, budget).await,
            Err(DbError::TooLarge)
        ));
        let small = db
            .execute("SELECT 1, 'two'", &[], None, budget)
            .await
            .unwrap();
        assert_eq!(small.rows.len(), 1);
    }

    #[tokio::test]
    async fn a_sqlite_statement_past_its_timeout_is_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(dir.path(), std::time::Duration::from_secs(1)).await;
        let endless =
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";
        let e = db.execute(endless, &[], None, Budget::UNBOUNDED).await;
        assert!(matches!(&e, Err(DbError::Timeout(_))), "{e:?}");
        // The next statement on the same pool runs normally.
        let out = db
            .execute("SELECT 1", &[], None, Budget::UNBOUNDED)
            .await
            .unwrap();
        assert_eq!(out.rows[0][0], Value::Long(1));
    }

    #[test]
    fn named_parameters_become_numbered_ones() {
        let params = [
            Param::new("a", Value::Long(1)),
            Param::new("c", Value::String("x".into())),
            Param {
                hint: Some(Hint::Date),
                ..Param::new("d", Value::String("2024-01-02".into()))
            },
            Param::new("n", Value::Null),
        ];
        let sql = "SELECT * FROM t WHERE a = :a AND b = ':not' AND c = :c OR d = :a AND e::text = :c AND f = :n AND g = :d AND \"q:x\" = 1";
        let (pg, values) = prepare(sql, &params, true).unwrap();
        assert_eq!(
            pg,
            "SELECT * FROM t WHERE a = $1::int8 AND b = ':not' AND c = $2::text OR d = $1::int8 AND e::text = $2::text AND f = NULL AND g = ($3::text)::date AND \"q:x\" = 1"
        );
        assert_eq!(
            values,
            [&params[0].value, &params[1].value, &params[2].value]
        );
        let (lite, _) = prepare(sql, &params, false).unwrap();
        assert!(lite.contains("g = $3 AND"), "{lite}");
        assert!(matches!(
            prepare("SELECT :missing", &params, false),
            Err(DbError::Statement(m)) if m == "no value for parameter :missing"
        ));
    }
}
