//! Rate-limit counters: one token bucket per key (the server, a stage, a
//! route; later an API key's usage plan), each with its own rate and burst.
//!
//! The algorithm is GCRA (the generic cell rate algorithm): a bucket is one
//! number, its theoretical arrival time (TAT), and admitting a request is
//! one compare and one store. That is why it is used rather than a counter
//! per window or a bucket refilled by a timer: a Redis implementation is
//! one short Lua script (`GET` the TAT, compare with `TIME`, `SET` it with
//! an expiry), atomic by construction, and `gcra` below is its reference.
//! `governor` implements GCRA too, but one limiter holds one quota for all
//! its keys (its issue #193) while here every key carries its own, and it
//! cannot keep its state outside the process.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

/// A bucket's size and refill: `per_second` requests a second on average,
/// up to `burst` at once. Either at 0 admits nothing (as on API Gateway).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

/// What a bucket said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// There was a token: the request goes on.
    Admitted,
    /// The bucket is empty: 429.
    Refused,
    /// The buckets cannot be reached (a shared store is away): nothing is
    /// let through unchecked; 503.
    Unavailable,
}

/// Takes tokens from named buckets.
pub trait RateLimiter: Send + Sync {
    /// Takes one request's token from `key`'s bucket.
    fn admit<'a>(&'a self, key: &'a str, rate: Rate) -> BoxFuture<'a, Admission>;
}

/// GCRA on nanoseconds: the bucket's TAT after admitting a request at
/// `now`, or `None` when it must be refused (the TAT is then unchanged).
pub fn gcra(tat: u64, now: u64, rate: Rate) -> Option<u64> {
    if rate.burst == 0 || rate.per_second <= 0.0 {
        return None;
    }
    // One request's worth of time, and how far ahead of now the TAT may
    // run: `burst - 1` requests' worth.
    let interval = (1e9 / rate.per_second).min(u64::MAX as f64 / 4.0) as u64;
    let tolerance = interval.saturating_mul(u64::from(rate.burst) - 1);
    let start = tat.max(now);
    if start - now > tolerance {
        return None;
    }
    Some(start.saturating_add(interval))
}

/// In-process buckets: a TAT per key, behind one lock held for a compare
/// and a store. Keys come from the configuration (and, later, API keys),
/// so the map stays as small as the project.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    epoch: Instant,
    tats: Mutex<HashMap<String, u64>>,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        MemoryRateLimiter {
            epoch: Instant::now(),
            tats: Mutex::new(HashMap::new()),
        }
    }
}

impl MemoryRateLimiter {
    /// Admits or refuses now, without a future (the in-process path).
    pub fn admit_now(&self, key: &str, rate: Rate) -> bool {
        let now = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_nanos() as u64;
        let mut tats = self.tats.lock().expect("rate limiter lock");
        let tat = tats.get(key).copied().unwrap_or(0);
        match gcra(tat, now, rate) {
            Some(next) => {
                match tats.get_mut(key) {
                    Some(t) => *t = next,
                    None => {
                        tats.insert(key.to_owned(), next);
                    }
                }
                true
            }
            None => false,
        }
    }
}

impl RateLimiter for MemoryRateLimiter {
    fn admit<'a>(&'a self, key: &'a str, rate: Rate) -> BoxFuture<'a, Admission> {
        let admitted = if self.admit_now(key, rate) {
            Admission::Admitted
        } else {
            Admission::Refused
        };
        Box::pin(async move { admitted })
    }
}

/// GCRA as one atomic Redis script, on Redis's own clock, so that every
/// node of a fleet takes from the same buckets: a route's `rate`/`burst`
/// hold for the fleet, not per node. The TAT is kept in microseconds (a
/// Lua number holds them exactly) and expires once the bucket is full
/// again. When Redis cannot be reached the answer is `Unavailable` (503):
/// nothing is let through that a throttle would have refused.
pub struct RedisRateLimiter {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    prefix: String,
}

const GCRA_SCRIPT: &str = r"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local start = math.max(tat, now)
if start - now > tolerance then
  return 0
end
local new = start + interval
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1000)
return 1
";

impl RedisRateLimiter {
    /// Connects to `url` (`redis://host:port/db`); keys go under `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisRateLimiter, String> {
        let client = redis::Client::open(url).map_err(|e| format!("{url}: {e}"))?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| format!("cannot reach Redis at {url}: {e}"))?;
        Ok(RedisRateLimiter {
            conn,
            script: redis::Script::new(GCRA_SCRIPT),
            prefix: prefix.to_owned(),
        })
    }
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RateLimiter for RedisRateLimiter {
    fn admit<'a>(&'a self, key: &'a str, rate: Rate) -> BoxFuture<'a, Admission> {
        Box::pin(async move {
            if rate.burst == 0 || rate.per_second <= 0.0 {
                return Admission::Refused;
            }
            let interval = (1e6 / rate.per_second).clamp(1.0, 1e15) as u64;
            let tolerance = interval.saturating_mul(u64::from(rate.burst) - 1);
            let mut conn = self.conn.clone();
            let answer: redis::RedisResult<i64> = self
                .script
                .key(format!("{}rl:{key}", self.prefix))
                .arg(interval)
                .arg(tolerance)
                .invoke_async(&mut conn)
                .await;
            match answer {
                Ok(1) => Admission::Admitted,
                Ok(_) => Admission::Refused,
                Err(e) => {
                    tracing::warn!("the shared rate limiter (Redis) is unreachable: {e}");
                    Admission::Unavailable
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_full_bucket_admits_burst_then_refills_at_rate() {
        let rate = Rate {
            per_second: 10.0,
            burst: 5,
        };
        let mut tat = 0;
        let now = 100 * SECOND;
        for i in 0..5 {
            tat = gcra(tat, now, rate).unwrap_or_else(|| panic!("request {i} of the burst"));
        }
        assert_eq!(gcra(tat, now, rate), None, "the 6th at once");
        // One token back every 100 ms.
        assert_eq!(gcra(tat, now + SECOND / 10 - 1, rate), None);
        let tat = gcra(tat, now + SECOND / 10, rate).expect("refilled");
        assert_eq!(gcra(tat, now + SECOND / 10, rate), None);
        // After a long pause, the whole burst again (and no more).
        let later = now + 10 * SECOND;
        let mut t = tat;
        for _ in 0..5 {
            t = gcra(t, later, rate).unwrap();
        }
        assert_eq!(gcra(t, later, rate), None);
    }

    #[test]
    fn zero_admits_nothing() {
        for rate in [
            Rate {
                per_second: 0.0,
                burst: 10,
            },
            Rate {
                per_second: 10.0,
                burst: 0,
            },
        ] {
            assert_eq!(gcra(0, SECOND, rate), None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keys_have_their_own_buckets_and_rates() {
        let l = MemoryRateLimiter::default();
        let small = Rate {
            per_second: 1.0,
            burst: 2,
        };
        let big = Rate {
            per_second: 1.0,
            burst: 3,
        };
        let admitted = |key, rate| (0..10).filter(|_| l.admit_now(key, rate)).count();
        assert_eq!(admitted("a", small), 2);
        assert_eq!(admitted("b", big), 3);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(admitted("a", small), 1);
        assert_eq!(l.admit("b", big).await, Admission::Admitted);
    }
}
