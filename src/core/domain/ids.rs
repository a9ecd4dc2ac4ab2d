//! Identifiers: of users, rooms, nodes and sessions, and the numbers (`Seq`, `Millis`) the store assigns.

use std::fmt;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user's numeric id, assigned by the store.
    UserId
);
id_type!(
    /// A room's numeric id, assigned by the store.
    RoomId
);

/// One running Parley process among several sharing a store and a broker; random per start, so a
/// restarted node is a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub u64);

impl NodeId {
    pub fn generate() -> Self {
        NodeId(rand::random())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A message's position in its room: 1, 2, 3… with no gaps, assigned by the store.
pub type Seq = i64;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A server-side session: what a token is bound to, so that logout can revoke it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(pub String);

impl SessionId {
    pub fn generate() -> Self {
        let bytes: [u8; 16] = rand::random();
        SessionId(hex::encode(bytes))
    }
}
