//! SQLite's connect reads: the session with its user, the user's rooms, the greeting's room views with
//! each room's last message (`super::connect_sql`) run on dedicated threads, each owning a `rusqlite`
//! connection with cached prepared statements, as the writer (`sqlite_writer`) does for appends.
//!
//! Why not sqlx here: its SQLite driver runs each statement on a worker thread reached over a channel
//! (and the pool pings a connection on every release), so a connect's six statements were a dozen
//! round trips between threads, and in a connect storm those context switches were half the server's
//! CPU (BENCHMARKS.md, *Connect storm*). Here one read of the store is one hop, whatever statements it
//! runs: a connect is three (authenticate, the rooms to follow, the views).
//!
//! The readers see what is committed when each statement starts (WAL: they never wait for the writer),
//! as the pool's connections do; they cannot write (`query_only`).

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::connect_sql;
use super::rows::{DbRow, attach_files, file_from, message_from, role_from, room_from};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::store::Session;

/// Reader threads: connects are short reads, so two keep one slow read (a cold page) from holding up
/// the others without many idle connections.
const THREADS: usize = 2;

type Job = Box<dyn FnOnce(&Connection, &Sql) + Send>;

/// The statements whose text is built once (the prepared-statement cache is keyed by text).
struct Sql {
    user_rooms: String,
    room_views: String,
    message_row: String,
    files_between: String,
}

pub(super) struct Reader {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

fn sql_err(e: rusqlite::Error) -> Error {
    Error::Internal(anyhow::Error::new(e).context("database"))
}

/// A `rusqlite` row read by column name, as the shared row mappers (`super::rows`) read sqlx rows.
struct LiteRow<'a, 'b>(&'a rusqlite::Row<'b>);

impl DbRow for LiteRow<'_, '_> {
    fn int(&self, col: &str) -> Result<i64> {
        self.0.get(col).map_err(sql_err)
    }

    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.0.get(col).map_err(sql_err)
    }

    fn text(&self, col: &str) -> Result<String> {
        self.0.get(col).map_err(sql_err)
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.0.get(col).map_err(sql_err)
    }

    fn flag(&self, col: &str) -> Result<bool> {
        self.0.get(col).map_err(sql_err)
    }
}

impl Reader {
    /// Opens the readers' connections to the database at `path` (already created and migrated);
    /// `unread` is the dialect's unread count (see `Dialect::UNREAD_COUNT`).
    pub(super) fn open(path: &Path, busy_timeout: Duration, unread: &str) -> anyhow::Result<Reader> {
        let sql = Arc::new(Sql {
            user_rooms: connect_sql::user_rooms(),
            room_views: connect_sql::room_views(unread),
            message_row: connect_sql::message_row(),
            files_between: connect_sql::files_between(),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(THREADS);
        for i in 0..THREADS {
            let conn = Connection::open(path)?;
            conn.busy_timeout(busy_timeout)?;
            // The pool's read settings (see `SqlStore::connect`); WAL is the database's already.
            conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA temp_store = memory; PRAGMA query_only = 1;")?;
            conn.set_prepared_statement_cache_capacity(16);
            let (rx, sql) = (rx.clone(), sql.clone());
            let thread = std::thread::Builder::new().name(format!("parley-sqlite-reader-{i}")).spawn(move || {
                loop {
                    // One idle thread waits on the channel, the others on the lock.
                    let job = rx.lock().recv();
                    let Ok(job) = job else { break };
                    job(&conn, &sql);
                }
                if let Err((_, e)) = conn.close() {
                    tracing::warn!(error = %e, "closing a SQLite reader connection failed");
                }
            })?;
            threads.push(thread);
        }
        Ok(Reader { tx: Mutex::new(Some(tx)), threads: Mutex::new(threads) })
    }

    async fn call<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection, &Sql) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn, sql| {
            let _ = reply.send(read(conn, sql));
        });
        let tx = self.tx.lock().clone().ok_or(Error::ShuttingDown)?;
        tx.send(job).map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::internal(anyhow::anyhow!("a SQLite reader thread stopped")))?
    }

    pub(super) async fn session(&self, id: &SessionId) -> Result<Option<Session>> {
        let id = id.clone();
        self.call(move |conn, _| {
            let mut stmt = conn.prepare_cached(connect_sql::SESSION).map_err(sql_err)?;
            stmt.query_row([&id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(sql_err)
                .map(|s| s.map(|(user, expires_at, revoked)| Session { id, user: UserId(user), expires_at, revoked }))
        })
        .await
    }

    pub(super) async fn session_user(&self, id: &SessionId) -> Result<Option<(Session, User)>> {
        let id = id.clone();
        self.call(move |conn, _| {
            let mut stmt = conn.prepare_cached(connect_sql::SESSION_USER).map_err(sql_err)?;
            let row = stmt
                .query_row([&id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .optional()
                .map_err(sql_err)?;
            Ok(row.map(|(user, expires_at, revoked, username, display_name)| {
                let user = UserId(user);
                (Session { id, user, expires_at, revoked }, User { id: user, username, display_name })
            }))
        })
        .await
    }

    pub(super) async fn user(&self, id: UserId) -> Result<Option<User>> {
        self.call(move |conn, _| read_user(conn, id)).await
    }

    pub(super) async fn user_rooms(&self, user: UserId) -> Result<Vec<Room>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.user_rooms).map_err(sql_err)?;
            let mut rows = stmt.query([user.0]).map_err(sql_err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(sql_err)? {
                out.push(room_from(&LiteRow(row))?);
            }
            Ok(out)
        })
        .await
    }

    /// As the pool's `room_views` (`shared`): one statement for every room of the user, then each
    /// room's last message (with its files) and, for a direct conversation, the other member.
    pub(super) async fn room_views(&self, user: UserId) -> Result<Vec<RoomView>> {
        self.call(move |conn, sql| {
            let mut stmt = conn.prepare_cached(&sql.room_views).map_err(sql_err)?;
            let mut rows = stmt.query([user.0]).map_err(sql_err)?;
            let mut views = Vec::new();
            while let Some(row) = rows.next().map_err(sql_err)? {
                let r = LiteRow(row);
                let notify = NotifyLevel::parse(&r.text("notify")?).unwrap_or_default();
                let muted = r.flag("muted")?;
                let view = RoomView {
                    role: role_from(&r)?,
                    last_read: r.int("last_read")?,
                    unread: notify.unread_shown(muted, r.int("unread")?),
                    notify,
                    muted,
                    mentions: r.int("mentions")?,
                    peer: None,
                    last_message: None,
                    room: room_from(&r)?,
                };
                views.push((view, r.opt_int("other")?));
            }
            drop(rows);
            let mut out = Vec::with_capacity(views.len());
            for (mut view, other) in views {
                if let (RoomKind::Direct, Some(other)) = (view.room.kind, other) {
                    view.peer = read_user(conn, UserId(other))?;
                }
                if view.room.last_seq > 0 {
                    view.last_message = message(conn, sql, view.room.id, view.room.last_seq)?;
                }
                out.push(view);
            }
            Ok(out)
        })
        .await
    }

    /// Lets the threads finish the jobs in hand, then closes their connections.
    pub(super) async fn close(&self) {
        self.tx.lock().take();
        let threads = std::mem::take(&mut *self.threads.lock());
        if !threads.is_empty() {
            let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
        }
    }
}

fn read_user(conn: &Connection, id: UserId) -> Result<Option<User>> {
    let mut stmt = conn.prepare_cached(connect_sql::USER).map_err(sql_err)?;
    stmt.query_row([id.0], |r| Ok(User { id: UserId(r.get(0)?), username: r.get(1)?, display_name: r.get(2)? }))
        .optional()
        .map_err(sql_err)
}

/// Message `seq` of `room` with its files.
fn message(conn: &Connection, sql: &Sql, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
    let mut stmt = conn.prepare_cached(&sql.message_row).map_err(sql_err)?;
    let mut rows = stmt.query((room.0, seq)).map_err(sql_err)?;
    let Some(row) = rows.next().map_err(sql_err)? else { return Ok(None) };
    let mut messages = vec![message_from(&LiteRow(row))?];
    drop(rows);
    let mut stmt = conn.prepare_cached(&sql.files_between).map_err(sql_err)?;
    let mut rows = stmt.query((room.0, seq, seq)).map_err(sql_err)?;
    let mut files = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        files.push(file_from(&LiteRow(row))?);
    }
    attach_files(&mut messages, files);
    Ok(messages.pop())
}
