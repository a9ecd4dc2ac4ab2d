//! Accounts: registering, logging in and out, checking a token against its session, display names.

use std::time::Instant;

use tracing::info;

use super::{Chat, Identity, LoginOk};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::ports::broker::BrokerEvent;
use crate::core::ports::store::Session;

impl Chat {
    pub async fn register(&self, username: Username, password: Password, display: Option<DisplayName>) -> Result<User> {
        let display = match display {
            Some(d) => d,
            None => DisplayName::parse(username.as_str())?,
        };
        // Cheap early answer; the unique index is what really guarantees it.
        if self.store.user_by_name(&username.key()).await?.is_some() {
            return Err(Error::UsernameTaken);
        }
        let hash = self.passwords.hash(password.expose().to_owned()).await?;
        let user = self.store.create_user(&username, &display, &hash, self.now()).await?;
        info!(user = user.id.0, username = %user.username, "registered");
        Ok(user)
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<LoginOk> {
        let key = username.to_ascii_lowercase();
        let now = Instant::now();
        self.throttle.check(&key, now)?;
        let creds = if Username::parse(username).is_ok() { self.store.credentials(&key).await? } else { None };
        let (user, hash) = match creds {
            Some(c) => (Some(c.user), Some(c.password_hash)),
            None => (None, None),
        };
        if !self.passwords.verify(password.to_owned(), hash).await? {
            self.throttle.failed(&key, now);
            return Err(Error::InvalidCredentials);
        }
        let user = user.ok_or(Error::InvalidCredentials)?;
        self.throttle.succeeded(&key);
        let session = SessionId::generate();
        let (token, expires_at) = self.tokens.issue(user.id, &session, self.now())?;
        self.store
            .create_session(&Session { id: session, user: user.id, expires_at, revoked: false }, self.now())
            .await?;
        Ok(LoginOk { token, expires_at, user })
    }

    /// Checks a token and its session; the identity it names.
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        let (user_id, session) = self.tokens.check(token)?;
        let (s, user) = self.store.session_user(&session).await?.ok_or(Error::Unauthorized)?;
        if s.revoked || s.user != user_id || s.expires_at <= self.now() {
            return Err(Error::Unauthorized);
        }
        Ok(Identity { user, session, expires_at: s.expires_at })
    }

    /// Ends the session; every connection made with it closes.
    pub async fn logout(&self, who: &Identity) -> Result<()> {
        self.store.revoke_session(&who.session).await?;
        self.broker.publish(BrokerEvent::SessionEnded(who.session.clone())).await
    }

    pub async fn set_display_name(&self, who: &Identity, name: DisplayName) -> Result<User> {
        let user = self.store.set_display_name(who.user.id, &name).await?;
        self.broker.publish(BrokerEvent::UserUpdated(user.clone())).await?;
        Ok(user)
    }
}
