//! What the SQL stores ([`super::sql`], [`super::pg`]) share below the statements: the column lists
//! both schemas have, row → domain mapping generic over the driver's row type, and error mapping.
//!
//! The mappers take any [`DbRow`], which every sqlx row whose driver decodes `i64`, `String` and `bool`
//! is — so the sqlx trait bounds are written once, on that blanket impl, not on every mapper.

use std::sync::Arc;

use sqlx::{ColumnIndex, Database, Decode, Row, Type};

use crate::core::domain::*;
use crate::core::error::{Error, Result};

/// The room columns, with the member count, selected from `rooms r`. The count is a column kept by
/// triggers on `members` (migration 0018), so reading a room costs the same whatever its size.
pub(super) const ROOM_COLS: &str = "r.id, r.name, r.kind, r.visibility, r.topic, r.created_by, r.last_seq, \
     r.retention_secs, r.member_count";

/// Messages `m` with their sender `u` and target `t`, as [`message_from`] reads them.
pub(super) const MSG_SELECT: &str = "SELECT m.room_id, m.seq, m.kind, m.sender_id, m.body, m.client_id, m.created_at, \
     m.mentions, m.edited_at, m.deleted, m.target_id, m.reply_to, m.thread, u.username, u.display_name, \
     t.username AS t_username, t.display_name AS t_display_name \
     FROM messages m JOIN users u ON u.id = m.sender_id LEFT JOIN users t ON t.id = m.target_id";

/// A driver error as an internal error, labelled with the backend it came from.
pub(super) fn db_err<DB: Database>(e: sqlx::Error) -> Error {
    // The labels predate this shared helper: kept as they were, as logs are searched for them.
    let label = if DB::NAME == "PostgreSQL" { "database (postgres)" } else { "database" };
    Error::Internal(anyhow::Error::new(e).context(label))
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Mentions are stored as comma-separated user ids in `messages.mentions` (the `mentions` table
/// indexes them for unread counts).
pub(super) fn mentions_to_text(ids: &[UserId]) -> String {
    ids.iter().map(|u| u.0.to_string()).collect::<Vec<_>>().join(",")
}

fn mentions_from_text(s: &str) -> Vec<UserId> {
    s.split(',').filter_map(|x| x.parse().ok()).map(UserId).collect()
}

/// A row read by column name, in the few SQL types the schemas use; errors labelled as [`db_err`].
pub(super) trait DbRow {
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn flag(&self, col: &str) -> Result<bool>;
}

impl<R> DbRow for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn int(&self, col: &str) -> Result<i64> {
        self.try_get(col).map_err(db_err::<R::Database>)
    }

    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.try_get(col).map_err(db_err::<R::Database>)
    }

    fn text(&self, col: &str) -> Result<String> {
        self.try_get(col).map_err(db_err::<R::Database>)
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.try_get(col).map_err(db_err::<R::Database>)
    }

    fn flag(&self, col: &str) -> Result<bool> {
        self.try_get(col).map_err(db_err::<R::Database>)
    }
}

/// A room from [`ROOM_COLS`].
pub(super) fn room_from(row: &impl DbRow) -> Result<Room> {
    let vis = row.text("visibility")?;
    let kind = row.text("kind")?;
    Ok(Room {
        id: RoomId(row.int("id")?),
        name: row.text("name")?,
        kind: RoomKind::parse(&kind).ok_or_else(|| Error::internal(anyhow::anyhow!("bad room kind {kind}")))?,
        visibility: Visibility::parse(&vis).map_err(|_| Error::internal(anyhow::anyhow!("bad visibility {vis}")))?,
        topic: row.text("topic")?,
        created_by: UserId(row.int("created_by")?),
        last_seq: row.int("last_seq")?,
        member_count: row.int("member_count")?,
        retention_secs: row.opt_int("retention_secs")?,
    })
}

/// A message from [`MSG_SELECT`].
pub(super) fn message_from(row: &impl DbRow) -> Result<Arc<Message>> {
    let kind = row.text("kind")?;
    Ok(Arc::new(Message {
        room: RoomId(row.int("room_id")?),
        seq: row.int("seq")?,
        kind: MessageKind::parse(&kind).ok_or_else(|| Error::internal(anyhow::anyhow!("bad message kind {kind}")))?,
        sender: Some(User {
            id: UserId(row.int("sender_id")?),
            username: row.text("username")?,
            display_name: row.text("display_name")?,
        }),
        target: match row.opt_int("target_id")? {
            Some(id) => Some(User {
                id: UserId(id),
                username: row.text("t_username")?,
                display_name: row.text("t_display_name")?,
            }),
            None => None,
        },
        body: row.text("body")?,
        client_id: row.opt_text("client_id")?,
        mentions: mentions_from_text(&row.text("mentions")?),
        ts: row.int("created_at")?,
        edited_at: row.opt_int("edited_at")?,
        deleted: row.flag("deleted")?,
        files: Vec::new(),
        reply_to: row.opt_int("reply_to")?,
        thread: row.opt_int("thread")?,
        extras: MessageExtras::default(),
    }))
}

/// The file columns, as [`file_from`] reads them.
pub(super) const FILE_COLS: &str = "id, room_id, uploader_id, seq, blob, name, size, content_type, width, height, created_at, \
     thumb_blob, thumb_type, thumb_width, thumb_height, thumb_size";

pub(super) fn file_from(row: &impl DbRow) -> Result<FileMeta> {
    Ok(FileMeta {
        id: row.text("id")?,
        room: RoomId(row.int("room_id")?),
        uploader: UserId(row.int("uploader_id")?),
        seq: row.opt_int("seq")?,
        blob: row.text("blob")?,
        name: row.text("name")?,
        size: row.int("size")?,
        content_type: row.text("content_type")?,
        width: row.opt_int("width")?,
        height: row.opt_int("height")?,
        created_at: row.int("created_at")?,
        thumbnail: match row.opt_text("thumb_blob")? {
            Some(blob) => Some(Thumbnail {
                blob,
                content_type: row.opt_text("thumb_type")?.unwrap_or_default(),
                width: row.opt_int("thumb_width")?.unwrap_or(0),
                height: row.opt_int("thumb_height")?.unwrap_or(0),
                size: row.opt_int("thumb_size")?.unwrap_or(0),
            }),
            None => None,
        },
    })
}

/// Hands each message of `messages` (one room) the files in `files` that it shares.
pub(super) fn attach_files(messages: &mut [Arc<Message>], files: Vec<FileMeta>) {
    for f in files {
        if let Some(m) = messages.iter_mut().find(|m| Some(m.seq) == f.seq) {
            Arc::make_mut(m).files.push(f);
        }
    }
}

/// A webhook from `id, room_id, url, secret, created_by, created_at, delivered_seq`.
pub(super) fn webhook_from(row: &impl DbRow) -> Result<Webhook> {
    Ok(Webhook {
        id: row.int("id")?,
        room: RoomId(row.int("room_id")?),
        url: row.text("url")?,
        secret: row.text("secret")?,
        created_by: UserId(row.int("created_by")?),
        created_at: row.int("created_at")?,
        delivered_seq: row.int("delivered_seq")?,
    })
}

/// A user from the `id, username, display_name` columns.
pub(super) fn user_from(row: &impl DbRow) -> Result<User> {
    Ok(User { id: UserId(row.int("id")?), username: row.text("username")?, display_name: row.text("display_name")? })
}

/// A member's role from its `role` column; an unknown role reads as a plain member.
pub(super) fn role_from(row: &impl DbRow) -> Result<Role> {
    Ok(Role::parse(&row.text("role")?).unwrap_or(Role::Member))
}
