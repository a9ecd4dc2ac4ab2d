//! The statements a WebSocket/SSE/TCP connect runs against a SQL store, in the order it runs them:
//! authenticate (the session with its user, one statement), the rooms to follow, then the greeting's
//! room views and each viewed room's last message with its files. On SQLite they run on the store's
//! reader threads (`sqlite_reader`), so a connect is three hops to a thread: authenticate, the rooms,
//! the views with their last messages. Named here, once, so the SQL stores run exactly
//! these and `connect_cost`'s test measures exactly these (SQLite's VM steps per statement, in a
//! 10-member and a 2,000-member room: a connect must not cost more in a bigger room).
//!
//! Each is a point lookup or a range bounded by the user's rooms, never by the members of a room:
//! - the unread count walks only the text messages that are not deleted (on SQLite the search index's
//!   `messages_fts_ids`, which holds exactly those, with their sender: migration 0025; on PostgreSQL the
//!   partial index `messages_unread`), so the joins, leaves and other system messages of a big room (one
//!   per member who ever joined) are not walked on every connect;
//! - the mention count is a range of the `mentions` primary key `(user_id, room_id, seq)`.

use super::rows::{FILE_COLS, MSG_SELECT, ROOM_COLS};

/// A session and its user, by the session's id (`$1`): a connect's authentication.
pub(super) const SESSION_USER: &str = "SELECT s.user_id, s.expires_at, s.revoked, u.username, u.display_name \
     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1";

/// A session by its id (`$1`).
pub(super) const SESSION: &str = "SELECT user_id, expires_at, revoked FROM sessions WHERE id = $1";

/// A user by id (`$1`).
pub(super) const USER: &str = "SELECT id, username, display_name FROM users WHERE id = $1";

/// The rooms of user `$1`, by id: the rooms a new connection follows. Driven by the user's membership
/// rows (`members_by_user`), ordered by that index: `r.id IN (SELECT …)` let SQLite scan every room of
/// the server instead.
pub(super) fn user_rooms() -> String {
    format!(
        "SELECT {ROOM_COLS} FROM members mb JOIN rooms r ON r.id = mb.room_id WHERE mb.user_id = $1 ORDER BY mb.room_id"
    )
}

/// User `$1`'s view of each of their rooms (role, read position, unread and mention counts up to the
/// room's `last_seq` read in the same statement, the other member of a direct conversation).
/// `unread` is the dialect's unread count (a scalar subquery over `mb` and `r`: see
/// [`UNREAD_MESSAGES`] and the SQLite store's).
pub(super) fn room_views(unread: &str) -> String {
    format!(
        "SELECT {ROOM_COLS}, mb.role, mb.last_read, mb.notify, mb.muted, \
         {unread} AS unread, \
         (SELECT COUNT(*) FROM mentions x WHERE x.user_id = mb.user_id AND x.room_id = mb.room_id \
            AND x.seq > mb.last_read AND x.seq <= r.last_seq) AS mentions, \
         CASE WHEN r.kind = 'direct' THEN (SELECT o.user_id FROM members o \
            WHERE o.room_id = mb.room_id AND o.user_id <> mb.user_id LIMIT 1) END AS other \
         FROM members mb JOIN rooms r ON r.id = mb.room_id WHERE mb.user_id = $1 ORDER BY mb.room_id"
    )
}

/// The unread count of member `mb` in room `r` read from `messages` (PostgreSQL walks its partial index
/// `messages_unread`): the text messages after the member's read position, up to the room's `last_seq`,
/// not deleted, from others.
pub(super) const UNREAD_MESSAGES: &str = "(SELECT COUNT(*) FROM messages m WHERE m.room_id = mb.room_id \
     AND m.seq > mb.last_read AND m.seq <= r.last_seq AND m.kind = 'text' AND NOT m.deleted \
     AND m.sender_id <> mb.user_id)";

/// Message `($1 = room, $2 = seq)` with its sender and target.
pub(super) fn message_row() -> String {
    format!("{MSG_SELECT} WHERE m.room_id = $1 AND m.seq = $2")
}

/// The files shared by messages `$2..=$3` of room `$1`, in upload order.
pub(super) fn files_between() -> String {
    format!("SELECT {FILE_COLS} FROM files WHERE room_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY created_at, id")
}
