//! State that outlives a request, each kind behind a small async trait
//! with an in-process implementation first, so that a Redis, PostgreSQL
//! or S3 implementation can be added for a fleet without touching the
//! callers. The pattern, for every store that comes next (rate-limit
//! counters, API keys and usage, objects):
//! - the trait names only what callers need, in owned values (nothing
//!   that lives in one process, such as a channel, crosses it);
//! - methods return boxed futures, so the trait stays object-safe
//!   (`Arc<dyn Trait>`) and an implementation may do I/O;
//! - `Memory…` is the in-process implementation, used by default and in
//!   tests.
//!
//! The stores: the WebSocket connection directory, rate-limit counters,
//! API keys and their usage (durable: SQLite), buckets and objects
//! (durable: files in the data directory).

pub mod connections;
pub mod databases;
pub mod keys;
pub mod objects;
pub mod ratelimit;

pub use connections::{ConnectionDirectory, ConnectionEntry, MemoryDirectory};
pub use keys::{ApiKeys, DeclaredKey, KeyRecord, KeyStore, SqliteKeyStore, UsageRow};
pub use ratelimit::{Admission, MemoryRateLimiter, Rate, RateLimiter, RedisRateLimiter};

/// How every SQLite store here opens its file: created if missing, in
/// WAL mode with a 5 s busy timeout.
pub(crate) fn sqlite_options(path: &std::path::Path) -> sqlx::sqlite::SqliteConnectOptions {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(5))
}

/// A pool on a SQLite file ([`sqlite_options`]).
pub(crate) async fn sqlite_pool(
    path: &std::path::Path,
    connections: u32,
) -> Result<sqlx::SqlitePool, sqlx::Error> {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(connections)
        .connect_with(sqlite_options(path))
        .await
}
