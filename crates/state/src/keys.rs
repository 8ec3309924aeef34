//! API keys and their usage: what survives a restart.
//!
//! [`KeyStore`] is the durable part (SQLite in the project's data
//! directory by default: [`SqliteKeyStore`]; PostgreSQL fits the same
//! trait). [`ApiKeys`] sits in front of it in memory, so a request pays a
//! hash lookup and a counter increment, never a disk write: usage is
//! written behind, every second and at shutdown (a crash loses at most the
//! last second's counts).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// An API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Short and stable, as AWS's key ids.
    pub id: String,
    pub name: String,
    pub value: String,
    pub enabled: bool,
    /// Seconds since the epoch.
    pub created: i64,
    /// Usage plans the key was added to at run time (plans in
    /// `stratus.toml` list their keys themselves).
    pub plans: Vec<String>,
    /// Declared in `stratus.toml` (and kept in step with it at start).
    pub from_config: bool,
}

/// Calls of one key under one plan on one UTC day (`YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub key_id: String,
    pub plan: String,
    pub day: String,
    pub calls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key store: {0}")]
    Db(#[from] sqlx::Error),
}

/// Where keys and usage are kept.
pub trait KeyStore: Send + Sync {
    fn keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, StoreError>>;
    /// Usage rows of `since` (a day) and after.
    fn usage<'a>(&'a self, since: &'a str) -> BoxFuture<'a, Result<Vec<UsageRow>, StoreError>>;
    /// Inserts or replaces a key (by id).
    fn put_key<'a>(&'a self, key: &'a KeyRecord) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Adds `calls` to each row's count.
    fn add_usage(&self, rows: Vec<UsageRow>) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// The tables; `IF NOT EXISTS` keeps opening an existing file harmless.
/// A change to them adds statements here (guarded by `PRAGMA user_version`).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    value TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL,
    created INTEGER NOT NULL,
    plans TEXT NOT NULL DEFAULT '',
    from_config INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS usage (
    key_id TEXT NOT NULL,
    plan TEXT NOT NULL,
    day TEXT NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (key_id, plan, day)
);
";

/// SQLite, in WAL mode: `keys.db` in the data directory.
pub struct SqliteKeyStore {
    pool: SqlitePool,
}

impl std::fmt::Debug for SqliteKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteKeyStore").finish_non_exhaustive()
    }
}

impl SqliteKeyStore {
    pub async fn open(path: &Path) -> Result<SqliteKeyStore, StoreError> {
        let pool = crate::sqlite_pool(path, 2).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(SqliteKeyStore { pool })
    }
}

impl KeyStore for SqliteKeyStore {
    fn keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, name, value, enabled, created, plans, from_config FROM api_keys ORDER BY created, name",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| KeyRecord {
                    id: r.get("id"),
                    name: r.get("name"),
                    value: r.get("value"),
                    enabled: r.get::<i64, _>("enabled") != 0,
                    created: r.get("created"),
                    plans: r
                        .get::<String, _>("plans")
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    from_config: r.get::<i64, _>("from_config") != 0,
                })
                .collect())
        })
    }

    fn usage<'a>(&'a self, since: &'a str) -> BoxFuture<'a, Result<Vec<UsageRow>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT key_id, plan, day, calls FROM usage WHERE day >= ? ORDER BY day, key_id, plan",
            )
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| UsageRow {
                    key_id: r.get("key_id"),
                    plan: r.get("plan"),
                    day: r.get("day"),
                    calls: r.get::<i64, _>("calls") as u64,
                })
                .collect())
        })
    }

    fn put_key<'a>(&'a self, k: &'a KeyRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT OR REPLACE INTO api_keys (id, name, value, enabled, created, plans, from_config) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&k.id)
            .bind(&k.name)
            .bind(&k.value)
            .bind(i64::from(k.enabled))
            .bind(k.created)
            .bind(k.plans.join(","))
            .bind(i64::from(k.from_config))
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn add_usage(&self, rows: Vec<UsageRow>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            for r in &rows {
                sqlx::query(
                    "INSERT INTO usage (key_id, plan, day, calls) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (key_id, plan, day) DO UPDATE SET calls = calls + excluded.calls",
                )
                .bind(&r.key_id)
                .bind(&r.plan)
                .bind(&r.day)
                .bind(r.calls as i64)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// A key as `stratus.toml` declares it.
#[derive(Debug, Clone)]
pub struct DeclaredKey {
    pub name: String,
    pub value: Option<String>,
    pub enabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("an API key named {0:?} exists")]
    NameTaken(String),
    #[error("another API key has that value")]
    ValueTaken,
    #[error("no API key named {0:?}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Usage counted since the last flush, and all counts of recent days.
#[derive(Default)]
struct Counts {
    /// (key id, plan) → day → calls (flushed and not).
    days: HashMap<(String, String), BTreeMap<String, u64>>,
    pending: HashMap<(String, String, String), u64>,
}

/// The keys, in memory, in front of a [`KeyStore`].
pub struct ApiKeys {
    store: Arc<dyn KeyStore>,
    keys: Mutex<Keys>,
    counts: Mutex<Counts>,
    /// One flush at a time, so counts reach the store in order.
    flushing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Keys {
    by_value: HashMap<String, Arc<KeyRecord>>,
    by_name: HashMap<String, Arc<KeyRecord>>,
}

impl Keys {
    fn put(&mut self, k: Arc<KeyRecord>) {
        if let Some(old) = self.by_name.insert(k.name.clone(), k.clone()) {
            self.by_value.remove(&old.value);
        }
        self.by_value.insert(k.value.clone(), k);
    }
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys").finish_non_exhaustive()
    }
}

/// How many days of usage are kept in memory (a month's quota and more).
const DAYS_KEPT: i64 = 40;

impl ApiKeys {
    /// Loads the store and brings it in step with `declared`: keys new in
    /// the file are created (a value generated when none is given), a
    /// changed value or `enabled` is applied, and a key that left the file
    /// is disabled.
    pub async fn open(
        store: Arc<dyn KeyStore>,
        declared: &[DeclaredKey],
    ) -> Result<ApiKeys, StoreError> {
        let mut keys = Keys::default();
        let stored = store.keys().await?;
        let mut by_name: HashMap<String, KeyRecord> =
            stored.into_iter().map(|k| (k.name.clone(), k)).collect();
        for d in declared {
            let want = match by_name.remove(&d.name) {
                Some(mut k) => {
                    if let Some(v) = &d.value {
                        k.value = v.clone();
                    }
                    k.enabled = d.enabled;
                    k.from_config = true;
                    k
                }
                None => KeyRecord {
                    id: new_id(),
                    name: d.name.clone(),
                    value: d.value.clone().unwrap_or_else(new_value),
                    enabled: d.enabled,
                    created: now_secs(),
                    plans: Vec::new(),
                    from_config: true,
                },
            };
            store.put_key(&want).await?;
            keys.put(Arc::new(want));
        }
        for (_, mut k) in by_name {
            if k.from_config && k.enabled {
                k.enabled = false;
                store.put_key(&k).await?;
            }
            keys.put(Arc::new(k));
        }
        let since = day_string(chrono::Utc::now() - chrono::Duration::days(DAYS_KEPT));
        let mut counts = Counts::default();
        for r in store.usage(&since).await? {
            *counts
                .days
                .entry((r.key_id, r.plan))
                .or_default()
                .entry(r.day)
                .or_default() += r.calls;
        }
        Ok(ApiKeys {
            store,
            keys: Mutex::new(keys),
            counts: Mutex::new(counts),
            flushing: tokio::sync::Mutex::new(()),
        })
    }

    /// The key with this value, enabled or not.
    pub fn find(&self, value: &str) -> Option<Arc<KeyRecord>> {
        self.keys
            .lock()
            .expect("keys lock")
            .by_value
            .get(value)
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<KeyRecord>> {
        let mut all: Vec<_> = self
            .keys
            .lock()
            .expect("keys lock")
            .by_name
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        all
    }

    pub async fn create(
        &self,
        name: &str,
        value: Option<String>,
        plans: Vec<String>,
    ) -> Result<Arc<KeyRecord>, KeyError> {
        let k = {
            let keys = self.keys.lock().expect("keys lock");
            if keys.by_name.contains_key(name) {
                return Err(KeyError::NameTaken(name.to_owned()));
            }
            let value = value.unwrap_or_else(new_value);
            if keys.by_value.contains_key(&value) {
                return Err(KeyError::ValueTaken);
            }
            KeyRecord {
                id: new_id(),
                name: name.to_owned(),
                value,
                enabled: true,
                created: now_secs(),
                plans,
                from_config: false,
            }
        };
        self.store.put_key(&k).await?;
        let k = Arc::new(k);
        self.keys.lock().expect("keys lock").put(k.clone());
        Ok(k)
    }

    /// Disables a key: it is refused from now on (its usage is kept).
    pub async fn revoke(&self, name: &str) -> Result<Arc<KeyRecord>, KeyError> {
        let mut k = self
            .keys
            .lock()
            .expect("keys lock")
            .by_name
            .get(name)
            .map(|k| (**k).clone())
            .ok_or_else(|| KeyError::Unknown(name.to_owned()))?;
        k.enabled = false;
        self.store.put_key(&k).await?;
        let k = Arc::new(k);
        self.keys.lock().expect("keys lock").put(k.clone());
        Ok(k)
    }

    /// Counts one call of `key` under `plan` today, unless the calls since
    /// `period_start` (a day) already reach `limit`: then false, and the
    /// call is not counted.
    pub fn count(&self, key_id: &str, plan: &str, limit: Option<(u64, &str)>) -> bool {
        let today = day_string(chrono::Utc::now());
        let mut c = self.counts.lock().expect("counts lock");
        let days = c
            .days
            .entry((key_id.to_owned(), plan.to_owned()))
            .or_default();
        if let Some((limit, start)) = limit {
            let used: u64 = days.range(start.to_owned()..).map(|(_, n)| n).sum();
            if used >= limit {
                return false;
            }
        }
        *days.entry(today.clone()).or_default() += 1;
        *c.pending
            .entry((key_id.to_owned(), plan.to_owned(), today))
            .or_default() += 1;
        true
    }

    /// Calls per key, plan and day, from `since` (a day) on.
    pub fn usage(&self, since: &str) -> Vec<UsageRow> {
        let c = self.counts.lock().expect("counts lock");
        let mut rows: Vec<UsageRow> = c
            .days
            .iter()
            .flat_map(|((key, plan), days)| {
                days.range(since.to_owned()..).map(|(day, n)| UsageRow {
                    key_id: key.clone(),
                    plan: plan.clone(),
                    day: day.clone(),
                    calls: *n,
                })
            })
            .collect();
        rows.sort_by(|a, b| (&a.day, &a.key_id, &a.plan).cmp(&(&b.day, &b.key_id, &b.plan)));
        rows
    }

    /// Writes the counts not yet in the store.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let _one = self.flushing.lock().await;
        let pending = std::mem::take(&mut self.counts.lock().expect("counts lock").pending);
        if pending.is_empty() {
            return Ok(());
        }
        let rows: Vec<UsageRow> = pending
            .iter()
            .map(|((key_id, plan, day), calls)| UsageRow {
                key_id: key_id.clone(),
                plan: plan.clone(),
                day: day.clone(),
                calls: *calls,
            })
            .collect();
        if let Err(e) = self.store.add_usage(rows).await {
            // Put them back for the next flush.
            let mut c = self.counts.lock().expect("counts lock");
            for (k, n) in pending {
                *c.pending.entry(k).or_default() += n;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Flushes every second until the returned task is aborted.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let keys = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = keys.flush().await {
                    tracing::warn!("API key usage not saved yet: {e}");
                }
            }
        })
    }
}

/// `YYYY-MM-DD`, UTC.
pub fn day_string(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Ten characters, as AWS's key ids.
fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    uuid::Uuid::new_v4().as_bytes()[..10]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Forty characters from 240 random bits.
fn new_value() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    a.as_bytes()
        .iter()
        .chain(b.as_bytes())
        .chain(&a.as_bytes()[..8])
        .take(40)
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open(dir: &Path, declared: &[DeclaredKey]) -> ApiKeys {
        let store = SqliteKeyStore::open(&dir.join("keys.db")).await.unwrap();
        ApiKeys::open(Arc::new(store), declared).await.unwrap()
    }

    #[tokio::test]
    async fn keys_and_usage_survive_a_reopen_and_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let declared = vec![
            DeclaredKey {
                name: "given".into(),
                value: Some("given-key-0123456789abcdef".into()),
                enabled: true,
            },
            DeclaredKey {
                name: "generated".into(),
                value: None,
                enabled: true,
            },
        ];
        let keys = open(dir.path(), &declared).await;
        let generated = keys
            .list()
            .iter()
            .find(|k| k.name == "generated")
            .unwrap()
            .value
            .clone();
        assert_eq!(generated.len(), 40);
        let made = keys
            .create("later", None, vec!["basic".into()])
            .await
            .unwrap();
        let given = keys.find("given-key-0123456789abcdef").unwrap();
        let today = day_string(chrono::Utc::now());
        assert!(keys.count(&given.id, "basic", Some((2, &today))));
        assert!(keys.count(&given.id, "basic", Some((2, &today))));
        assert!(!keys.count(&given.id, "basic", Some((2, &today))));
        keys.flush().await.unwrap();
        drop(keys);

        // The generated value is kept; the runtime key too; the quota's count.
        let keys = open(dir.path(), &declared[..1]).await;
        let names: Vec<(String, bool)> = keys
            .list()
            .iter()
            .map(|k| (k.name.clone(), k.enabled))
            .collect();
        assert!(names.contains(&("later".into(), true)));
        // A key that left the file is disabled.
        assert!(names.contains(&("generated".into(), false)));
        assert_eq!(keys.find(&generated).unwrap().name, "generated");
        assert_eq!(keys.find(&made.value).unwrap().plans, vec!["basic"]);
        assert!(!keys.count(&given.id, "basic", Some((2, &today))));
        let usage = keys.usage(&today);
        assert_eq!(usage.len(), 1);
        assert_eq!(usage[0].calls, 2);

        keys.revoke("later").await.unwrap();
        assert!(!keys.find(&made.value).unwrap().enabled);
        assert!(matches!(
            keys.create("later", None, vec![]).await,
            Err(KeyError::NameTaken(_))
        ));
    }
}
