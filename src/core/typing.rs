//! Typing indicators: ephemeral, rate limited, expiring on their own, never stored.
//!
//! A user's "typing" in a room is forwarded at most once per [`TypingTracker::MIN_INTERVAL`]; it counts
//! as current for [`TypingTracker::TTL`] after the last accepted one. Clients show it for the same TTL.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::domain::{RoomId, UserId};

#[derive(Default)]
pub struct TypingTracker {
    last: Mutex<HashMap<(RoomId, UserId), Instant>>,
}

impl TypingTracker {
    pub const MIN_INTERVAL: Duration = Duration::from_secs(2);
    pub const TTL: Duration = Duration::from_secs(6);

    /// Whether this "typing" should be forwarded (false: rate limited).
    pub fn accept(&self, room: RoomId, user: UserId) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock();
        if last.len() > 10_000 {
            last.retain(|_, t| now.duration_since(*t) < Self::TTL);
        }
        match last.get(&(room, user)) {
            Some(t) if now.duration_since(*t) < Self::MIN_INTERVAL => false,
            _ => {
                last.insert((room, user), now);
                true
            }
        }
    }

    /// Who is typing in `room` now.
    pub fn typing_in(&self, room: RoomId) -> Vec<UserId> {
        let now = Instant::now();
        let mut users: Vec<UserId> = self
            .last
            .lock()
            .iter()
            .filter(|((r, _), t)| *r == room && now.duration_since(**t) < Self::TTL)
            .map(|((_, u), _)| *u)
            .collect();
        users.sort();
        users
    }

    /// The user sent a message: they stopped typing.
    pub fn stop(&self, room: RoomId, user: UserId) {
        self.last.lock().remove(&(room, user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn typing_is_rate_limited_and_expires() {
        let t = TypingTracker::default();
        let (r, a, b) = (RoomId(1), UserId(1), UserId(2));
        assert!(t.accept(r, a));
        assert!(!t.accept(r, a), "a second one right away is dropped");
        assert!(t.accept(r, b));
        assert_eq!(t.typing_in(r), vec![a, b]);
        tokio::time::advance(TypingTracker::MIN_INTERVAL).await;
        assert!(t.accept(r, a), "after the interval it is forwarded again");
        tokio::time::advance(TypingTracker::TTL - TypingTracker::MIN_INTERVAL).await;
        assert_eq!(t.typing_in(r), vec![a], "b expired on its own");
        tokio::time::advance(TypingTracker::MIN_INTERVAL).await;
        assert!(t.typing_in(r).is_empty());
        t.accept(r, b);
        t.stop(r, b);
        assert!(t.typing_in(r).is_empty(), "sending a message ends typing");
    }
}
