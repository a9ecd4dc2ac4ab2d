//! The SQLite store (the default). Runtime queries with `$n` placeholders, so the same statements can
//! serve PostgreSQL later; migrations are embedded in the binary.
//!
//! Durability: WAL with `synchronous=FULL`, so a commit is on disk when [`Store::append`] returns —
//! acknowledgements are sent only after that. Group commit upstream makes one sync cover many messages.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{Credentials, Session, Store};
use crate::core::domain::*;
use crate::core::error::{Error, Result};

pub struct SqlStore {
    pool: SqlitePool,
}

fn db_err(e: sqlx::Error) -> Error {
    Error::Internal(anyhow::Error::new(e).context("database"))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

const ROOM_COLS: &str = "r.id, r.name, r.kind, r.visibility, r.topic, r.created_by, r.last_seq, r.retention_secs, \
     (SELECT COUNT(*) FROM members m WHERE m.room_id = r.id) AS member_count";

const MSG_SELECT: &str = "SELECT m.room_id, m.seq, m.kind, m.sender_id, m.body, m.client_id, m.created_at, \
     m.mentions, m.edited_at, m.deleted, m.target_id, u.username, u.display_name, \
     t.username AS t_username, t.display_name AS t_display_name \
     FROM messages m JOIN users u ON u.id = m.sender_id LEFT JOIN users t ON t.id = m.target_id";

/// Rows per multi-row statement: well under SQLite's bound-parameter limit at 9 columns.
const CHUNK: usize = 500;

fn mentions_to_text(ids: &[UserId]) -> String {
    ids.iter().map(|u| u.0.to_string()).collect::<Vec<_>>().join(",")
}

fn mentions_from_text(s: &str) -> Vec<UserId> {
    s.split(',').filter_map(|x| x.parse().ok()).map(UserId).collect()
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite database at `path` and runs the embedded migrations.
    pub async fn open_sqlite(path: &Path) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        Self::connect(opts).await
    }

    /// Opens from a `sqlite:` URL.
    pub async fn open_sqlite_url(url: &str) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        Self::connect(opts).await
    }

    async fn connect(opts: SqliteConnectOptions) -> anyhow::Result<Self> {
        // Found by profiling durable ingest: a larger page cache keeps hot room pages out of pread, a
        // rarer checkpoint copies fewer pages back, and statement journals stay in memory.
        let opts =
            opts.pragma("cache_size", "-65536").pragma("wal_autocheckpoint", "8192").pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqlStore { pool })
    }

    fn room_from(row: &SqliteRow) -> Result<Room> {
        let vis: String = row.try_get("visibility").map_err(db_err)?;
        let kind: String = row.try_get("kind").map_err(db_err)?;
        Ok(Room {
            id: RoomId(row.try_get("id").map_err(db_err)?),
            name: row.try_get("name").map_err(db_err)?,
            kind: RoomKind::parse(&kind).ok_or_else(|| Error::internal(anyhow::anyhow!("bad room kind {kind}")))?,
            visibility: Visibility::parse(&vis)
                .map_err(|_| Error::internal(anyhow::anyhow!("bad visibility {vis}")))?,
            topic: row.try_get("topic").map_err(db_err)?,
            created_by: UserId(row.try_get("created_by").map_err(db_err)?),
            last_seq: row.try_get("last_seq").map_err(db_err)?,
            member_count: row.try_get("member_count").map_err(db_err)?,
            retention_secs: row.try_get("retention_secs").map_err(db_err)?,
        })
    }

    fn message_from(row: &SqliteRow) -> Result<Arc<Message>> {
        let kind: String = row.try_get("kind").map_err(db_err)?;
        Ok(Arc::new(Message {
            room: RoomId(row.try_get("room_id").map_err(db_err)?),
            seq: row.try_get("seq").map_err(db_err)?,
            kind: MessageKind::parse(&kind)
                .ok_or_else(|| Error::internal(anyhow::anyhow!("bad message kind {kind}")))?,
            sender: Some(User {
                id: UserId(row.try_get("sender_id").map_err(db_err)?),
                username: row.try_get("username").map_err(db_err)?,
                display_name: row.try_get("display_name").map_err(db_err)?,
            }),
            target: match row.try_get::<Option<i64>, _>("target_id").map_err(db_err)? {
                Some(id) => Some(User {
                    id: UserId(id),
                    username: row.try_get("t_username").map_err(db_err)?,
                    display_name: row.try_get("t_display_name").map_err(db_err)?,
                }),
                None => None,
            },
            body: row.try_get("body").map_err(db_err)?,
            client_id: row.try_get("client_id").map_err(db_err)?,
            mentions: mentions_from_text(row.try_get("mentions").map_err(db_err)?),
            ts: row.try_get("created_at").map_err(db_err)?,
            edited_at: row.try_get("edited_at").map_err(db_err)?,
            deleted: row.try_get("deleted").map_err(db_err)?,
        }))
    }

    async fn message_by_seq(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
        let sql = sqlx::AssertSqlSafe(format!("{MSG_SELECT} WHERE m.room_id = $1 AND m.seq = $2"));
        let row = sqlx::query(sql).bind(room.0).bind(seq).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(Self::message_from).transpose()
    }

    fn webhook_from(row: &SqliteRow) -> Result<Webhook> {
        Ok(Webhook {
            id: row.try_get("id").map_err(db_err)?,
            room: RoomId(row.try_get("room_id").map_err(db_err)?),
            url: row.try_get("url").map_err(db_err)?,
            secret: row.try_get("secret").map_err(db_err)?,
            created_by: UserId(row.try_get("created_by").map_err(db_err)?),
            created_at: row.try_get("created_at").map_err(db_err)?,
            delivered_seq: row.try_get("delivered_seq").map_err(db_err)?,
        })
    }

    fn user_from(row: &SqliteRow) -> Result<User> {
        Ok(User {
            id: UserId(row.try_get("id").map_err(db_err)?),
            username: row.try_get("username").map_err(db_err)?,
            display_name: row.try_get("display_name").map_err(db_err)?,
        })
    }

    /// Runs a statement keyed by `($1 = room, $2 = user)`; whether it changed a row.
    async fn pair_changes(&self, sql: &'static str, room: RoomId, user: UserId) -> Result<bool> {
        let res = sqlx::query(sql).bind(room.0).bind(user.0).execute(&self.pool).await.map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    /// Whether a query keyed by `($1 = room, $2 = user)` finds a row.
    async fn pair_exists(&self, sql: &'static str, room: RoomId, user: UserId) -> Result<bool> {
        let row = sqlx::query(sql).bind(room.0).bind(user.0).fetch_optional(&self.pool).await.map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn room_by_key(&self, key: &str) -> Result<Option<Room>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.name_key = $1"));
        let row = sqlx::query(sql).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(Self::room_from).transpose()
    }

    async fn rooms_where(&self, clause: &'static str, bind: Option<i64>) -> Result<Vec<Room>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ROOM_COLS} FROM rooms r WHERE {clause} ORDER BY r.id"));
        let mut q = sqlx::query(sql);
        if let Some(b) = bind {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(Self::room_from).collect()
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn create_user(&self, username: &Username, display_name: &DisplayName, password_hash: &str) -> Result<User> {
        let res = sqlx::query(
            "INSERT INTO users (username, username_key, display_name, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(username.as_str())
        .bind(username.key())
        .bind(display_name.as_str())
        .bind(password_hash)
        .bind(now_millis())
        .fetch_one(&self.pool)
        .await;
        match res {
            Ok(row) => Ok(User {
                id: UserId(row.get(0)),
                username: username.as_str().to_owned(),
                display_name: display_name.as_str().to_owned(),
            }),
            Err(e) if is_unique_violation(&e) => Err(Error::UsernameTaken),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn credentials(&self, username_key: &str) -> Result<Option<Credentials>> {
        let row = sqlx::query("SELECT id, username, display_name, password_hash FROM users WHERE username_key = $1")
            .bind(username_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(Credentials { user: Self::user_from(&r)?, password_hash: r.try_get("password_hash").map_err(db_err)? })
        })
        .transpose()
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, username, display_name FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(Self::user_from).transpose()
    }

    async fn user_by_name(&self, username_key: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, username, display_name FROM users WHERE username_key = $1")
            .bind(username_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(Self::user_from).transpose()
    }

    async fn set_display_name(&self, id: UserId, name: &DisplayName) -> Result<User> {
        let row = sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2 RETURNING id, username, display_name")
            .bind(name.as_str())
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(Self::user_from).transpose()?.ok_or(Error::UserNotFound)
    }

    async fn create_session(&self, s: &Session) -> Result<()> {
        sqlx::query("INSERT INTO sessions (id, user_id, created_at, expires_at, revoked) VALUES ($1, $2, $3, $4, $5)")
            .bind(&s.id.0)
            .bind(s.user.0)
            .bind(now_millis())
            .bind(s.expires_at)
            .bind(s.revoked)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>> {
        let row = sqlx::query("SELECT user_id, expires_at, revoked FROM sessions WHERE id = $1")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| Session { id: id.clone(), user: UserId(r.get(0)), expires_at: r.get(1), revoked: r.get(2) }))
    }

    async fn revoke_session(&self, id: &SessionId) -> Result<bool> {
        let res = sqlx::query("UPDATE sessions SET revoked = TRUE WHERE id = $1 AND NOT revoked")
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn create_room(&self, name: &RoomName, visibility: Visibility, creator: UserId) -> Result<Room> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let now = now_millis();
        let res = sqlx::query(
            "INSERT INTO rooms (name, name_key, visibility, created_by, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name.as_str())
        .bind(name.key())
        .bind(visibility.as_str())
        .bind(creator.0)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match res {
            Ok(row) => row.get(0),
            Err(e) if is_unique_violation(&e) => return Err(Error::RoomNameTaken),
            Err(e) => return Err(db_err(e)),
        };
        sqlx::query("INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3)")
            .bind(id)
            .bind(creator.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        self.room(RoomId(id)).await?.ok_or(Error::RoomNotFound)
    }

    async fn open_direct(&self, a: UserId, b: UserId) -> Result<(Room, bool)> {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let key = format!("@dm:{lo}:{hi}");
        if let Some(r) = self.room_by_key(&key).await? {
            return Ok((r, false));
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let now = now_millis();
        let res = sqlx::query(
            "INSERT INTO rooms (name, name_key, kind, visibility, created_by, created_at) \
             VALUES ($1, $2, 'direct', 'private', $3, $4) RETURNING id",
        )
        .bind(format!("dm-{lo}-{hi}"))
        .bind(&key)
        .bind(a.0)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match res {
            Ok(row) => row.get(0),
            // Opened concurrently by the other side: theirs is the one.
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                return Ok((self.room_by_key(&key).await?.ok_or(Error::RoomNotFound)?, false));
            }
            Err(e) => return Err(db_err(e)),
        };
        for u in [lo, hi] {
            sqlx::query("INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'member', $3)")
                .bind(id)
                .bind(u.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok((self.room(RoomId(id)).await?.ok_or(Error::RoomNotFound)?, true))
    }

    async fn room(&self, id: RoomId) -> Result<Option<Room>> {
        Ok(self.rooms_where("r.id = $1", Some(id.0)).await?.pop())
    }

    async fn room_by_name(&self, name_key: &str) -> Result<Option<Room>> {
        Ok(self.room_by_key(name_key).await?.filter(|r| r.kind == RoomKind::Group))
    }

    async fn public_rooms(&self) -> Result<Vec<Room>> {
        self.rooms_where("r.visibility = 'public' AND r.kind = 'group'", None).await
    }

    async fn user_rooms(&self, user: UserId) -> Result<Vec<Room>> {
        self.rooms_where("r.id IN (SELECT room_id FROM members WHERE user_id = $1)", Some(user.0)).await
    }

    async fn room_views(&self, user: UserId) -> Result<Vec<RoomView>> {
        let rooms = self.user_rooms(user).await?;
        let mut out = Vec::with_capacity(rooms.len());
        for room in rooms {
            let row = sqlx::query(
                "SELECT mb.role, mb.last_read, \
                 (SELECT COUNT(*) FROM messages m WHERE m.room_id = mb.room_id AND m.seq > mb.last_read \
                    AND m.kind = 'text' AND m.sender_id <> mb.user_id AND NOT m.deleted) AS unread, \
                 (SELECT COUNT(*) FROM mentions x WHERE x.user_id = mb.user_id AND x.room_id = mb.room_id \
                    AND x.seq > mb.last_read) AS mentions, \
                 (SELECT o.user_id FROM members o WHERE o.room_id = mb.room_id AND o.user_id <> mb.user_id LIMIT 1) AS other \
                 FROM members mb WHERE mb.room_id = $1 AND mb.user_id = $2",
            )
            .bind(room.id.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
            let Some(row) = row else { continue };
            let role: String = row.get("role");
            let peer = match (room.kind, row.get::<Option<i64>, _>("other")) {
                (RoomKind::Direct, Some(other)) => self.user(UserId(other)).await?,
                _ => None,
            };
            let last_message =
                if room.last_seq > 0 { self.message_by_seq(room.id, room.last_seq).await? } else { None };
            out.push(RoomView {
                role: Role::parse(&role).unwrap_or(Role::Member),
                last_read: row.get("last_read"),
                unread: row.get("unread"),
                mentions: row.get("mentions"),
                peer,
                last_message,
                room,
            });
        }
        Ok(out)
    }

    async fn rename_room(&self, room: RoomId, name: &RoomName) -> Result<Room> {
        let res = sqlx::query("UPDATE rooms SET name = $1, name_key = $2 WHERE id = $3 AND kind = 'group'")
            .bind(name.as_str())
            .bind(name.key())
            .bind(room.0)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => self.room(room).await?.ok_or(Error::RoomNotFound),
            Err(e) if is_unique_violation(&e) => Err(Error::RoomNameTaken),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn set_topic(&self, room: RoomId, topic: &Topic) -> Result<Room> {
        sqlx::query("UPDATE rooms SET topic = $1 WHERE id = $2")
            .bind(topic.as_str())
            .bind(room.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        self.room(room).await?.ok_or(Error::RoomNotFound)
    }

    async fn members(&self, room: RoomId) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.display_name, m.role FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = $1 ORDER BY u.id",
        )
        .bind(room.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get("role").map_err(db_err)?;
                Ok(Member { user: Self::user_from(r)?, role: Role::parse(&role).unwrap_or(Role::Member) })
            })
            .collect()
    }

    async fn role(&self, room: RoomId, user: UserId) -> Result<Option<Role>> {
        let row = sqlx::query("SELECT role FROM members WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| Role::parse(r.get::<&str, _>(0)).unwrap_or(Role::Member)))
    }

    async fn add_member(&self, room: RoomId, user: UserId, role: Role) -> Result<bool> {
        // Joining uses up an invitation.
        self.pair_changes("DELETE FROM invites WHERE room_id = $1 AND user_id = $2", room, user).await?;
        let res = sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(room.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<bool> {
        self.pair_changes("DELETE FROM members WHERE room_id = $1 AND user_id = $2", room, user).await
    }

    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> Result<bool> {
        let res = sqlx::query("UPDATE members SET role = $1 WHERE room_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(room.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn ban(&self, room: RoomId, user: UserId, by: UserId) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        for sql in [
            "DELETE FROM members WHERE room_id = $1 AND user_id = $2",
            "DELETE FROM invites WHERE room_id = $1 AND user_id = $2",
        ] {
            sqlx::query(sql).bind(room.0).bind(user.0).execute(&mut *tx).await.map_err(db_err)?;
        }
        let res = sqlx::query(
            "INSERT INTO bans (room_id, user_id, banned_by, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(room.0)
        .bind(user.0)
        .bind(by.0)
        .bind(now_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn unban(&self, room: RoomId, user: UserId) -> Result<bool> {
        self.pair_changes("DELETE FROM bans WHERE room_id = $1 AND user_id = $2", room, user).await
    }

    async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool> {
        self.pair_exists("SELECT 1 FROM bans WHERE room_id = $1 AND user_id = $2", room, user).await
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> Result<Seq> {
        let row = sqlx::query(
            "UPDATE members SET last_read = MAX(last_read, MIN($1, (SELECT last_seq FROM rooms WHERE id = $2))) \
             WHERE room_id = $2 AND user_id = $3 RETURNING last_read",
        )
        .bind(seq)
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| r.get(0)).ok_or(Error::NotAMember)
    }

    async fn add_invite(&self, room: RoomId, user: UserId, by: UserId) -> Result<()> {
        sqlx::query(
            "INSERT INTO invites (room_id, user_id, invited_by, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(room.0)
        .bind(user.0)
        .bind(by.0)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn is_invited(&self, room: RoomId, user: UserId) -> Result<bool> {
        self.pair_exists("SELECT 1 FROM invites WHERE room_id = $1 AND user_id = $2", room, user).await
    }

    async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        // A constant number of statements per batch, not per message: sqlx's SQLite driver runs each
        // statement on its worker thread, and that round trip, not SQLite, dominated the write path.
        // IMMEDIATE takes the write lock up front: a deferred transaction that reads first can fail to
        // upgrade (SQLITE_BUSY_SNAPSHOT) without waiting for the busy timeout.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;

        // 1. client ids already stored.
        let keyed: Vec<&NewMessage> = batch.iter().filter(|m| m.client_id.is_some()).collect();
        let mut stored_ids: HashMap<(RoomId, UserId, String), Seq> = HashMap::new();
        for chunk in keyed.chunks(CHUNK) {
            // A join with the keys, not `(a, b, c) IN (VALUES …)`: SQLite scans the whole table for the
            // latter (seen in a profile), and searches the index for the former.
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("WITH k(r, s, c) AS (");
            q.push_values(chunk, |mut b, m| {
                b.push_bind(m.room.0)
                    .push_bind(m.sender.id.0)
                    .push_bind(m.client_id.as_ref().map(|c| c.as_str().to_owned()));
            });
            q.push(
                ") SELECT m.room_id, m.sender_id, m.client_id, m.seq FROM k \
                 JOIN messages m ON m.room_id = k.r AND m.sender_id = k.s AND m.client_id = k.c",
            );
            for row in q.build().fetch_all(&mut *tx).await.map_err(db_err)? {
                stored_ids.insert((RoomId(row.get(0)), UserId(row.get(1)), row.get(2)), row.get(3));
            }
        }

        // 2. membership of text senders.
        let mut pairs: Vec<(RoomId, UserId)> =
            batch.iter().filter(|m| m.kind == MessageKind::Text).map(|m| (m.room, m.sender.id)).collect();
        pairs.sort();
        pairs.dedup();
        let mut members: std::collections::HashSet<(RoomId, UserId)> = std::collections::HashSet::new();
        for chunk in pairs.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("WITH k(r, u) AS (");
            q.push_values(chunk, |mut b, (r, u)| {
                b.push_bind(r.0).push_bind(u.0);
            });
            q.push(") SELECT m.room_id, m.user_id FROM k JOIN members m ON m.room_id = k.r AND m.user_id = k.u");
            for row in q.build().fetch_all(&mut *tx).await.map_err(db_err)? {
                members.insert((RoomId(row.get(0)), UserId(row.get(1))));
            }
        }

        // 3. each room's counter.
        let mut rooms: Vec<RoomId> = batch.iter().map(|m| m.room).collect();
        rooms.sort();
        rooms.dedup();
        let mut next_seq: HashMap<RoomId, Seq> = HashMap::new();
        for chunk in rooms.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT id, last_seq FROM rooms WHERE id IN (");
            let mut sep = q.separated(", ");
            for r in chunk {
                sep.push_bind(r.0);
            }
            q.push(")");
            for row in q.build().fetch_all(&mut *tx).await.map_err(db_err)? {
                next_seq.insert(RoomId(row.get(0)), row.get(1));
            }
        }

        // 4. decide, in order.
        enum Fate {
            Insert(Arc<Message>),
            SameAsEarlier(usize),
            Existing(RoomId, Seq),
            Refused,
        }
        let mut fates = Vec::with_capacity(batch.len());
        let mut in_batch: HashMap<(RoomId, UserId, &str), usize> = HashMap::new();
        for (i, m) in batch.iter().enumerate() {
            let cid = m.client_id.as_ref().map(|c| c.as_str());
            if let Some(cid) = cid {
                if let Some(&seq) = stored_ids.get(&(m.room, m.sender.id, cid.to_owned())) {
                    fates.push(Fate::Existing(m.room, seq));
                    continue;
                }
                if let Some(&first) = in_batch.get(&(m.room, m.sender.id, cid)) {
                    fates.push(Fate::SameAsEarlier(first));
                    continue;
                }
            }
            let Some(last) = next_seq.get_mut(&m.room) else {
                fates.push(Fate::Refused); // no such room
                continue;
            };
            if m.kind == MessageKind::Text && !members.contains(&(m.room, m.sender.id)) {
                fates.push(Fate::Refused);
                continue;
            }
            *last += 1;
            if let Some(cid) = cid {
                in_batch.insert((m.room, m.sender.id, cid), i);
            }
            fates.push(Fate::Insert(Arc::new(Message {
                room: m.room,
                seq: *last,
                kind: m.kind,
                sender: Some(m.sender.clone()),
                target: m.target.clone(),
                body: m.body.clone(),
                client_id: cid.map(str::to_owned),
                mentions: m.mentions.clone(),
                ts: m.ts,
                edited_at: None,
                deleted: false,
            })));
        }

        // 5. one multi-row insert per chunk.
        let new: Vec<&Arc<Message>> =
            fates.iter().filter_map(|f| if let Fate::Insert(m) = f { Some(m) } else { None }).collect();
        for chunk in new.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO messages (room_id, seq, kind, sender_id, target_id, body, client_id, mentions, created_at) ",
            );
            q.push_values(chunk, |mut b, m| {
                b.push_bind(m.room.0)
                    .push_bind(m.seq)
                    .push_bind(m.kind.as_str())
                    .push_bind(m.sender.as_ref().map(|u| u.id.0))
                    .push_bind(m.target.as_ref().map(|t| t.id.0))
                    .push_bind(m.body.clone())
                    .push_bind(m.client_id.clone())
                    .push_bind(mentions_to_text(&m.mentions))
                    .push_bind(m.ts);
            });
            q.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        for m in new.iter().filter(|m| !m.mentions.is_empty()) {
            for u in &m.mentions {
                sqlx::query("INSERT INTO mentions (room_id, seq, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(m.room.0)
                    .bind(m.seq)
                    .bind(u.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        // 6. counters.
        let touched: std::collections::HashSet<RoomId> = new.iter().map(|m| m.room).collect();
        for chunk in rooms.chunks(CHUNK) {
            let changed: Vec<(RoomId, Seq)> =
                chunk.iter().filter(|r| touched.contains(r)).map(|r| (*r, next_seq[r])).collect();
            if changed.is_empty() {
                continue;
            }
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("UPDATE rooms SET last_seq = CASE id");
            for (r, seq) in &changed {
                q.push(" WHEN ").push_bind(r.0).push(" THEN ").push_bind(*seq);
            }
            q.push(" END WHERE id IN (");
            let mut sep = q.separated(", ");
            for (r, _) in &changed {
                sep.push_bind(r.0);
            }
            q.push(")");
            q.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;

        // 7. answers; the originals of earlier-stored duplicates are read after the commit (rare).
        let mut out: Vec<Appended> = Vec::with_capacity(batch.len());
        for f in &fates {
            out.push(match f {
                Fate::Insert(m) => Appended::Stored(m.clone()),
                Fate::SameAsEarlier(first) => match &out[*first] {
                    Appended::Stored(m) | Appended::Duplicate(m) => Appended::Duplicate(m.clone()),
                    Appended::NotMember => Appended::NotMember,
                },
                Fate::Existing(room, seq) => match self.message_by_seq(*room, *seq).await? {
                    Some(m) => Appended::Duplicate(m),
                    None => Appended::NotMember,
                },
                Fate::Refused => Appended::NotMember,
            });
        }
        Ok(out)
    }

    async fn history(&self, room: RoomId, query: HistoryQuery) -> Result<HistoryPage> {
        // Fetch one extra row to learn `has_more` without a second query.
        let (sql, bound, limit) = match query {
            HistoryQuery::Latest { limit } => (
                format!("{MSG_SELECT} WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"),
                i64::MAX,
                limit,
            ),
            HistoryQuery::Before { before, limit } => (
                format!("{MSG_SELECT} WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"),
                before,
                limit,
            ),
            HistoryQuery::After { after, limit } => {
                (format!("{MSG_SELECT} WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3"), after, limit)
            }
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(room.0)
            .bind(bound)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let has_more = rows.len() > limit as usize;
        let mut messages = rows.iter().take(limit as usize).map(Self::message_from).collect::<Result<Vec<_>>>()?;
        if !matches!(query, HistoryQuery::After { .. }) {
            messages.reverse();
        }
        Ok(HistoryPage { messages, has_more })
    }

    async fn message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
        self.message_by_seq(room, seq).await
    }

    async fn edit_message(&self, room: RoomId, seq: Seq, body: &str, at: Millis) -> Result<Option<Arc<Message>>> {
        let res = sqlx::query(
            "UPDATE messages SET body = $1, edited_at = $2 WHERE room_id = $3 AND seq = $4 AND kind = 'text' AND NOT deleted",
        )
        .bind(body)
        .bind(at)
        .bind(room.0)
        .bind(seq)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Ok(None);
        }
        self.message_by_seq(room, seq).await
    }

    async fn delete_message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let res =
            sqlx::query("UPDATE messages SET body = '', mentions = '', deleted = TRUE WHERE room_id = $1 AND seq = $2")
                .bind(room.0)
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        sqlx::query("DELETE FROM mentions WHERE room_id = $1 AND seq = $2")
            .bind(room.0)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Ok(None);
        }
        self.message_by_seq(room, seq).await
    }

    async fn set_retention(&self, room: RoomId, secs: Option<i64>) -> Result<Room> {
        let res = sqlx::query("UPDATE rooms SET retention_secs = $1 WHERE id = $2")
            .bind(secs)
            .bind(room.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(Error::RoomNotFound);
        }
        self.room(room).await?.ok_or(Error::RoomNotFound)
    }

    async fn retention_rooms(&self) -> Result<Vec<(RoomId, i64)>> {
        let rows = sqlx::query("SELECT id, retention_secs FROM rooms WHERE retention_secs IS NOT NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| Ok((RoomId(r.try_get(0).map_err(db_err)?), r.try_get(1).map_err(db_err)?))).collect()
    }

    async fn purge_before(&self, room: RoomId, cutoff: Millis) -> Result<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        sqlx::query(
            "DELETE FROM mentions WHERE room_id = $1 AND seq IN \
             (SELECT seq FROM messages m WHERE m.room_id = $2 AND m.created_at < $3)",
        )
        .bind(room.0)
        .bind(room.0)
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let res = sqlx::query("DELETE FROM messages WHERE room_id = $1 AND created_at < $2")
            .bind(room.0)
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(res.rows_affected())
    }

    async fn create_webhook(&self, room: RoomId, url: &WebhookUrl, secret: &str, by: UserId) -> Result<Webhook> {
        let now = now_millis();
        let row = sqlx::query(
            "INSERT INTO webhooks (room_id, url, secret, created_by, created_at, delivered_seq) \
             SELECT $1, $2, $3, $4, $5, last_seq FROM rooms WHERE id = $6 RETURNING id, delivered_seq",
        )
        .bind(room.0)
        .bind(url.as_str())
        .bind(secret)
        .bind(by.0)
        .bind(now)
        .bind(room.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .ok_or(Error::RoomNotFound)?;
        Ok(Webhook {
            id: row.try_get(0).map_err(db_err)?,
            delivered_seq: row.try_get(1).map_err(db_err)?,
            room,
            url: url.as_str().to_owned(),
            secret: secret.to_owned(),
            created_by: by,
            created_at: now,
        })
    }

    async fn webhooks(&self, room: RoomId) -> Result<Vec<Webhook>> {
        self.webhooks_for(&[room]).await
    }

    async fn webhooks_for(&self, rooms: &[RoomId]) -> Result<Vec<Webhook>> {
        let mut out = Vec::new();
        for chunk in rooms.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "SELECT id, room_id, url, secret, created_by, created_at, delivered_seq FROM webhooks WHERE room_id IN (",
            );
            let mut sep = q.separated(", ");
            for r in chunk {
                sep.push_bind(r.0);
            }
            q.push(") ORDER BY id");
            for row in q.build().fetch_all(&self.pool).await.map_err(db_err)? {
                out.push(Self::webhook_from(&row)?);
            }
        }
        Ok(out)
    }

    async fn webhook(&self, id: i64) -> Result<Option<Webhook>> {
        let row = sqlx::query(
            "SELECT id, room_id, url, secret, created_by, created_at, delivered_seq FROM webhooks WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(Self::webhook_from).transpose()
    }

    async fn all_webhooks(&self) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(
            "SELECT id, room_id, url, secret, created_by, created_at, delivered_seq FROM webhooks ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(Self::webhook_from).collect()
    }

    async fn advance_webhook(&self, id: i64, from: Seq, to: Seq) -> Result<bool> {
        let res = sqlx::query("UPDATE webhooks SET delivered_seq = $1 WHERE id = $2 AND delivered_seq = $3")
            .bind(to)
            .bind(id)
            .bind(from)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn delete_webhook(&self, room: RoomId, id: i64) -> Result<bool> {
        let res = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND room_id = $2")
            .bind(id)
            .bind(room.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
