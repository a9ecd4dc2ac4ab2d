//! The PostgreSQL store: the backend for several nodes sharing one database. The statements where the
//! dialects agree (runtime queries, `$n` placeholders) are the SQLite store's, written once in
//! `shared`; this file holds PostgreSQL's own (`shared::Dialect`: transactions, the direct-room
//! upsert, `mark_read`'s functions, the locking append) and its embedded migrations (`migrations/postgres`).
//!
//! Concurrency: transactions run at READ COMMITTED. What SQLite gets from its single writer
//! (`BEGIN IMMEDIATE`), this store gets from row locks:
//! - [`Store::append`](super::Store::append) locks the counter row of every room in the batch up front, in ascending id order
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

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::rows::{self, mentions_to_text};
use super::shared;
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::search::{SearchHits, SearchQuery};

pub struct PgStore {
    pool: PgPool,
}

/// Connections per node: appends to one room are serialised by its row lock anyway, so more mostly
/// helps reads and appends to different rooms.
const MAX_CONNECTIONS: u32 = 16;

fn db_err(e: sqlx::Error) -> Error {
    rows::db_err::<sqlx::Postgres>(e)
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
}

#[async_trait]
impl shared::Dialect for PgStore {
    type Db = sqlx::Postgres;

    const MARK_READ: &'static str = "UPDATE members \
         SET last_read = GREATEST(last_read, LEAST($1, (SELECT last_seq FROM rooms WHERE id = $2))) \
         WHERE room_id = $2 AND user_id = $3 RETURNING last_read";

    // ON CONFLICT waits for a concurrent creator of the same pair to commit (or roll back), then
    // inserts nothing: no error, so the transaction stays usable and nothing is logged as failed.
    const INSERT_DIRECT: &'static str = "INSERT INTO rooms (name, name_key, kind, visibility, created_by, created_at) \
         VALUES ($1, $2, 'direct', 'private', $3, $4) ON CONFLICT (name_key) DO NOTHING RETURNING id";

    const LOCK_MESSAGE: &'static str = "SELECT seq FROM messages WHERE room_id = $1 AND seq = $2 FOR NO KEY UPDATE";

    const LOCK_ROOM: &'static str = "SELECT id FROM rooms WHERE id = $1 FOR NO KEY UPDATE";

    const UNREAD_COUNT: &'static str = crate::store::connect_sql::UNREAD_MESSAGES;

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }

    async fn read_session(&self, id: &SessionId) -> Result<Option<super::Session>> {
        self.pool_session(id).await
    }

    async fn read_session_user(&self, id: &SessionId) -> Result<Option<(super::Session, User)>> {
        self.pool_session_user(id).await
    }

    async fn read_user(&self, id: UserId) -> Result<Option<User>> {
        self.pool_user(id).await
    }

    async fn read_user_rooms(&self, user: UserId) -> Result<Vec<Room>> {
        self.pool_user_rooms(user).await
    }

    async fn read_room_views(&self, user: UserId) -> Result<Vec<RoomView>> {
        self.pool_room_views(user).await
    }

    /// Taking a transaction id makes the commit write (and flush) a WAL record.
    async fn probe_write(&self) -> Result<()> {
        let mut tx = shared::Dialect::begin(self).await?;
        sqlx::query("SELECT pg_current_xact_id()").execute(&mut *tx).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// The newest search window of matches the caller may read, ranked by `ts_rank` (computed for the
    /// window only). Two plans serve it, and the planner picks by the word's frequency, so the statement
    /// is planned with its values each time (not kept prepared: a generic plan cannot tell `the` from a
    /// rare word): a common word walks `messages_by_time` newest first and stops after the window; a
    /// rare one takes its few rows from the GIN index on `search` and sorts them. Membership is a
    /// semi-join (`room_id IN …`), which leaves the planner both orders.
    async fn search(&self, user: UserId, q: &SearchQuery) -> Result<SearchHits> {
        let window = format!(
            "SELECT m.room_id AS wr, m.seq AS ws, m.created_at AS wt FROM messages m {} \
             ORDER BY m.created_at DESC, m.room_id DESC, m.seq DESC LIMIT {}",
            super::search_sql::FILTERS.replace("{MATCH}", "m.search @@ to_tsquery('simple', $1)").replace(
                "JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = $2 WHERE",
                "WHERE m.room_id IN (SELECT mb.room_id FROM members mb WHERE mb.user_id = $2) AND"
            ),
            crate::core::search::WINDOW
        );
        debug_assert!(!window.contains("JOIN members"), "the membership semi-join replaced the join");
        let from = rows::MSG_SELECT.replace(
            "FROM messages m",
            &format!("FROM ({window}) w JOIN messages m ON m.room_id = w.wr AND m.seq = w.ws"),
        );
        let sql = format!(
            "{from} ORDER BY ts_rank(m.search, to_tsquery('simple', $1)) DESC, w.wt DESC, m.room_id, m.seq \
             LIMIT $9 OFFSET $10"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(super::search_sql::tsquery(&q.terms))
            .bind(user.0);
        for v in super::search_sql::filter_values(q) {
            query = query.bind(v);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db_err)?;
        let has_more = rows.len() > q.limit as usize;
        let messages = rows.iter().take(q.limit as usize).map(rows::message_from).collect::<Result<Vec<_>>>()?;
        Ok(SearchHits { messages, has_more })
    }

    /// A fixed number of round trips per batch, whatever its size: each step sends its whole batch as
    /// array parameters (`UNNEST`), so a batch of 500 costs what a batch of 1 does in network waits.
    async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = shared::Dialect::begin(self).await?;
        // 1. Lock every room of the batch up front, in ascending id order: rows are locked in the order
        // the sorted result is produced, so concurrent batches over overlapping rooms queue instead of
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

        // 2. Client ids already stored. With the rooms locked, no other transaction can store one of
        // them meanwhile.
        let keyed: Vec<&NewMessage> = batch.iter().filter(|m| m.client_id.is_some()).collect();
        let mut stored_ids: HashMap<(RoomId, UserId, String), Seq> = HashMap::new();
        if !keyed.is_empty() {
            let rooms: Vec<i64> = keyed.iter().map(|m| m.room.0).collect();
            let senders: Vec<i64> = keyed.iter().map(|m| m.sender.id.0).collect();
            let cids: Vec<&str> = keyed.iter().filter_map(|m| m.client_id.as_ref().map(|c| c.as_str())).collect();
            let rows = sqlx::query(
                "SELECT m.room_id, m.sender_id, m.client_id, m.seq \
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) AS k(r, s, c) \
                 JOIN messages m ON m.room_id = k.r AND m.sender_id = k.s AND m.client_id = k.c",
            )
            .bind(&rooms)
            .bind(&senders)
            .bind(&cids)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            for row in rows {
                stored_ids.insert(
                    (
                        RoomId(row.try_get(0).map_err(db_err)?),
                        UserId(row.try_get(1).map_err(db_err)?),
                        row.try_get(2).map_err(db_err)?,
                    ),
                    row.try_get(3).map_err(db_err)?,
                );
            }
        }

        // 3. Membership of text senders, read FOR KEY SHARE: a concurrent leave, kick or ban waits for
        // this transaction to commit.
        let mut pairs: Vec<(i64, i64)> =
            batch.iter().filter(|m| m.kind == MessageKind::Text).map(|m| (m.room.0, m.sender.id.0)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut members: HashSet<(RoomId, UserId)> = HashSet::with_capacity(pairs.len());
        if !pairs.is_empty() {
            let (rooms, users): (Vec<i64>, Vec<i64>) = pairs.iter().copied().unzip();
            let rows = sqlx::query(
                "SELECT m.room_id, m.user_id FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS k(r, u) \
                 JOIN members m ON m.room_id = k.r AND m.user_id = k.u ORDER BY m.room_id, m.user_id \
                 FOR KEY SHARE OF m",
            )
            .bind(&rooms)
            .bind(&users)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            for row in rows {
                members.insert((RoomId(row.try_get(0).map_err(db_err)?), UserId(row.try_get(1).map_err(db_err)?)));
            }
        }

        // 4. Decide, in order.
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
            let Some((_, last)) = seqs.get_mut(&m.room) else {
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
                files: m.files.iter().map(|f| FileMeta { seq: Some(*last), ..f.clone() }).collect(),
                reply_to: m.reply_to,
                thread: m.thread,
                extras: MessageExtras { quote: m.quote.clone(), ..Default::default() },
            })));
        }

        // 5. One insert for every new message, one for their mentions, one for the counters.
        let new: Vec<&Arc<Message>> =
            fates.iter().filter_map(|f| if let Fate::Insert(m) = f { Some(m) } else { None }).collect();
        if !new.is_empty() {
            let n = new.len();
            let (mut reply_to, mut thread): (Vec<Option<Seq>>, Vec<Option<Seq>>) =
                (Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut room, mut seq, mut kind, mut sender, mut target, mut body, mut cid, mut mentions, mut ts) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for m in &new {
                room.push(m.room.0);
                seq.push(m.seq);
                kind.push(m.kind.as_str());
                sender.push(m.sender.as_ref().map(|u| u.id.0));
                target.push(m.target.as_ref().map(|t| t.id.0));
                body.push(m.body.as_str());
                cid.push(m.client_id.as_deref());
                mentions.push(mentions_to_text(&m.mentions));
                ts.push(m.ts);
                reply_to.push(m.reply_to);
                thread.push(m.thread);
            }
            sqlx::query(
                "INSERT INTO messages (room_id, seq, kind, sender_id, target_id, body, client_id, mentions, created_at, \
                 reply_to, thread) \
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], \
                 $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], $11::BIGINT[])",
            )
            .bind(&room)
            .bind(&seq)
            .bind(&kind)
            .bind(&sender)
            .bind(&target)
            .bind(&body)
            .bind(&cid)
            .bind(&mentions)
            .bind(&ts)
            .bind(&reply_to)
            .bind(&thread)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;

            let (mut m_room, mut m_seq, mut m_user) = (Vec::new(), Vec::new(), Vec::new());
            for m in &new {
                for u in &m.mentions {
                    m_room.push(m.room.0);
                    m_seq.push(m.seq);
                    m_user.push(u.0);
                }
            }
            if !m_room.is_empty() {
                sqlx::query(
                    "INSERT INTO mentions (room_id, seq, user_id) \
                     SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[]) ON CONFLICT DO NOTHING",
                )
                .bind(&m_room)
                .bind(&m_seq)
                .bind(&m_user)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }

            let (ids, lasts): (Vec<i64>, Vec<i64>) =
                seqs.iter().filter(|(_, (was, last))| last != was).map(|(r, (_, last))| (r.0, *last)).unzip();
            sqlx::query(
                "UPDATE rooms r SET last_seq = k.s FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS k(id, s) WHERE r.id = k.id",
            )
            .bind(&ids)
            .bind(&lasts)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;

            // Files shared by the new messages; one already shared (by a racing send) stays with its first.
            let (mut f_id, mut f_room, mut f_user, mut f_seq) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for m in &new {
                for f in &m.files {
                    f_id.push(f.id.as_str());
                    f_room.push(m.room.0);
                    f_user.push(m.sender.as_ref().map_or(0, |u| u.id.0));
                    f_seq.push(m.seq);
                }
            }
            if !f_id.is_empty() {
                let rows = sqlx::query(
                    "UPDATE files f SET seq = k.s FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[]) \
                     AS k(id, r, u, s) WHERE f.id = k.id AND f.room_id = k.r AND f.uploader_id = k.u AND f.seq IS NULL \
                     RETURNING f.id",
                )
                .bind(&f_id)
                .bind(&f_room)
                .bind(&f_user)
                .bind(&f_seq)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                let shared: HashSet<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
                drop(new);
                for fate in &mut fates {
                    if let Fate::Insert(m) = fate
                        && m.files.iter().any(|f| !shared.contains(&f.id))
                    {
                        Arc::make_mut(m).files.retain(|f| shared.contains(&f.id));
                    }
                }
            }
        }
        tx.commit().await.map_err(db_err)?;

        // 6. Answers; the originals of earlier-stored duplicates are read after the commit (rare).
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

shared::impl_sql_store!(PgStore);

/// Test support: a throwaway schema per test run, so runs never see each other's rows.
#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
