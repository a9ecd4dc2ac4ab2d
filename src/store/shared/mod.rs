//! The [`Store`](super::Store) implementation the SQL stores share: every statement that reads the same
//! in SQLite and PostgreSQL is written once here, in [`impl_sql_store!`]; what differs (transaction
//! start, upserts, locking, SQL functions, the batched append) each backend provides as its [`Dialect`].
//!
//! A macro rather than generic functions: expanded per backend, the statements run on the concrete pool
//! and row types, where generic code would carry sqlx's encode/decode/executor bounds on every call.
//! That one macro is the SQL stores' whole shared `impl Store`. One trait impl cannot be split across
//! files, and `#[async_trait]` must see every method of it, so the statements are grouped by concern in
//! submodules whose macros form a chain: each appends its methods to the body built so far and calls the
//! next, and the last ([`sql_store_emit!`]) writes the one `impl Store` with the private helpers.

use async_trait::async_trait;

pub(super) mod accounts;
pub(super) mod convo;
pub(super) mod messages;
pub(super) mod rooms;
pub(super) mod webhooks;

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

    /// The greeting's unread count, a scalar subquery over the member row `mb` and its room `r` (see
    /// [`super::connect_sql::room_views`]): each dialect reads it from its own index.
    const UNREAD_COUNT: &'static str;

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

    // A connect's reads (`super::connect_sql`): PostgreSQL runs them on its pool (the `pool_*` helpers
    // of [`impl_sql_store!`]), SQLite on its reader threads (`super::sqlite_reader`).
    /// [`Store::session`](super::Store::session).
    async fn read_session(&self, id: &SessionId) -> Result<Option<crate::store::Session>>;
    /// [`Store::session_user`](super::Store::session_user).
    async fn read_session_user(&self, id: &SessionId) -> Result<Option<(crate::store::Session, User)>>;
    /// [`Store::user`](super::Store::user).
    async fn read_user(&self, id: UserId) -> Result<Option<User>>;
    /// [`Store::user_rooms`](super::Store::user_rooms).
    async fn read_user_rooms(&self, user: UserId) -> Result<Vec<Room>>;
    /// [`Store::room_views`](super::Store::room_views).
    async fn read_room_views(&self, user: UserId) -> Result<Vec<RoomView>>;
}

/// Implements `Store` for `$store` (a struct with a `pool` field, implementing [`Dialect`]) from the
/// shared statements, plus the private helpers they use, open to the dialect code too (`message_by_seq`,
/// `room_by_key`, …). Expects `db_err: fn(sqlx::Error) -> Error` in the invoking module.
///
/// Starts the chain of the submodules' macros (accounts, rooms, messages, webhooks, convo), which ends in
/// [`sql_store_emit!`].
macro_rules! impl_sql_store {
    ($store:ty) => {
        $crate::store::shared::accounts::sql_accounts! { $store; }
    };
}

/// The chain's last link: the private helpers and the one `impl Store` for `$store`, whose body is
/// `$acc` (every link's methods) plus the health and shutdown methods.
macro_rules! sql_store_emit {
    ($store:ty; $($acc:tt)*) => {
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

            // The connect reads on the pool: PostgreSQL's (`Dialect::read_*`); SQLite reads them on its
            // reader threads, and its tests compare the two.
            #[allow(dead_code)]
            impl $store {
                async fn pool_session(&self, id: &SessionId) -> Result<Option<Session>> {
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

                async fn pool_session_user(&self, id: &SessionId) -> Result<Option<(Session, User)>> {
                    let row = sqlx::query($crate::store::connect_sql::SESSION_USER)
                        .bind(&id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.map(|r| {
                        let user = UserId(r.try_get(0).map_err(db_err)?);
                        Ok((
                            Session {
                                id: id.clone(),
                                user,
                                expires_at: r.try_get(1).map_err(db_err)?,
                                revoked: r.try_get(2).map_err(db_err)?,
                            },
                            User {
                                id: user,
                                username: r.try_get(3).map_err(db_err)?,
                                display_name: r.try_get(4).map_err(db_err)?,
                            },
                        ))
                    })
                    .transpose()
                }

                async fn pool_user(&self, id: UserId) -> Result<Option<User>> {
                    let row = sqlx::query($crate::store::connect_sql::USER)
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(user_from).transpose()
                }

                async fn pool_user_rooms(&self, user: UserId) -> Result<Vec<Room>> {
                    let sql = sqlx::AssertSqlSafe($crate::store::connect_sql::user_rooms());
                    let rows = sqlx::query(sql).bind(user.0).fetch_all(&self.pool).await.map_err(db_err)?;
                    rows.iter().map(room_from).collect()
                }

                async fn pool_room_views(&self, user: UserId) -> Result<Vec<RoomView>> {
                    // One query for every room of the user (a connect's greeting reads this, so its cost
                    // is per room of the user, never per member of a room); the other member is looked
                    // up only for direct conversations. The counts stop at the room's `last_seq` read in the
                    // same statement: a message stored meanwhile is not counted unread in a view whose
                    // `last_seq` does not include it.
                    let sql = sqlx::AssertSqlSafe($crate::store::connect_sql::room_views(<Self as Dialect>::UNREAD_COUNT));
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
            }

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

                /// Runs an insert of a row stamped with who and when, `($1 = room, $2 = key, $3 = by, $4 = at)`,
                /// that does nothing on conflict (the first stays as it was); whether it inserted.
                async fn insert_stamped<'e, E>(
                    exec: E,
                    sql: &'static str,
                    room: RoomId,
                    key: i64,
                    (by, at): (UserId, Millis),
                ) -> Result<bool>
                where
                    E: sqlx::Executor<'e, Database = <Self as Dialect>::Db>,
                {
                    let res = sqlx::query(sql).bind(room.0).bind(key).bind(by.0).bind(at).execute(exec).await.map_err(db_err)?;
                    Ok(res.rows_affected() > 0)
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
                $($acc)*

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
pub(in crate::store) use sql_store_emit;
