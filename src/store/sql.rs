//! The SQLite store (the default). Runtime queries with `$n` placeholders, so the same statements serve
//! PostgreSQL too: those are written once in `shared`, and this file holds SQLite's own
//! (`shared::Dialect`: `BEGIN IMMEDIATE`, the direct-room insert, `mark_read`'s functions, the
//! batched append). Migrations are embedded in the binary.
//!
//! Durability: WAL with `synchronous=FULL`, so a commit is on disk when [`Store::append`](super::Store::append) returns —
//! acknowledgements are sent only after that. Group commit upstream makes one sync cover many messages.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::rows::{self, mentions_to_text};
use super::shared;
use crate::core::domain::*;
use crate::core::error::{Error, Result};

pub struct SqlStore {
    pool: SqlitePool,
}

fn db_err(e: sqlx::Error) -> Error {
    rows::db_err::<sqlx::Sqlite>(e)
}

/// Rows per multi-row statement: well under SQLite's bound-parameter limit at 9 columns.
const CHUNK: usize = 500;

impl SqlStore {
    /// Opens (creating if needed) the SQLite database at `path` and runs the embedded migrations.
    pub async fn open_sqlite(path: &Path) -> anyhow::Result<Self> {
        Self::connect(SqliteConnectOptions::new().filename(path)).await
    }

    /// Opens from a `sqlite:` URL.
    pub async fn open_sqlite_url(url: &str) -> anyhow::Result<Self> {
        Self::connect(SqliteConnectOptions::from_str(url)?).await
    }

    async fn connect(opts: SqliteConnectOptions) -> anyhow::Result<Self> {
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // Found by profiling durable ingest: a larger page cache keeps hot room pages out of pread, a
        // rarer checkpoint copies fewer pages back, and statement journals stay in memory.
        let opts =
            opts.pragma("cache_size", "-65536").pragma("wal_autocheckpoint", "8192").pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqlStore { pool })
    }
}

#[async_trait]
impl shared::Dialect for SqlStore {
    type Db = sqlx::Sqlite;

    const MARK_READ: &'static str = "UPDATE members \
         SET last_read = MAX(last_read, MIN($1, (SELECT last_seq FROM rooms WHERE id = $2))) \
         WHERE room_id = $2 AND user_id = $3 RETURNING last_read";

    // The write lock is taken up front (`BEGIN IMMEDIATE`), so no other creator of the pair is mid-way:
    // a conflict here is one already committed.
    const INSERT_DIRECT: &'static str = "INSERT INTO rooms (name, name_key, kind, visibility, created_by, created_at) \
         VALUES ($1, $2, 'direct', 'private', $3, $4) RETURNING id";

    // BEGIN IMMEDIATE already serialises writers.
    const LOCK_MESSAGE: &'static str = "SELECT seq FROM messages WHERE room_id = $1 AND seq = $2";

    /// IMMEDIATE takes the write lock up front: a deferred transaction that reads first can fail to
    /// upgrade (SQLITE_BUSY_SNAPSHOT) without waiting for the busy timeout.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)
    }

    async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        // A constant number of statements per batch, not per message: sqlx's SQLite driver runs each
        // statement on its worker thread, and that round trip, not SQLite, dominated the write path.
        let mut tx = shared::Dialect::begin(self).await?;

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
                reply_to: m.reply_to,
                thread: m.thread,
                extras: MessageExtras { quote: m.quote.clone(), ..Default::default() },
            })));
        }

        // 5. one multi-row insert per chunk.
        let new: Vec<&Arc<Message>> =
            fates.iter().filter_map(|f| if let Fate::Insert(m) = f { Some(m) } else { None }).collect();
        for chunk in new.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO messages (room_id, seq, kind, sender_id, target_id, body, client_id, mentions, created_at, \
                 reply_to, thread) ",
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
                    .push_bind(m.ts)
                    .push_bind(m.reply_to)
                    .push_bind(m.thread);
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
}

shared::impl_sql_store!(SqlStore);
