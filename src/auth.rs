//! Passwords, tokens and login throttling.
//!
//! - Passwords are argon2id hashes, computed on a small pool of dedicated threads (a hash costs tens of
//!   milliseconds of CPU and ~19 MiB: on the async runtime it would stall every connection on that
//!   worker, and unbounded it would take the memory of as many hashes as logins arrive) with a bounded
//!   queue; beyond it logins and registrations are refused with `rate_limited`.
//! - A token is a JWT (HS256) naming a user and a server-side session. The signature makes it cheap to
//!   reject forgeries; the session makes logout real (see `core::chat`).
//! - Failed logins are counted per username (`core::limits::LoginThrottle`, re-exported here): past a
//!   threshold the account answers `too_many_attempts` for a doubling pause, whoever asks.
//!
//! These are the adapters of the core's credentials port (`core::ports::credentials`).

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use jsonwebtoken::{Algorithm as JwtAlg, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::core::domain::{Millis, SessionId, UserId};
use crate::core::error::{Error, Limit, Result};
pub use crate::core::limits::LoginThrottle;
use crate::core::ports::credentials::{PasswordHashing, TokenIssuer};

#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// Verified against when the username is unknown, so both failures cost the same time.
    dummy_hash: String,
    pool: Arc<HashPool>,
}

/// How long a login refused by a full hashing queue is told to wait.
const HASH_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Passwords {
    /// `threads` hashes at a time (0: one per core), `queue` more waiting; beyond that a login or
    /// registration is refused with `rate_limited` (limit `password_hashing`).
    pub fn new(memory_kib: u32, iterations: u32) -> anyhow::Result<Self> {
        Self::with_pool(memory_kib, iterations, 0, 64)
    }

    pub fn with_pool(memory_kib: u32, iterations: u32, threads: usize, queue: usize) -> anyhow::Result<Self> {
        let params =
            Params::new(memory_kib, iterations, 1, None).map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let dummy_hash =
            hasher.hash_password(b"parley-dummy-password").map_err(|e| anyhow::anyhow!("argon2: {e}"))?.to_string();
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Ok(Passwords { params, dummy_hash, pool: Arc::new(HashPool::start(threads, queue)?) })
    }

    fn hasher(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        let hasher = self.hasher();
        self.pool
            .run(move || hasher.hash_password(password.as_bytes()).map(|h| h.to_string()))
            .await?
            .map_err(|e| Error::internal(anyhow::anyhow!("argon2: {e}")))
    }

    /// True when `password` matches `hash`; with `hash = None` checks a dummy hash and returns false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let hasher = self.hasher();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self.pool.run(move || hasher.verify_password(password.as_bytes(), hash.as_str()).is_ok()).await?;
        Ok(ok && known)
    }
}

type HashJob = Box<dyn FnOnce() + Send>;

/// A few dedicated threads that run the argon2 work, with a bounded queue in front.
///
/// argon2id allocates its whole memory cost (19 MiB by default) per hash, and glibc keeps what a thread
/// freed in that thread's arena: hashing on the shared blocking pool (up to 512 threads) left over a
/// GiB resident after a login storm. A fixed set of threads bounds both the CPU and the memory a storm
/// can take; what the queue cannot hold is refused at once rather than left to pile up.
struct HashPool {
    tx: std::sync::mpsc::SyncSender<HashJob>,
}

impl HashPool {
    fn start(threads: usize, queue: usize) -> anyhow::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new().name(format!("parley-hash-{i}")).spawn(move || {
                loop {
                    // The lock is held only while waiting for the next job; the channel closes when the
                    // last `Passwords` is dropped.
                    let job = rx.lock().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                }
            })?;
        }
        Ok(HashPool { tx })
    }

    /// Queues `f` at once (or refuses it); the future answers when a hashing thread has run it.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Result<T>> + Send + 'static {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            let _ = reply.send(f());
        });
        let queued = match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                metrics::counter!("parley_rate_limited_total", "limit" => Limit::PasswordHashing.as_str()).increment(1);
                Err(Error::RateLimited { limit: Limit::PasswordHashing, retry_after: HASH_RETRY_AFTER })
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(Error::ShuttingDown),
        };
        async move {
            queued?;
            answer.await.map_err(|_| Error::internal(anyhow::anyhow!("a password hashing thread failed")))
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a string (JWT's `sub` is a string).
    sub: String,
    sid: String,
    iat: i64,
    exp: i64,
}

/// Signs and checks tokens.
pub struct Tokens {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(JwtAlg::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Tokens { enc: EncodingKey::from_secret(secret), dec: DecodingKey::from_secret(secret), validation, ttl }
    }

    /// A token for `session` of `user`, and when it expires (ms).
    pub fn issue(&self, user: UserId, session: &SessionId, now: Millis) -> Result<(String, Millis)> {
        let exp = now + self.ttl.as_millis() as i64;
        let claims = Claims { sub: user.0.to_string(), sid: session.0.clone(), iat: now / 1000, exp: exp / 1000 };
        let token = jsonwebtoken::encode(&Header::new(JwtAlg::HS256), &claims, &self.enc).map_err(Error::internal)?;
        Ok((token, exp))
    }

    /// The user and session a token names, if its signature, algorithm and expiry are right.
    pub fn check(&self, token: &str) -> Result<(UserId, SessionId)> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation).map_err(|_| Error::Unauthorized)?;
        let user = data.claims.sub.parse::<i64>().map_err(|_| Error::Unauthorized)?;
        Ok((UserId(user), SessionId(data.claims.sid)))
    }
}

#[async_trait::async_trait]
impl PasswordHashing for Passwords {
    async fn hash(&self, password: String) -> Result<String> {
        Passwords::hash(self, password).await
    }

    async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        Passwords::verify(self, password, hash).await
    }
}

impl TokenIssuer for Tokens {
    fn issue(&self, user: UserId, session: &SessionId, now: Millis) -> Result<(String, Millis)> {
        Tokens::issue(self, user, session, now)
    }

    fn check(&self, token: &str) -> Result<(UserId, SessionId)> {
        Tokens::check(self, token)
    }

    fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_the_right_one() {
        let p = Passwords::new(1024, 1).unwrap();
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!p.verify("wrong horse".into(), Some(h)).await.unwrap());
        assert!(!p.verify("parley-dummy-password".into(), None).await.unwrap(), "unknown users never verify");
    }

    #[tokio::test]
    async fn a_full_hashing_queue_refuses_at_once() {
        let pool = HashPool::start(1, 1).unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        // The only thread is busy, and the one queue place taken: a third job is refused.
        let busy = tokio::spawn(pool.run(move || {
            let _ = started_tx.send(());
            let _ = gate.recv();
        }));
        started.await.unwrap();
        let queued = tokio::spawn(pool.run(|| 7));
        let refused = pool.run(|| 8).await;
        let Err(Error::RateLimited { limit: Limit::PasswordHashing, retry_after }) = refused else {
            panic!("expected rate_limited, got {refused:?}")
        };
        assert!(retry_after >= Duration::from_secs(1));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(queued.await.unwrap().unwrap(), 7);
        assert_eq!(pool.run(|| 9).await.unwrap(), 9, "room again once the queue drained");
    }

    #[test]
    fn tokens_reject_tampering_expiry_and_other_keys() {
        let t = Tokens::new(b"secret-1", Duration::from_secs(60));
        let sid = SessionId::generate();
        let (tok, _) = t.issue(UserId(7), &sid, crate::core::domain::now_millis()).unwrap();
        assert_eq!(t.check(&tok).unwrap(), (UserId(7), sid.clone()));
        let other = Tokens::new(b"secret-2", Duration::from_secs(60));
        assert!(matches!(other.check(&tok), Err(Error::Unauthorized)));
        let mut parts: Vec<&str> = tok.split('.').collect();
        let forged_payload = base64_url(r#"{"sub":"1","sid":"x","iat":0,"exp":99999999999}"#);
        parts[1] = &forged_payload;
        assert!(matches!(t.check(&parts.join(".")), Err(Error::Unauthorized)));
        let none_header = base64_url(r#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{forged_payload}.");
        assert!(matches!(t.check(&unsigned), Err(Error::Unauthorized)));
        let (old, _) = t.issue(UserId(7), &sid, crate::core::domain::now_millis() - 120_000).unwrap();
        assert!(matches!(t.check(&old), Err(Error::Unauthorized)), "expired");
        assert!(matches!(t.check("garbage"), Err(Error::Unauthorized)));
    }

    fn base64_url(s: &str) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let b = s.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
