//! The PostgreSQL store: the backend for several nodes sharing one database. Same statements as the
//! SQLite store where the dialects agree (runtime queries, `$n` placeholders), its own embedded
//! migrations (`migrations/postgres`).
//!
//! Concurrency: transactions run at READ COMMITTED. What SQLite gets from its single writer
//! (`BEGIN IMMEDIATE`), this store gets from row locks:
//! - [`Store::append`] locks the counter row of every room in the batch up front, in ascending id order
//!   (so two batches touching the same rooms can never deadlock), and holds the locks until commit. All
//!   appends to a room are therefore serialised, whichever node they come from: `seq` stays gap-free and
//!   strictly increasing, and the duplicate check on `(room, sender, client_id)` cannot race.
//! - The lock is `FOR NO KEY UPDATE` (what the `UPDATE rooms SET last_seq` takes anyway), not `FOR UPDATE`:
//!   it excludes other appends to the room, but not the foreign-key checks of rows inserted into it
//!   (members, invites, bans), so joins never wait for a busy room.
//! - The sender's membership row is read `FOR KEY SHARE`: a concurrent leave, kick or ban waits for the
//!   append to commit, so a message is stored only from someone who was a member when it committed.
//!
//! Durability: a commit returns once the WAL is flushed (PostgreSQL's default `synchronous_commit=on`).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use super::{Credentials, Session, Store};
use crate::core::domain::*;
use crate::core::error::{Error, Result};

pub struct PgStore {
    pool: PgPool,
}

/// Connections per node: appends to one room are serialised by its row lock anyway, so more mostly
/// helps reads and appends to different rooms.
const MAX_CONNECTIONS: u32 = 16;

fn db_err(e: sqlx::Error) -> Error {
    Error::Internal(anyhow::Error::new(e).context("database (postgres)"))
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

fn mentions_to_text(ids: &[UserId]) -> String {
    ids.iter().map(|u| u.0.to_string()).collect::<Vec<_>>().join(",")
}

fn mentions_from_text(s: &str) -> Vec<UserId> {
    s.split(',').filter_map(|x| x.parse().ok()).map(UserId).collect()
}

impl PgStore {
    /// Connects to a `postgres://` URL and runs the embedded migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
        Self::connect_with(opts).await
    }

    /// Connects with explicit options (e.g. a `search_path`) and runs the embedded migrations.
    pub async fn connect_with(options: PgConnectOptions) -> anyhow::Result<Self> {
        Self::connect_pool(options, PgPoolOptions::new().max_connections(MAX_CONNECTIONS)).await
    }

    async fn connect_pool(options: PgConnectOptions, pool: PgPoolOptions) -> anyhow::Result<Self> {
        let pool = pool
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await.context("running the PostgreSQL migrations")?;
        Ok(PgStore { pool })
    }

    fn room_from(row: &PgRow) -> Result<Room> {
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

    fn message_from(row: &PgRow) -> Result<Arc<Message>> {
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

    /// The message `sender` already stored in `room` under `client_id`, if any.
    async fn by_client_id(
        conn: &mut PgConnection,
        room: RoomId,
        sender: UserId,
        client_id: &str,
    ) -> Result<Option<Arc<Message>>> {
        let sql =
            sqlx::AssertSqlSafe(format!("{MSG_SELECT} WHERE m.room_id = $1 AND m.sender_id = $2 AND m.client_id = $3"));
        let row = sqlx::query(sql)
            .bind(room.0)
            .bind(sender.0)
            .bind(client_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        row.as_ref().map(Self::message_from).transpose()
    }

    fn webhook_from(row: &PgRow) -> Result<Webhook> {
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

    fn user_from(row: &PgRow) -> Result<User> {
        Ok(User {
            id: UserId(row.try_get("id").map_err(db_err)?),
            username: row.try_get("username").map_err(db_err)?,
            display_name: row.try_get("display_name").map_err(db_err)?,
        })
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
impl Store for PgStore {
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
                id: UserId(row.try_get(0).map_err(db_err)?),
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
        row.map(|r| {
            Ok(Session {
                id: id.clone(),
                user: UserId(r.try_get(0).map_err(db_err)?),
                expires_at: r.try_get(1).map_err(db_err)?,
                revoked: r.try_get(2).map_err(db_err)?,
            })
        })
        .transpose()
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
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
            Ok(row) => row.try_get(0).map_err(db_err)?,
            // Dropping the transaction rolls it back.
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let now = now_millis();
        // ON CONFLICT waits for a concurrent creator of the same pair to commit (or roll back), then
        // inserts nothing: no error, so the transaction stays usable and nothing is logged as failed.
        let res = sqlx::query(
            "INSERT INTO rooms (name, name_key, kind, visibility, created_by, created_at) \
             VALUES ($1, $2, 'direct', 'private', $3, $4) ON CONFLICT (name_key) DO NOTHING RETURNING id",
        )
        .bind(format!("dm-{lo}-{hi}"))
        .bind(&key)
        .bind(a.0)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await;
        let id: i64 = match res {
            Ok(Some(row)) => row.try_get(0).map_err(db_err)?,
            // Opened concurrently by the other side: theirs is the one (committed, so visible now).
            Ok(None) => {
                drop(tx);
                return Ok((self.room_by_key(&key).await?.ok_or(Error::RoomNotFound)?, false));
            }
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
            let role: String = row.try_get("role").map_err(db_err)?;
            let peer = match (room.kind, row.try_get::<Option<i64>, _>("other").map_err(db_err)?) {
                (RoomKind::Direct, Some(other)) => self.user(UserId(other)).await?,
                _ => None,
            };
            let last_message =
                if room.last_seq > 0 { self.message_by_seq(room.id, room.last_seq).await? } else { None };
            out.push(RoomView {
                role: Role::parse(&role).unwrap_or(Role::Member),
                last_read: row.try_get("last_read").map_err(db_err)?,
                unread: row.try_get("unread").map_err(db_err)?,
                mentions: row.try_get("mentions").map_err(db_err)?,
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
        row.map(|r| Ok(Role::parse(r.try_get::<&str, _>(0).map_err(db_err)?).unwrap_or(Role::Member))).transpose()
    }

    async fn add_member(&self, room: RoomId, user: UserId, role: Role) -> Result<bool> {
        // Joining uses up an invitation.
        sqlx::query("DELETE FROM invites WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
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
        let res = sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
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
        let row = sqlx::query("SELECT 1 FROM invites WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn ban(&self, room: RoomId, user: UserId, by: UserId) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
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
        let res = sqlx::query("DELETE FROM bans WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM bans WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> Result<Seq> {
        let row = sqlx::query(
            "UPDATE members SET last_read = GREATEST(last_read, LEAST($1, (SELECT last_seq FROM rooms WHERE id = $2))) \
             WHERE room_id = $2 AND user_id = $3 RETURNING last_read",
        )
        .bind(seq)
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| r.try_get(0).map_err(db_err)).transpose()?.ok_or(Error::NotAMember)
    }

    async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Lock every room of the batch up front, in ascending id order: rows are locked in the order the
        // sorted result is produced, so concurrent batches over overlapping rooms queue instead of
        // deadlocking. A room missing here does not exist (its messages are refused below).
        let mut room_ids: Vec<i64> = batch.iter().map(|m| m.room.0).collect();
        room_ids.sort_unstable();
        room_ids.dedup();
        let locked = sqlx::query("SELECT id, last_seq FROM rooms WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind(&room_ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        // Per room: (last_seq when locked, last seq assigned in this batch).
        let mut seqs: HashMap<RoomId, (Seq, Seq)> = HashMap::with_capacity(locked.len());
        for row in &locked {
            let last: i64 = row.try_get(1).map_err(db_err)?;
            seqs.insert(RoomId(row.try_get(0).map_err(db_err)?), (last, last));
        }
        let mut membership: HashMap<(RoomId, UserId), bool> = HashMap::new();
        let mut out = Vec::with_capacity(batch.len());
        for m in batch {
            // With the room locked, no other transaction can store this client id meanwhile; earlier
            // entries of this batch are visible to this transaction.
            if let Some(cid) = &m.client_id
                && let Some(orig) = Self::by_client_id(&mut tx, m.room, m.sender.id, cid.as_str()).await?
            {
                out.push(Appended::Duplicate(orig));
                continue;
            }
            if m.kind == MessageKind::Text {
                let member = match membership.get(&(m.room, m.sender.id)) {
                    Some(&b) => b,
                    None => {
                        // KEY SHARE: a concurrent leave/kick/ban waits for this transaction to commit.
                        let b = sqlx::query("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2 FOR KEY SHARE")
                            .bind(m.room.0)
                            .bind(m.sender.id.0)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?
                            .is_some();
                        membership.insert((m.room, m.sender.id), b);
                        b
                    }
                };
                if !member {
                    out.push(Appended::NotMember);
                    continue;
                }
            }
            let Some((_, last)) = seqs.get_mut(&m.room) else {
                out.push(Appended::NotMember);
                continue;
            };
            let seq = *last + 1;
            let client_id = m.client_id.as_ref().map(|c| c.as_str().to_owned());
            // The unique partial index backs the check above: should a duplicate get here anyway, it
            // inserts nothing and answers the original, and the seq is not used up.
            let inserted = sqlx::query(
                "INSERT INTO messages (room_id, seq, kind, sender_id, target_id, body, client_id, mentions, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (room_id, sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING RETURNING seq",
            )
            .bind(m.room.0)
            .bind(seq)
            .bind(m.kind.as_str())
            .bind(m.sender.id.0)
            .bind(m.target.as_ref().map(|t| t.id.0))
            .bind(&m.body)
            .bind(&client_id)
            .bind(mentions_to_text(&m.mentions))
            .bind(m.ts)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            if inserted.is_none() {
                let cid = client_id.as_deref().unwrap_or_default();
                let orig = Self::by_client_id(&mut tx, m.room, m.sender.id, cid).await?.ok_or_else(|| {
                    Error::internal(anyhow::anyhow!("client id conflict without an original message"))
                })?;
                out.push(Appended::Duplicate(orig));
                continue;
            }
            *last = seq;
            if !m.mentions.is_empty() {
                let ids: Vec<i64> = m.mentions.iter().map(|u| u.0).collect();
                sqlx::query(
                    "INSERT INTO mentions (room_id, seq, user_id) SELECT $1, $2, u FROM UNNEST($3::BIGINT[]) AS u \
                     ON CONFLICT DO NOTHING",
                )
                .bind(m.room.0)
                .bind(seq)
                .bind(&ids)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            out.push(Appended::Stored(Arc::new(Message {
                room: m.room,
                seq,
                kind: m.kind,
                sender: Some(m.sender.clone()),
                target: m.target.clone(),
                body: m.body.clone(),
                client_id,
                mentions: m.mentions.clone(),
                ts: m.ts,
                edited_at: None,
                deleted: false,
            })));
        }
        for (room, (was, last)) in &seqs {
            if last != was {
                sqlx::query("UPDATE rooms SET last_seq = $1 WHERE id = $2")
                    .bind(last)
                    .bind(room.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)?;
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
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
        for chunk in rooms.chunks(500) {
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
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

/// Test support: a throwaway schema per test run, so runs never see each other's rows.
#[cfg(test)]
pub(crate) mod testing {
    use std::future::Future;
    use std::panic::AssertUnwindSafe;
    use std::str::FromStr;

    use futures_util::FutureExt as _;
    use sqlx::postgres::PgConnectOptions;
    use sqlx::{Connection, PgConnection};

    /// The variable that points the PostgreSQL tests at a server.
    pub const URL_VAR: &str = "PARLEY_TEST_POSTGRES_URL";

    /// The test database URL, or `None` (after telling why on stderr) when the tests are not configured.
    pub fn url_or_skip(test: &str) -> Option<String> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ => {
                eprintln!("SKIPPED {test}: set {URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test)");
                None
            }
        }
    }

    /// Creates a schema `parley_test_<random hex>`, runs `body` with connect options whose `search_path`
    /// is that schema, then drops the schema (also when `body` panics). Panics when the server is
    /// unreachable: a configured test must fail rather than pass silently.
    pub async fn with_schema<F, Fut>(url: &str, body: F)
    where
        F: FnOnce(PgConnectOptions) -> Fut,
        Fut: Future<Output = ()>,
    {
        let base = PgConnectOptions::from_str(url).unwrap_or_else(|e| panic!("{URL_VAR}={url:?} is not a URL: {e}"));
        let mut admin = PgConnection::connect_with(&base)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url} ({URL_VAR}): {e}"));
        let schema = format!("parley_test_{}", hex::encode(rand::random::<[u8; 8]>()));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.unwrap();
        // The schema's name doubles as the application name, to find this test's sessions afterwards.
        let opts = base.options([("search_path", schema.as_str())]).application_name(&schema);
        let outcome = AssertUnwindSafe(body(opts)).catch_unwind().await;
        let dropped = drop_schema(&mut admin, &schema).await;
        let _ = admin.close().await;
        match (outcome, dropped) {
            (Ok(()), Ok(())) => {}
            (Ok(()), Err(e)) => panic!("dropping schema {schema}: {e}"),
            (Err(panic), dropped) => {
                if let Err(e) = dropped {
                    eprintln!("dropping schema {schema} after a failure: {e}");
                }
                std::panic::resume_unwind(panic);
            }
        }
    }

    /// Drops the test schema. After a failure, sessions of the test's pools may still be running
    /// statements (their tasks were dropped, not their server-side work): end them first, and retry
    /// should the drop still deadlock with one of them.
    async fn drop_schema(admin: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
        let mut attempt = 0;
        loop {
            // Best effort (needs the same role or pg_signal_backend); the retry covers the rest.
            let _ = sqlx::query(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
            )
            .bind(schema)
            .execute(&mut *admin)
            .await;
            match sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                .execute(&mut *admin)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt >= 4 => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::testing::{url_or_skip, with_schema};
    use super::*;

    fn text(room: RoomId, sender: &User, body: String, cid: Option<String>) -> NewMessage {
        NewMessage {
            room,
            kind: MessageKind::Text,
            sender: sender.clone(),
            target: None,
            body,
            client_id: cid.map(|c| ClientMsgId::parse(&c).unwrap()),
            mentions: vec![],
            ts: now_millis(),
        }
    }

    /// Every seq of `room`, read back page by page.
    async fn all_seqs(store: &PgStore, room: RoomId) -> Vec<Seq> {
        let mut seqs = Vec::new();
        loop {
            let after = seqs.last().copied().unwrap_or(0);
            let page =
                store.history(room, HistoryQuery::After { after, limit: HistoryQuery::MAX_LIMIT }).await.unwrap();
            seqs.extend(page.messages.iter().map(|m| m.seq));
            if !page.has_more {
                return seqs;
            }
        }
    }

    /// Four nodes (four pools) append to the same room at once, each with many batches in flight; every
    /// batch also writes to a second room, half of them listing that room first, so lock ordering is
    /// exercised too. Both rooms end up with exactly 1..=N: no gap, no duplicate.
    #[tokio::test]
    async fn concurrent_nodes_keep_seqs_gap_free() {
        const NODES: usize = 4;
        const PER_NODE: usize = 200;
        const BATCH: usize = 10;
        let Some(url) = url_or_skip("concurrent_nodes_keep_seqs_gap_free") else { return };
        with_schema(&url, |opts| async move {
            let mut nodes = Vec::new();
            for _ in 0..NODES {
                let pool = PgPoolOptions::new().max_connections(4);
                nodes
                    .push(Arc::new(PgStore::connect_pool(opts.clone(), pool).await.expect("connecting to PostgreSQL")));
            }
            let alice = nodes[0]
                .create_user(&Username::parse("alice").unwrap(), &DisplayName::parse("Alice").unwrap(), "h")
                .await
                .unwrap();
            let busy =
                nodes[0].create_room(&RoomName::parse("busy").unwrap(), Visibility::Public, alice.id).await.unwrap();
            let side =
                nodes[0].create_room(&RoomName::parse("side").unwrap(), Visibility::Public, alice.id).await.unwrap();

            let (busy_id, side_id) = (busy.id, side.id);
            let mut tasks = tokio::task::JoinSet::new();
            for (n, node) in nodes.iter().enumerate() {
                for b in 0..PER_NODE / BATCH {
                    let (node, alice) = (node.clone(), alice.clone());
                    tasks.spawn(async move {
                        let mut batch: Vec<NewMessage> = (0..BATCH)
                            .map(|i| text(busy_id, &alice, format!("n{n} b{b} m{i}"), Some(format!("n{n}-b{b}-m{i}"))))
                            .collect();
                        let side_msg = text(side_id, &alice, format!("n{n} b{b} side"), None);
                        if (n + b) % 2 == 0 {
                            batch.insert(0, side_msg);
                        } else {
                            batch.push(side_msg);
                        }
                        node.append(&batch).await.unwrap()
                    });
                }
            }
            let mut busy_seqs = Vec::new();
            let mut side_seqs = Vec::new();
            while let Some(out) = tasks.join_next().await {
                for a in out.unwrap() {
                    let Appended::Stored(m) = a else { panic!("expected Stored, got {a:?}") };
                    if m.room == busy.id { busy_seqs.push(m.seq) } else { side_seqs.push(m.seq) }
                }
            }
            let total = (NODES * PER_NODE) as Seq;
            let side_total = (NODES * PER_NODE / BATCH) as Seq;
            busy_seqs.sort_unstable();
            side_seqs.sort_unstable();
            assert_eq!(busy_seqs, (1..=total).collect::<Vec<_>>(), "answered seqs");
            assert_eq!(side_seqs, (1..=side_total).collect::<Vec<_>>(), "answered seqs (second room)");
            assert_eq!(all_seqs(&nodes[1], busy.id).await, (1..=total).collect::<Vec<_>>(), "stored seqs");
            assert_eq!(all_seqs(&nodes[2], side.id).await, (1..=side_total).collect::<Vec<_>>());
            assert_eq!(nodes[3].room(busy.id).await.unwrap().unwrap().last_seq, total);

            // The same client id sent through every node at once: stored once, the others answer it.
            let mut tasks = tokio::task::JoinSet::new();
            for node in &nodes {
                let (node, alice) = (node.clone(), alice.clone());
                tasks.spawn(async move {
                    node.append(&[text(busy_id, &alice, "once".into(), Some("same".into()))]).await.unwrap()
                });
            }
            let mut stored = Vec::new();
            let mut dups = HashSet::new();
            while let Some(out) = tasks.join_next().await {
                match out.unwrap().pop().unwrap() {
                    Appended::Stored(m) => stored.push(m.seq),
                    Appended::Duplicate(m) => {
                        dups.insert(m.seq);
                    }
                    Appended::NotMember => panic!("alice is a member"),
                }
            }
            assert_eq!(stored, vec![total + 1], "stored exactly once");
            assert_eq!(dups, HashSet::from([total + 1]), "the others answer the original");
            assert_eq!(all_seqs(&nodes[0], busy.id).await.len() as Seq, total + 1);

            // Two nodes opening the same direct conversation at once get the same room.
            let bob = nodes[0]
                .create_user(&Username::parse("bob").unwrap(), &DisplayName::parse("Bob").unwrap(), "h")
                .await
                .unwrap();
            let (x, y) = tokio::join!(nodes[0].open_direct(alice.id, bob.id), nodes[1].open_direct(bob.id, alice.id));
            let ((x, x_created), (y, y_created)) = (x.unwrap(), y.unwrap());
            assert_eq!(x.id, y.id);
            assert!(x_created ^ y_created, "exactly one call created it");
            assert_eq!(x.member_count, 2);

            for node in &nodes {
                node.close().await;
            }
        })
        .await;
    }
}
