//! The credentials port: how the core hashes and checks passwords and signs and checks tokens, without
//! knowing the algorithms. `src/auth.rs` implements both (argon2id on a bounded pool of threads, HS256
//! JWTs); login throttling is core policy and lives in `core::limits` ([`crate::core::limits::LoginThrottle`]).

use std::time::Duration;

use async_trait::async_trait;

use crate::core::domain::{Millis, SessionId, UserId};
use crate::core::error::Result;

/// Password hashing. Implementations bound their CPU and memory: beyond what they can take, they refuse
/// with `Error::RateLimited` rather than queue without end.
#[async_trait]
pub trait PasswordHashing: Send + Sync + 'static {
    /// The stored form of `password` (salted hash, self-describing).
    async fn hash(&self, password: String) -> Result<String>;
    /// True when `password` matches `hash`; with `hash = None` (unknown user) does the same work and
    /// returns false, so both failures cost the same time.
    async fn verify(&self, password: String, hash: Option<String>) -> Result<bool>;
}

/// Bearer tokens naming a user and a server-side session.
pub trait TokenIssuer: Send + Sync + 'static {
    /// A token for `session` of `user`, and when it expires (ms).
    fn issue(&self, user: UserId, session: &SessionId, now: Millis) -> Result<(String, Millis)>;
    /// The user and session a token names, if it is genuine and not expired (`Error::Unauthorized`
    /// otherwise).
    fn check(&self, token: &str) -> Result<(UserId, SessionId)>;
    /// How long an issued token lives.
    fn ttl(&self) -> Duration;
}
