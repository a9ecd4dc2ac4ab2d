//! Abuse limits shared by every transport: token buckets keyed by client address or user, and the
//! connection caps (per user and in total); failed logins counted per username ([`LoginThrottle`]).
//! Refusals are [`Error::RateLimited`] /
//! [`Error::TooManyConnections`], which every transport answers the same documented way.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::domain::UserId;
use super::error::{Error, Limit, Result};

/// Rate and burst of one token bucket.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

/// One token bucket: refills at `rate.per_sec` up to `rate.burst`. Shared by the keyed limits below and
/// the TCP transport's per-connection line limit.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(rate: Rate, now: Instant) -> Self {
        Bucket { tokens: rate.burst.max(1.0), at: now }
    }

    /// Tokens at `now` (refilled, not taken).
    fn level(&self, rate: Rate, now: Instant) -> f64 {
        (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate.per_sec).min(rate.burst.max(1.0))
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, rate: Rate, now: Instant) -> std::result::Result<(), Duration> {
        self.tokens = self.level(rate, now);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = if rate.per_sec > 0.0 { (1.0 - self.tokens) / rate.per_sec } else { 3600.0 };
        Err(Duration::from_secs_f64(wait.clamp(0.001, 3600.0)))
    }
}

/// Token buckets per key. Full buckets are forgotten now and then, so the map only holds keys that
/// were active recently.
pub struct Buckets<K> {
    rate: Rate,
    limit: Limit,
    map: Mutex<Keyed<K>>,
}

struct Keyed<K> {
    buckets: HashMap<K, Bucket>,
    /// Size at which full buckets are next swept out; doubles past the live keys, so a sweep's cost is
    /// spread over as many insertions.
    sweep_at: usize,
}

/// Keys kept before the first sweep.
const SWEEP_AT: usize = 4096;

impl<K: Hash + Eq + Copy> Buckets<K> {
    pub fn new(rate: Rate, limit: Limit) -> Self {
        Buckets { rate, limit, map: Mutex::new(Keyed { buckets: HashMap::new(), sweep_at: SWEEP_AT }) }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn take(&self, key: K, now: Instant) -> Result<()> {
        let rate = self.rate;
        let mut map = self.map.lock();
        let Keyed { buckets, sweep_at } = &mut *map;
        if buckets.len() >= *sweep_at {
            // A full bucket is the same as no bucket: forget it.
            buckets.retain(|_, b| b.level(rate, now) < rate.burst.max(1.0));
            *sweep_at = (buckets.len() * 2).max(SWEEP_AT);
        }
        let taken = buckets.entry(key).or_insert(Bucket::full(rate, now)).take(rate, now);
        drop(map);
        taken.map_err(|wait| rate_limited(self.limit, wait))
    }
}

/// Counts the refusal and builds the error.
pub fn rate_limited(limit: Limit, retry_after: Duration) -> Error {
    metrics::counter!("parley_rate_limited_total", "limit" => limit.as_str()).increment(1);
    Error::RateLimited { limit, retry_after }
}

/// The transport a live connection came by (a label on connection metrics and spans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ws,
    Sse,
    Tcp,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Ws, Transport::Sse, Transport::Tcp];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
            Transport::Tcp => "tcp",
        }
    }
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for a connection, for its log span.
pub fn next_conn_id() -> u64 {
    NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed)
}

/// Connection caps: per user and in total, across every transport.
pub struct Connections {
    per_user: usize,
    total: usize,
    open: Mutex<(usize, HashMap<UserId, usize>)>,
}

/// A connection's place under the caps; dropping it frees the place.
pub struct Admission {
    /// Process-unique connection id, for logs.
    pub id: u64,
    user: UserId,
    transport: Transport,
    owner: Arc<Connections>,
}

/// How long a refused client is told to wait: connections free up unpredictably.
const CONNECTION_RETRY: Duration = Duration::from_secs(5);

impl Connections {
    pub fn new(per_user: usize, total: usize) -> Arc<Self> {
        Arc::new(Connections { per_user, total, open: Mutex::new((0, HashMap::new())) })
    }

    /// Takes a place for a new connection of `user`, or refuses when a cap is reached.
    pub fn admit(self: &Arc<Self>, user: UserId, transport: Transport) -> Result<Admission> {
        {
            let mut open = self.open.lock();
            if open.0 >= self.total {
                drop(open);
                return Err(too_many(Limit::ConnectionsTotal));
            }
            let mine = open.1.entry(user).or_insert(0);
            if *mine >= self.per_user {
                drop(open);
                return Err(too_many(Limit::ConnectionsPerUser));
            }
            *mine += 1;
            open.0 += 1;
        }
        metrics::gauge!("parley_connections_open", "transport" => transport.as_str()).increment(1.0);
        metrics::counter!("parley_connections_total", "transport" => transport.as_str()).increment(1);
        Ok(Admission { id: next_conn_id(), user, transport, owner: self.clone() })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().0
    }
}

fn too_many(limit: Limit) -> Error {
    metrics::counter!("parley_rate_limited_total", "limit" => limit.as_str()).increment(1);
    Error::TooManyConnections { limit, retry_after: CONNECTION_RETRY }
}

impl Drop for Admission {
    fn drop(&mut self) {
        {
            let mut open = self.owner.open.lock();
            open.0 = open.0.saturating_sub(1);
            if let Some(n) = open.1.get_mut(&self.user) {
                *n -= 1;
                if *n == 0 {
                    open.1.remove(&self.user);
                }
            }
        }
        metrics::gauge!("parley_connections_open", "transport" => self.transport.as_str()).decrement(1.0);
    }
}

/// Counts failed logins per username.
pub struct LoginThrottle {
    free_failures: u32,
    max_pause: Duration,
    state: Mutex<HashMap<String, (u32, Instant)>>, // failures, locked until
}

impl LoginThrottle {
    pub fn new(free_failures: u32) -> Self {
        LoginThrottle { free_failures, max_pause: Duration::from_secs(900), state: Mutex::new(HashMap::new()) }
    }

    /// Err(TooManyAttempts) while `key` is paused.
    pub fn check(&self, key: &str, now: Instant) -> Result<()> {
        match self.state.lock().get(key) {
            Some(&(_, until)) if until > now => Err(Error::TooManyAttempts { retry_after: until - now }),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, key: &str, now: Instant) {
        let mut st = self.state.lock();
        if st.len() > 100_000 {
            st.retain(|_, (_, until)| *until > now); // bound memory under a spray of usernames
        }
        let e = st.entry(key.to_owned()).or_insert((0, now));
        e.0 += 1;
        // The first `free_failures` failures are free: the next attempt after them already waits.
        if e.0 >= self.free_failures.max(1) {
            let doublings = (e.0 - self.free_failures.max(1)).min(16);
            e.1 = now + Duration::from_secs(1u64 << doublings).min(self.max_pause);
        }
    }

    pub fn succeeded(&self, key: &str) {
        self.state.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_the_burst_then_the_rate() {
        let b = Buckets::new(Rate { per_sec: 2.0, burst: 3.0 }, Limit::Messages);
        let t0 = Instant::now();
        for _ in 0..3 {
            b.take(1u8, t0).unwrap();
        }
        match b.take(1u8, t0) {
            Err(Error::RateLimited { retry_after, .. }) => assert!(retry_after <= Duration::from_millis(500)),
            other => panic!("expected rate_limited, got {other:?}"),
        }
        // Other keys are independent.
        b.take(2u8, t0).unwrap();
        // Half a second refills one token at 2/s.
        b.take(1u8, t0 + Duration::from_millis(500)).unwrap();
        assert!(b.take(1u8, t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let b = Buckets::new(Rate { per_sec: 1.0, burst: 2.0 }, Limit::Auth);
        let t0 = Instant::now();
        for k in 0..SWEEP_AT as u32 {
            b.take(k, t0).unwrap();
        }
        // Two seconds later every bucket is full again; the next new key sweeps them out.
        b.take(u32::MAX, t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(b.map.lock().buckets.len(), 1);
    }

    #[test]
    fn connections_are_capped_per_user_and_in_total() {
        let c = Connections::new(2, 3);
        let a1 = c.admit(UserId(1), Transport::Ws).unwrap();
        let _a2 = c.admit(UserId(1), Transport::Tcp).unwrap();
        assert!(matches!(
            c.admit(UserId(1), Transport::Sse),
            Err(Error::TooManyConnections { limit: Limit::ConnectionsPerUser, .. })
        ));
        let _b1 = c.admit(UserId(2), Transport::Ws).unwrap();
        assert!(matches!(
            c.admit(UserId(3), Transport::Ws),
            Err(Error::TooManyConnections { limit: Limit::ConnectionsTotal, .. })
        ));
        drop(a1);
        assert_eq!(c.open(), 2);
        c.admit(UserId(1), Transport::Ws).unwrap();
    }

    #[test]
    fn throttle_pauses_after_free_failures_and_doubles() {
        let th = LoginThrottle::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            th.check("bob", t0).unwrap();
            th.failed("bob", t0);
        }
        // Three free failures: the fourth attempt is already refused.
        let Err(Error::TooManyAttempts { retry_after }) = th.check("bob", t0) else { panic!("should pause") };
        assert_eq!(retry_after, Duration::from_secs(1));
        th.check("alice", t0).unwrap();
        let t1 = t0 + Duration::from_secs(2);
        th.check("bob", t1).unwrap();
        th.failed("bob", t1);
        let Err(Error::TooManyAttempts { retry_after }) = th.check("bob", t1) else { panic!("should pause") };
        assert_eq!(retry_after, Duration::from_secs(2));
        th.succeeded("bob");
        th.check("bob", t1).unwrap();
    }
}
