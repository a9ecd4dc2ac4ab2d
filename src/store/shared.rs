//! The [`Store`](super::Store) implementation the SQL stores share: every statement that reads the same
//! in SQLite and PostgreSQL is written once here, in [`impl_sql_store!`]; what differs (transaction
//! start, upserts, locking, SQL functions, the batched append) each backend provides as its [`Dialect`].
//!
//! A macro rather than generic functions: expanded per backend, the statements run on the concrete pool
//! and row types, where generic code would carry sqlx's encode/decode/executor bounds on every call.
//! That one macro is the SQL stores' whole shared `impl Store`, which is why this file is long.

use async_trait::async_trait;

use crate::core::domain::*;
use crate::core::error::Result;
use crate::core::search::{SearchHits, SearchQuery};

/// What a SQL backend does its own way; [`impl_sql_store!`] builds the rest of the `Store` on it.
#[async_trait]
pub(super) trait Dialect: Send + Sync {
    type Db: sqlx::Database;

    /// `UPDATE members SET last_read = max(last_read, min($1, the room's last_seq)) WHERE room_id = $2
    /// AND user_id = $3 RETURNING last_read`, in the dialect's spelling of max and min.
    const MARK_READ: &'static str;

    /// Inserts a direct room `($1 = name, $2 = name_key, $3 = created_by, $4 = created_at)` returning
    /// its id; when another caller created the pair's room first, either fails as a unique violation or
    /// returns no row.
    const INSERT_DIRECT: &'static str;

    /// Reads message `($1 = room, $2 = seq)` and locks it against other writers of its reactions until
    /// the transaction ends (`FOR UPDATE` where the dialect has row locks).
    const LOCK_MESSAGE: &'static str;

    /// Reads room `$1`'s id and locks the room row against other writers until the transaction ends
    /// (`FOR NO KEY UPDATE` where the dialect has row locks; SQLite's `BEGIN IMMEDIATE` already
    /// serializes writers). Joins take it so that two first joins of an empty room cannot both see it
    /// empty and both become its owner.
    const LOCK_ROOM: &'static str;

    /// The `FROM` item of the greeting's unread count: `messages m`, pinned to the `messages_unread`
    /// index where the dialect can say so (see [`super::connect_sql::room_views`]).
    const UNREAD_FROM: &'static str;

    /// Starts a transaction that will write.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, Self::Db>>;
    /// [`Store::append`](super::Store::append): how seqs are assigned safely is the dialect's business.
    async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>>;
    /// [`Store::probe_write`](super::Store::probe_write): a durable write that changes nothing visible.
    async fn probe_write(&self) -> Result<()>;
    /// [`Store::search`](super::Store::search): each backend has its own full-text index.
    async fn search(&self, user: UserId, query: &SearchQuery) -> Result<SearchHits>;
    /// Stops whatever the dialect runs besides the pool (called by `close` before the pool closes).
    async fn close_writer(&self) {}
}

/// Implements `Store` for `$store` (a struct with a `pool` field, implementing [`Dialect`]) from the
/// shared statements, plus the private helpers they use, open to the dialect code too (`message_by_seq`,
/// `room_by_key`, …). Expects `db_err: fn(sqlx::Error) -> Error` in the invoking module.
macro_rules! impl_sql_store {
    ($store:ty) => {
        // A block of its own, so these imports stay out of the backend's module.
        const _: () = {
            use std::sync::Arc;

            use sqlx::Row as _;

            use $crate::core::domain::*;
            use $crate::core::error::{Error, Result};
            use $crate::store::rows::{
                FILE_COLS, MSG_SELECT, ROOM_COLS, attach_files, file_from, is_unique_violation, mentions_to_text, message_from, role_from, room_from, user_from, webhook_from,
            };
            use $crate::store::shared::Dialect;
            use $crate::store::{Credentials, Session, Store};

            impl $store {
                /// The files shared by messages `lo..=hi` of `room`, in upload order.
                async fn files_between(&self, room: RoomId, lo: Seq, hi: Seq) -> Result<Vec<FileMeta>> {
                    let sql = sqlx::AssertSqlSafe($crate::store::connect_sql::files_between());
                    let rows = sqlx::query(sql).bind(room.0).bind(lo).bind(hi).fetch_all(&self.pool).await.map_err(db_err)?;
                    rows.iter().map(file_from).collect()
                }

                /// One page of a room's history, or of one thread of it (`thread`: its root), with files.
                async fn page(&self, room: RoomId, thread: Option<Seq>, query: HistoryQuery) -> Result<HistoryPage> {
                    let (cmp, order, bound, limit) = match query {
                        HistoryQuery::Latest { limit } => ("<", "DESC", i64::MAX, limit),
                        HistoryQuery::Before { before, limit } => ("<", "DESC", before, limit),
                        HistoryQuery::After { after, limit } => (">", "ASC", after, limit),
                    };
                    let in_thread = if thread.is_some() { " AND m.thread = $4" } else { "" };
                    // Fetch one extra row to learn `has_more` without a second query.
                    let sql = format!(
                        "{MSG_SELECT} WHERE m.room_id = $1 AND m.seq {cmp} $2{in_thread} ORDER BY m.seq {order} LIMIT $3"
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(room.0).bind(bound).bind(i64::from(limit) + 1);
                    if let Some(root) = thread {
                        q = q.bind(root);
                    }
                    let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
                    let has_more = rows.len() > limit as usize;
                    let mut messages =
                        rows.iter().take(limit as usize).map(message_from).collect::<Result<Vec<_>>>()?;
                    if !matches!(query, HistoryQuery::After { .. }) {
                        messages.reverse();
                    }
                    let messages = self.with_files(room, messages).await?;
                    Ok(HistoryPage { messages, has_more })
                }

                async fn with_files(&self, room: RoomId, mut messages: Vec<Arc<Message>>) -> Result<Vec<Arc<Message>>> {
                    let lo = messages.iter().map(|m| m.seq).min();
                    let hi = messages.iter().map(|m| m.seq).max();
                    if let (Some(lo), Some(hi)) = (lo, hi) {
                        let files = self.files_between(room, lo, hi).await?;
                        attach_files(&mut messages, files);
                    }
                    Ok(messages)
                }

                /// Records `at` as the message's last reaction change.
                async fn reactions_touched(
                    tx: &mut sqlx::Transaction<'static, <Self as Dialect>::Db>,
                    room: RoomId,
                    seq: Seq,
                    at: Millis,
                ) -> Result<()> {
                    sqlx::query("UPDATE messages SET reactions_at = $1 WHERE room_id = $2 AND seq = $3")
                        .bind(at)
                        .bind(room.0)
                        .bind(seq)
                        .execute(&mut **tx)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }

                async fn message_by_seq(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
                    let m = self.message_row(room, seq).await?;
                    Ok(match m {
                        Some(m) => self.with_files(room, vec![m]).await?.pop(),
                        None => None,
                    })
                }

                async fn message_row(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
                    let sql = sqlx::AssertSqlSafe($crate::store::connect_sql::message_row());
                    let row =
                        sqlx::query(sql).bind(room.0).bind(seq).fetch_optional(&self.pool).await.map_err(db_err)?;
                    row.as_ref().map(message_from).transpose()
                }

                async fn room_by_key(&self, key: &str) -> Result<Option<Room>> {
                    let sql = sqlx::AssertSqlSafe(format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.name_key = $1"));
                    let row = sqlx::query(sql).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
                    row.as_ref().map(room_from).transpose()
                }

                async fn rooms_where(&self, clause: &'static str, bind: Option<i64>) -> Result<Vec<Room>> {
                    let sql =
                        sqlx::AssertSqlSafe(format!("SELECT {ROOM_COLS} FROM rooms r WHERE {clause} ORDER BY r.id"));
                    let mut q = sqlx::query(sql);
                    if let Some(b) = bind {
                        q = q.bind(b);
                    }
                    let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
                    rows.iter().map(room_from).collect()
                }

                /// Runs a statement keyed by `($1 = room, $2 = user)`; whether it changed a row.
                async fn pair_changes(&self, sql: &'static str, room: RoomId, user: UserId) -> Result<bool> {
                    let res = sqlx::query(sql).bind(room.0).bind(user.0).execute(&self.pool).await.map_err(db_err)?;
                    Ok(res.rows_affected() > 0)
                }

                /// Whether a query keyed by `($1 = room, $2 = user)` finds a row.
                async fn pair_exists(&self, sql: &'static str, room: RoomId, user: UserId) -> Result<bool> {
                    let row =
                        sqlx::query(sql).bind(room.0).bind(user.0).fetch_optional(&self.pool).await.map_err(db_err)?;
                    Ok(row.is_some())
                }
            }

            #[async_trait::async_trait]
            impl Store for $store {
                async fn create_user(
                    &self,
                    username: &Username,
                    display_name: &DisplayName,
                    password_hash: &str,
                ) -> Result<User> {
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
                    let row = sqlx::query(
                        "SELECT id, username, display_name, password_hash FROM users WHERE username_key = $1",
                    )
                    .bind(username_key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.map(|r| {
                        Ok(Credentials {
                            user: user_from(&r)?,
                            password_hash: r.try_get("password_hash").map_err(db_err)?,
                        })
                    })
                    .transpose()
                }

                async fn user(&self, id: UserId) -> Result<Option<User>> {
                    let row = sqlx::query($crate::store::connect_sql::USER)
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(user_from).transpose()
                }

                async fn user_by_name(&self, username_key: &str) -> Result<Option<User>> {
                    let row = sqlx::query("SELECT id, username, display_name FROM users WHERE username_key = $1")
                        .bind(username_key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(user_from).transpose()
                }

                async fn set_display_name(&self, id: UserId, name: &DisplayName) -> Result<User> {
                    let row = sqlx::query(
                        "UPDATE users SET display_name = $1 WHERE id = $2 RETURNING id, username, display_name",
                    )
                    .bind(name.as_str())
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.as_ref().map(user_from).transpose()?.ok_or(Error::UserNotFound)
                }

                async fn create_session(&self, s: &Session) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO sessions (id, user_id, created_at, expires_at, revoked) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
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
                    let row = sqlx::query($crate::store::connect_sql::SESSION)
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
                    let mut tx = <Self as Dialect>::begin(self).await?;
                    let now = now_millis();
                    let res = sqlx::query(
                        "INSERT INTO rooms (name, name_key, visibility, created_by, created_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
                    let mut tx = <Self as Dialect>::begin(self).await?;
                    let now = now_millis();
                    let res = sqlx::query(<Self as Dialect>::INSERT_DIRECT)
                        .bind(format!("dm-{lo}-{hi}"))
                        .bind(&key)
                        .bind(a.0)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await;
                    let id: i64 = match res {
                        Ok(Some(row)) => row.try_get(0).map_err(db_err)?,
                        Err(e) if !is_unique_violation(&e) => return Err(db_err(e)),
                        // Opened concurrently by the other side: theirs is the one (committed, so visible now).
                        Ok(None) | Err(_) => {
                            drop(tx);
                            return Ok((self.room_by_key(&key).await?.ok_or(Error::RoomNotFound)?, false));
                        }
                    };
                    for u in [lo, hi] {
                        sqlx::query(
                            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'member', $3)",
                        )
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
                    let sql = sqlx::AssertSqlSafe($crate::store::connect_sql::user_rooms());
                    let rows = sqlx::query(sql).bind(user.0).fetch_all(&self.pool).await.map_err(db_err)?;
                    rows.iter().map(room_from).collect()
                }

                async fn room_views(&self, user: UserId) -> Result<Vec<RoomView>> {
                    // One query for every room of the user (a connect's greeting reads this, so its cost
                    // is per room of the user, never per member of a room); the other member is looked
                    // up only for direct conversations. The counts stop at the room's `last_seq` read in the
                    // same statement: a message stored meanwhile is not counted unread in a view whose
                    // `last_seq` does not include it.
                    let sql = sqlx::AssertSqlSafe($crate::store::connect_sql::room_views(<Self as Dialect>::UNREAD_FROM));
                    let rows = sqlx::query(sql).bind(user.0).fetch_all(&self.pool).await.map_err(db_err)?;
                    let mut out = Vec::with_capacity(rows.len());
                    for row in rows {
                        let room = room_from(&row)?;
                        let peer = match (room.kind, row.try_get::<Option<i64>, _>("other").map_err(db_err)?) {
                            (RoomKind::Direct, Some(other)) => self.user(UserId(other)).await?,
                            _ => None,
                        };
                        let last_message =
                            if room.last_seq > 0 { self.message_by_seq(room.id, room.last_seq).await? } else { None };
                        let notify = NotifyLevel::parse(&row.try_get::<String, _>("notify").map_err(db_err)?)
                            .unwrap_or_default();
                        let muted: bool = row.try_get("muted").map_err(db_err)?;
                        out.push(RoomView {
                            role: role_from(&row)?,
                            last_read: row.try_get("last_read").map_err(db_err)?,
                            unread: notify.unread_shown(muted, row.try_get("unread").map_err(db_err)?),
                            notify,
                            muted,
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
                        "SELECT u.id, u.username, u.display_name, m.role \
                         FROM members m JOIN users u ON u.id = m.user_id \
                         WHERE m.room_id = $1 ORDER BY u.id",
                    )
                    .bind(room.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(|r| Ok(Member { user: user_from(r)?, role: role_from(r)? })).collect()
                }

                async fn role(&self, room: RoomId, user: UserId) -> Result<Option<Role>> {
                    let row = sqlx::query("SELECT role FROM members WHERE room_id = $1 AND user_id = $2")
                        .bind(room.0)
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(role_from).transpose()
                }

                async fn add_member(&self, room: RoomId, user: UserId, role: Role) -> Result<bool> {
                    // Joining uses up an invitation.
                    self.pair_changes("DELETE FROM invites WHERE room_id = $1 AND user_id = $2", room, user).await?;
                    // The first to join a group room left without members becomes its owner; the room row
                    // is locked so that two first joins at once cannot both see the room empty.
                    let mut tx = <Self as Dialect>::begin(self).await?;
                    sqlx::query(<Self as Dialect>::LOCK_ROOM).bind(room.0).execute(&mut *tx).await.map_err(db_err)?;
                    let res = sqlx::query(
                        "INSERT INTO members (room_id, user_id, role, joined_at) \
                         SELECT $1, $2, CASE WHEN EXISTS (SELECT 1 FROM members WHERE room_id = $3) \
                           OR (SELECT kind FROM rooms WHERE id = $4) <> 'group' THEN $5 ELSE 'owner' END, $6 \
                         WHERE TRUE ON CONFLICT DO NOTHING",
                    )
                    .bind(room.0)
                    .bind(user.0)
                    .bind(room.0)
                    .bind(room.0)
                    .bind(role.as_str())
                    .bind(now_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
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

                async fn add_invite(&self, room: RoomId, user: UserId, by: UserId, at: Millis) -> Result<bool> {
                    let res = sqlx::query(
                        "INSERT INTO invites (room_id, user_id, invited_by, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(room.0)
                    .bind(user.0)
                    .bind(by.0)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(res.rows_affected() > 0)
                }

                async fn is_invited(&self, room: RoomId, user: UserId) -> Result<bool> {
                    self.pair_exists("SELECT 1 FROM invites WHERE room_id = $1 AND user_id = $2", room, user).await
                }

                async fn invites_of(&self, user: UserId) -> Result<Vec<Invite>> {
                    let rows = sqlx::query(
                        "SELECT i.room_id, i.created_at, u.id, u.username, u.display_name \
                         FROM invites i JOIN users u ON u.id = i.invited_by \
                         WHERE i.user_id = $1 ORDER BY i.created_at, i.room_id",
                    )
                    .bind(user.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let mut out = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let room_id: i64 = row.try_get("room_id").map_err(db_err)?;
                        let Some(room) = self.room(RoomId(room_id)).await? else { continue };
                        out.push(Invite {
                            room,
                            invited_by: user_from(row)?,
                            at: row.try_get("created_at").map_err(db_err)?,
                        });
                    }
                    Ok(out)
                }

                async fn remove_invite(&self, room: RoomId, user: UserId) -> Result<bool> {
                    self.pair_changes("DELETE FROM invites WHERE room_id = $1 AND user_id = $2", room, user).await
                }

                async fn bans(&self, room: RoomId) -> Result<Vec<Ban>> {
                    let rows = sqlx::query(
                        "SELECT u.id, u.username, u.display_name, b.created_at \
                         FROM bans b JOIN users u ON u.id = b.user_id \
                         WHERE b.room_id = $1 ORDER BY b.created_at, u.id",
                    )
                    .bind(room.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter()
                        .map(|r| Ok(Ban { user: user_from(r)?, banned_at: r.try_get("created_at").map_err(db_err)? }))
                        .collect()
                }

                async fn transfer_owner(&self, room: RoomId, from: UserId, to: UserId) -> Result<bool> {
                    if from == to {
                        return Ok(false);
                    }
                    let mut tx = <Self as Dialect>::begin(self).await?;
                    let demoted = sqlx::query(
                        "UPDATE members SET role = 'admin' WHERE room_id = $1 AND user_id = $2 AND role = 'owner'",
                    )
                    .bind(room.0)
                    .bind(from.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let promoted = sqlx::query("UPDATE members SET role = 'owner' WHERE room_id = $1 AND user_id = $2")
                        .bind(room.0)
                        .bind(to.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if demoted.rows_affected() == 0 || promoted.rows_affected() == 0 {
                        return Ok(false); // dropping the transaction rolls it back
                    }
                    tx.commit().await.map_err(db_err)?;
                    Ok(true)
                }

                async fn set_visibility(&self, room: RoomId, visibility: Visibility) -> Result<Room> {
                    sqlx::query("UPDATE rooms SET visibility = $1 WHERE id = $2 AND kind = 'group'")
                        .bind(visibility.as_str())
                        .bind(room.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    self.room(room).await?.ok_or(Error::RoomNotFound)
                }

                async fn direct_room(&self, a: UserId, b: UserId) -> Result<Option<Room>> {
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    self.room_by_key(&format!("@dm:{lo}:{hi}")).await
                }

                async fn ban(&self, room: RoomId, user: UserId, by: UserId) -> Result<bool> {
                    let mut tx = <Self as Dialect>::begin(self).await?;
                    for sql in [
                        "DELETE FROM members WHERE room_id = $1 AND user_id = $2",
                        "DELETE FROM invites WHERE room_id = $1 AND user_id = $2",
                    ] {
                        sqlx::query(sql).bind(room.0).bind(user.0).execute(&mut *tx).await.map_err(db_err)?;
                    }
                    let res = sqlx::query(
                        "INSERT INTO bans (room_id, user_id, banned_by, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT DO NOTHING",
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
                    let row = sqlx::query(<Self as Dialect>::MARK_READ)
                        .bind(seq)
                        .bind(room.0)
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.map(|r| r.try_get(0).map_err(db_err)).transpose()?.ok_or(Error::NotAMember)
                }

                async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
                    <Self as Dialect>::append(self, batch).await
                }

                async fn history(&self, room: RoomId, query: HistoryQuery) -> Result<HistoryPage> {
                    self.page(room, None, query).await
                }

                async fn message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
                    self.message_by_seq(room, seq).await
                }

                async fn edit_message(
                    &self,
                    room: RoomId,
                    seq: Seq,
                    body: &str,
                    mentions: &[UserId],
                    at: Millis,
                ) -> Result<Option<Arc<Message>>> {
                    let mut tx = <Self as Dialect>::begin(self).await?;
                    let res = sqlx::query(
                        "UPDATE messages SET body = $1, mentions = $2, edited_at = $3 \
                         WHERE room_id = $4 AND seq = $5 AND kind = 'text' AND NOT deleted",
                    )
                    .bind(body)
                    .bind(mentions_to_text(mentions))
                    .bind(at)
                    .bind(room.0)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if res.rows_affected() == 0 {
                        return Ok(None); // dropping the transaction rolls it back
                    }
                    sqlx::query("DELETE FROM mentions WHERE room_id = $1 AND seq = $2")
                        .bind(room.0)
                        .bind(seq)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    for u in mentions {
                        sqlx::query("INSERT INTO mentions (room_id, seq, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                            .bind(room.0)
                            .bind(seq)
                            .bind(u.0)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    tx.commit().await.map_err(db_err)?;
                    self.message_by_seq(room, seq).await
                }

                async fn delete_message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
                    let mut tx = <Self as Dialect>::begin(self).await?;
                    let res = sqlx::query(
                        "UPDATE messages SET body = '', mentions = '', deleted = TRUE WHERE room_id = $1 AND seq = $2",
                    )
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
                    sqlx::query("DELETE FROM files WHERE room_id = $1 AND seq = $2")
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

                async fn search(&self, user: UserId, query: &$crate::core::search::SearchQuery) -> Result<$crate::core::search::SearchHits> {
                    <Self as Dialect>::search(self, user, query).await
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
                    let rows = sqlx::query(
                        "SELECT id, retention_secs FROM rooms WHERE retention_secs IS NOT NULL ORDER BY id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter()
                        .map(|r| Ok((RoomId(r.try_get(0).map_err(db_err)?), r.try_get(1).map_err(db_err)?)))
                        .collect()
                }

                async fn purge_before(&self, room: RoomId, cutoff: Millis) -> Result<u64> {
                    let mut tx = <Self as Dialect>::begin(self).await?;
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
                    sqlx::query(
                        "DELETE FROM files WHERE room_id = $1 AND seq IN \
                         (SELECT seq FROM messages m WHERE m.room_id = $2 AND m.created_at < $3)",
                    )
                    .bind(room.0)
                    .bind(room.0)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    // Reactions and pins go with their messages.
                    for table in [
                        "DELETE FROM reactions WHERE room_id = $1 AND seq IN \
                         (SELECT seq FROM messages m WHERE m.room_id = $2 AND m.created_at < $3)",
                        "DELETE FROM pins WHERE room_id = $1 AND seq IN \
                         (SELECT seq FROM messages m WHERE m.room_id = $2 AND m.created_at < $3)",
                    ] {
                        sqlx::query(table)
                            .bind(room.0)
                            .bind(room.0)
                            .bind(cutoff)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    let res = sqlx::query("DELETE FROM messages WHERE room_id = $1 AND created_at < $2")
                        .bind(room.0)
                        .bind(cutoff)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(res.rows_affected())
                }

                async fn create_file(&self, f: &FileMeta) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO files (id, room_id, uploader_id, seq, blob, name, size, content_type, width, height, created_at, \
                         thumb_blob, thumb_type, thumb_width, thumb_height, thumb_size) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                    )
                    .bind(&f.id)
                    .bind(f.room.0)
                    .bind(f.uploader.0)
                    .bind(f.seq)
                    .bind(&f.blob)
                    .bind(&f.name)
                    .bind(f.size)
                    .bind(&f.content_type)
                    .bind(f.width)
                    .bind(f.height)
                    .bind(f.created_at)
                    .bind(f.thumbnail.as_ref().map(|t| t.blob.as_str()))
                    .bind(f.thumbnail.as_ref().map(|t| t.content_type.as_str()))
                    .bind(f.thumbnail.as_ref().map(|t| t.width))
                    .bind(f.thumbnail.as_ref().map(|t| t.height))
                    .bind(f.thumbnail.as_ref().map(|t| t.size))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(())
                }

                async fn file(&self, id: &str) -> Result<Option<FileMeta>> {
                    let sql = sqlx::AssertSqlSafe(format!("SELECT {FILE_COLS} FROM files WHERE id = $1"));
                    let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
                    row.as_ref().map(file_from).transpose()
                }

                async fn uploaded_bytes(&self, user: UserId) -> Result<i64> {
                    let row = sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE uploader_id = $1")
                        .bind(user.0)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.try_get(0).map_err(db_err)
                }

                async fn blob_in_use(&self, blob: &str) -> Result<bool> {
                    let row = sqlx::query("SELECT 1 FROM files WHERE blob = $1 OR thumb_blob = $1 LIMIT 1")
                        .bind(blob)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(row.is_some())
                }

                async fn drop_unsent_files(&self, before: Millis) -> Result<u64> {
                    let res = sqlx::query("DELETE FROM files WHERE seq IS NULL AND created_at < $1")
                        .bind(before)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(res.rows_affected())
                }

                async fn create_webhook(
                    &self,
                    room: RoomId,
                    url: &WebhookUrl,
                    secret: &str,
                    by: UserId,
                ) -> Result<Webhook> {
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
                    // One bound parameter per room: well under either driver's limit.
                    for chunk in rooms.chunks(500) {
                        let mut q = sqlx::QueryBuilder::<<Self as Dialect>::Db>::new(
                            "SELECT id, room_id, url, secret, created_by, created_at, delivered_seq \
                             FROM webhooks WHERE room_id IN (",
                        );
                        let mut sep = q.separated(", ");
                        for r in chunk {
                            sep.push_bind(r.0);
                        }
                        q.push(") ORDER BY id");
                        for row in q.build().fetch_all(&self.pool).await.map_err(db_err)? {
                            out.push(webhook_from(&row)?);
                        }
                    }
                    Ok(out)
                }

                async fn webhook(&self, id: i64) -> Result<Option<Webhook>> {
                    let row = sqlx::query(
                        "SELECT id, room_id, url, secret, created_by, created_at, delivered_seq \
                         FROM webhooks WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.as_ref().map(webhook_from).transpose()
                }

                async fn all_webhooks(&self) -> Result<Vec<Webhook>> {
                    let rows = sqlx::query(
                        "SELECT id, room_id, url, secret, created_by, created_at, delivered_seq \
                         FROM webhooks ORDER BY id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(webhook_from).collect()
                }

                async fn advance_webhook(&self, id: i64, from: Seq, to: Seq) -> Result<bool> {
                    let res =
                        sqlx::query("UPDATE webhooks SET delivered_seq = $1 WHERE id = $2 AND delivered_seq = $3")
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

                async fn thread(&self, room: RoomId, root: Seq, query: HistoryQuery) -> Result<HistoryPage> {
                    self.page(room, Some(root), query).await
                }

                async fn thread_stats(&self, room: RoomId, roots: &[Seq]) -> Result<Vec<(Seq, i64, Millis)>> {
                    let (Some(lo), Some(hi)) = (roots.iter().min(), roots.iter().max()) else { return Ok(Vec::new()) };
                    // One range read (pages are ranges), filtered to the roots asked for.
                    let rows = sqlx::query(
                        "SELECT thread, COUNT(*) AS n, MAX(created_at) AS last_ts FROM messages \
                         WHERE room_id = $1 AND thread >= $2 AND thread <= $3 AND NOT deleted GROUP BY thread",
                    )
                    .bind(room.0)
                    .bind(*lo)
                    .bind(*hi)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let mut out = Vec::new();
                    for r in &rows {
                        let root: i64 = r.try_get("thread").map_err(db_err)?;
                        if roots.contains(&root) {
                            out.push((root, r.try_get("n").map_err(db_err)?, r.try_get("last_ts").map_err(db_err)?));
                        }
                    }
                    Ok(out)
                }

                async fn followed_threads(&self, user: UserId) -> Result<Vec<ThreadSummary>> {
                    let rows = sqlx::query(
                        "SELECT r.room_id, r.thread, \
                           SUM(CASE WHEN NOT r.deleted THEN 1 ELSE 0 END) AS n, \
                           MAX(CASE WHEN NOT r.deleted THEN r.created_at END) AS last_ts, \
                           SUM(CASE WHEN NOT r.deleted AND r.sender_id <> $1 AND r.seq > COALESCE(tr.seq, 0) \
                               THEN 1 ELSE 0 END) AS unread \
                         FROM messages r \
                         JOIN members mb ON mb.room_id = r.room_id AND mb.user_id = $2 \
                         LEFT JOIN thread_reads tr ON tr.user_id = $3 AND tr.room_id = r.room_id AND tr.root = r.thread \
                         WHERE r.thread IS NOT NULL AND EXISTS ( \
                           SELECT 1 FROM messages x WHERE x.room_id = r.room_id \
                             AND (x.seq = r.thread OR x.thread = r.thread) \
                             AND (x.sender_id = $4 OR EXISTS (SELECT 1 FROM mentions mm \
                                  WHERE mm.user_id = $5 AND mm.room_id = x.room_id AND mm.seq = x.seq))) \
                         GROUP BY r.room_id, r.thread \
                         ORDER BY last_ts DESC",
                    )
                    .bind(user.0)
                    .bind(user.0)
                    .bind(user.0)
                    .bind(user.0)
                    .bind(user.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in &rows {
                        let n: i64 = r.try_get("n").map_err(db_err)?;
                        if n == 0 {
                            continue;
                        }
                        out.push(ThreadSummary {
                            room: RoomId(r.try_get("room_id").map_err(db_err)?),
                            root: r.try_get("thread").map_err(db_err)?,
                            reply_count: n,
                            last_reply_ts: r.try_get("last_ts").map_err(db_err)?,
                            unread: r.try_get("unread").map_err(db_err)?,
                        });
                    }
                    Ok(out)
                }

                async fn mark_thread_read(&self, room: RoomId, root: Seq, user: UserId, seq: Seq) -> Result<Seq> {
                    let row = sqlx::query(
                        "INSERT INTO thread_reads (room_id, root, user_id, seq) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (user_id, room_id, root) DO UPDATE SET seq = \
                           CASE WHEN excluded.seq > thread_reads.seq THEN excluded.seq ELSE thread_reads.seq END \
                         RETURNING seq",
                    )
                    .bind(room.0)
                    .bind(root)
                    .bind(user.0)
                    .bind(seq)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.try_get(0).map_err(db_err)
                }

                async fn add_reaction(
                    &self,
                    room: RoomId,
                    seq: Seq,
                    user: UserId,
                    emoji: &Emoji,
                    at: Millis,
                ) -> Result<bool> {
                    let mut tx = <Self as Dialect>::begin(self).await?;
                    sqlx::query(<Self as Dialect>::LOCK_MESSAGE)
                        .bind(room.0)
                        .bind(seq)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?
                        .ok_or(Error::MessageNotFound)?;
                    let row = sqlx::query(
                        "SELECT COUNT(DISTINCT emoji) AS n, \
                           SUM(CASE WHEN emoji = $1 THEN 1 ELSE 0 END) AS same, \
                           SUM(CASE WHEN emoji = $2 AND user_id = $3 THEN 1 ELSE 0 END) AS mine \
                         FROM reactions WHERE room_id = $4 AND seq = $5",
                    )
                    .bind(emoji.as_str())
                    .bind(emoji.as_str())
                    .bind(user.0)
                    .bind(room.0)
                    .bind(seq)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let distinct: i64 = row.try_get("n").map_err(db_err)?;
                    let same: Option<i64> = row.try_get("same").map_err(db_err)?;
                    let mine: Option<i64> = row.try_get("mine").map_err(db_err)?;
                    if mine.unwrap_or(0) > 0 {
                        return Ok(false);
                    }
                    if same.unwrap_or(0) == 0 && distinct >= Emoji::MAX_PER_MESSAGE as i64 {
                        return Err(Error::TooManyReactions);
                    }
                    let res = sqlx::query(
                        "INSERT INTO reactions (room_id, seq, emoji, user_id, created_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(room.0)
                    .bind(seq)
                    .bind(emoji.as_str())
                    .bind(user.0)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    Self::reactions_touched(&mut tx, room, seq, at).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(res.rows_affected() > 0)
                }

                async fn remove_reaction(
                    &self,
                    room: RoomId,
                    seq: Seq,
                    user: UserId,
                    emoji: &Emoji,
                    at: Millis,
                ) -> Result<bool> {
                    let mut tx = <Self as Dialect>::begin(self).await?;
                    let res = sqlx::query(
                        "DELETE FROM reactions WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4",
                    )
                    .bind(room.0)
                    .bind(seq)
                    .bind(emoji.as_str())
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if res.rows_affected() == 0 {
                        return Ok(false);
                    }
                    Self::reactions_touched(&mut tx, room, seq, at).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(true)
                }

                async fn reactions_changed(
                    &self,
                    room: RoomId,
                    through: Seq,
                    since: Millis,
                    limit: u32,
                ) -> Result<Vec<(Seq, Vec<Reaction>)>> {
                    let rows = sqlx::query(
                        "SELECT seq FROM messages WHERE room_id = $1 AND reactions_at > $2 AND seq <= $3 \
                         ORDER BY seq DESC LIMIT $4",
                    )
                    .bind(room.0)
                    .bind(since)
                    .bind(through)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let mut seqs = rows.iter().map(|r| r.try_get::<i64, _>(0).map_err(db_err)).collect::<Result<Vec<_>>>()?;
                    seqs.reverse();
                    let mut current: std::collections::HashMap<Seq, Vec<Reaction>> =
                        self.reactions(room, &seqs).await?.into_iter().collect();
                    Ok(seqs.into_iter().map(|s| (s, current.remove(&s).unwrap_or_default())).collect())
                }

                async fn reactions(&self, room: RoomId, seqs: &[Seq]) -> Result<Vec<(Seq, Vec<Reaction>)>> {
                    let (Some(lo), Some(hi)) = (seqs.iter().min(), seqs.iter().max()) else { return Ok(Vec::new()) };
                    let rows = sqlx::query(
                        "SELECT seq, emoji, user_id FROM reactions WHERE room_id = $1 AND seq >= $2 AND seq <= $3 \
                         ORDER BY seq, id",
                    )
                    .bind(room.0)
                    .bind(*lo)
                    .bind(*hi)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let mut out: Vec<(Seq, Vec<Reaction>)> = Vec::new();
                    for r in &rows {
                        let seq: i64 = r.try_get("seq").map_err(db_err)?;
                        if !seqs.contains(&seq) {
                            continue;
                        }
                        let emoji: String = r.try_get("emoji").map_err(db_err)?;
                        let user = UserId(r.try_get("user_id").map_err(db_err)?);
                        if out.last().is_none_or(|(s, _)| *s != seq) {
                            out.push((seq, Vec::new()));
                        }
                        let list = &mut out.last_mut().expect("pushed").1;
                        match list.iter_mut().find(|x| x.emoji == emoji) {
                            Some(x) => x.users.push(user),
                            None => list.push(Reaction { emoji, users: vec![user] }),
                        }
                    }
                    Ok(out)
                }

                async fn pin(&self, room: RoomId, seq: Seq, by: UserId, at: Millis) -> Result<bool> {
                    let res = sqlx::query(
                        "INSERT INTO pins (room_id, seq, pinned_by, pinned_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(room.0)
                    .bind(seq)
                    .bind(by.0)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(res.rows_affected() > 0)
                }

                async fn unpin(&self, room: RoomId, seq: Seq) -> Result<bool> {
                    let res = sqlx::query("DELETE FROM pins WHERE room_id = $1 AND seq = $2")
                        .bind(room.0)
                        .bind(seq)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(res.rows_affected() > 0)
                }

                async fn pins(&self, room: RoomId) -> Result<Vec<(Seq, User, Millis)>> {
                    let rows = sqlx::query(
                        "SELECT p.seq, p.pinned_at, u.id, u.username, u.display_name FROM pins p \
                         JOIN users u ON u.id = p.pinned_by WHERE p.room_id = $1 ORDER BY p.pinned_at DESC, p.seq DESC",
                    )
                    .bind(room.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter()
                        .map(|r| {
                            Ok((r.try_get("seq").map_err(db_err)?, user_from(r)?, r.try_get("pinned_at").map_err(db_err)?))
                        })
                        .collect()
                }

                async fn set_notify(
                    &self,
                    room: RoomId,
                    user: UserId,
                    level: Option<NotifyLevel>,
                    muted: Option<bool>,
                ) -> Result<Option<(NotifyLevel, bool)>> {
                    let row = sqlx::query(
                        "UPDATE members SET notify = COALESCE($1, notify), muted = COALESCE($2, muted) \
                         WHERE room_id = $3 AND user_id = $4 RETURNING notify, muted",
                    )
                    .bind(level.map(NotifyLevel::as_str))
                    .bind(muted)
                    .bind(room.0)
                    .bind(user.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let Some(row) = row else { return Ok(None) };
                    let level: String = row.try_get("notify").map_err(db_err)?;
                    Ok(Some((NotifyLevel::parse(&level).unwrap_or_default(), row.try_get("muted").map_err(db_err)?)))
                }

                async fn ping(&self) -> Result<()> {
                    sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_err)?;
                    Ok(())
                }

                async fn probe_write(&self) -> Result<()> {
                    <Self as Dialect>::probe_write(self).await
                }

                async fn close(&self) {
                    <Self as Dialect>::close_writer(self).await;
                    self.pool.close().await;
                }
            }
        };
    };
}

pub(super) use impl_sql_store;
