//! The SQLite store (the default). Runtime queries with `$n` placeholders, so the same statements serve
//! PostgreSQL too: those are written once in `shared`, and this file holds SQLite's own
//! (`shared::Dialect`: `BEGIN IMMEDIATE`, the direct-room insert, `mark_read`'s functions, the
//! batched append). Migrations are embedded in the binary.
//!
//! Message appends, the hot write path, do not go through sqlx: they run on a dedicated writer thread
//! with its own `rusqlite` connection (`sqlite_writer`). Nor do a connect's reads (the session with its
//! user, the user's rooms, the greeting's room views): they run on reader threads (`sqlite_reader`).
//!
//! Durability: WAL with `synchronous=FULL`, so a commit is on disk when [`Store::append`](super::Store::append) returns —
//! acknowledgements are sent only after that. Group commit upstream makes one sync cover many messages.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::rows::{self, MSG_SELECT};
use super::search_sql;
use super::shared;
use super::sqlite_reader::Reader;
use super::sqlite_writer::{Outcome, Writer};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::search::{self, SearchHits, SearchQuery};

pub struct SqlStore {
    pool: SqlitePool,
    writer: Writer,
    reader: Reader,
}

fn db_err(e: sqlx::Error) -> Error {
    rows::db_err::<sqlx::Sqlite>(e)
}

/// How long a write waits for SQLite's write lock (held by another connection) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
        let filename = opts.get_filename().to_owned();
        let opts_path = (!filename.as_os_str().is_empty() && !filename.to_string_lossy().starts_with(":memory:"))
            .then_some(filename);
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // Found by profiling durable ingest: a larger page cache keeps hot room pages out of pread, a
        // rarer checkpoint copies fewer pages back, and statement journals stay in memory.
        let opts =
            opts.pragma("cache_size", "-65536").pragma("wal_autocheckpoint", "8192").pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // When SQLite rolls a transaction back by itself (a failed COMMIT on a full disk), sqlx still
            // counts it open and every later `BEGIN` on that connection fails ("begin_with at non-zero
            // transaction depth"). Flush the rollback a dropped transaction queued, then discard any
            // connection still counted inside a transaction: the pool opens a fresh one.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let path = opts_path.ok_or_else(|| {
            anyhow::anyhow!("an in-memory SQLite database cannot be shared with the writer; use `memory:` instead")
        })?;
        let writer = Writer::open(&path, BUSY_TIMEOUT)?;
        let reader = Reader::open(&path, BUSY_TIMEOUT, <Self as shared::Dialect>::UNREAD_COUNT)?;
        Ok(SqlStore { pool, writer, reader })
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

    const LOCK_ROOM: &'static str = "SELECT id FROM rooms WHERE id = $1";

    // The search index's ids (migration 0025) hold exactly the messages the count counts, the text
    // messages that are not deleted, with their sender, and nothing else of the room: its index
    // `(room_id, seq, sender_id)` covers the count, and no index on `messages` is written per message
    // for it. Pinned, so the planner cannot walk the table instead (the statement would fail).
    const UNREAD_COUNT: &'static str = "(SELECT COUNT(*) FROM messages_fts_ids m INDEXED BY messages_fts_ids_by_seq \
         WHERE m.room_id = mb.room_id AND m.seq > mb.last_read AND m.seq <= r.last_seq AND m.sender_id <> mb.user_id)";

    /// IMMEDIATE takes the write lock up front: a deferred transaction that reads first can fail to
    /// upgrade (SQLITE_BUSY_SNAPSHOT) without waiting for the busy timeout.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)
    }

    async fn probe_write(&self) -> Result<()> {
        self.writer.probe().await
    }

    async fn close_writer(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn read_session(&self, id: &SessionId) -> Result<Option<crate::store::Session>> {
        self.reader.session(id).await
    }

    async fn read_session_user(&self, id: &SessionId) -> Result<Option<(crate::store::Session, User)>> {
        self.reader.session_user(id).await
    }

    async fn read_user(&self, id: UserId) -> Result<Option<User>> {
        self.reader.user(id).await
    }

    async fn read_user_rooms(&self, user: UserId) -> Result<Vec<Room>> {
        self.reader.user_rooms(user).await
    }

    async fn read_room_views(&self, user: UserId) -> Result<Vec<RoomView>> {
        self.reader.room_views(user).await
    }

    /// FTS5 drives the query: it walks the matches newest first (`messages_fts_ids` numbers them in
    /// indexing order), each joined to the caller's membership and the filters, and stops after the
    /// search window. The window is ranked here, not by FTS5's `bm25` (which loads every row's position
    /// lists and cost two thirds of a query: see BENCHMARKS.md, *Search*): by [`search::score`], the
    /// number of the text's words that match, as the in-memory store ranks, then newest first. Only the
    /// page's messages are read whole.
    async fn search(&self, user: UserId, q: &SearchQuery) -> Result<SearchHits> {
        let window = format!(
            "SELECT f.rowid AS fid, m.body AS body FROM messages_fts f \
             CROSS JOIN messages_fts_ids i ON i.id = f.rowid CROSS JOIN messages m ON m.room_id = i.room_id AND m.seq = i.seq {} \
             ORDER BY f.rowid DESC LIMIT {}",
            // CROSS JOIN fixes the join order: the full-text match runs once, as the outer loop (else
            // the planner may run it once per member row).
            search_sql::FILTERS
                .replace("{MATCH}", "messages_fts MATCH $1")
                .replace("JOIN members", "CROSS JOIN members"),
            search::WINDOW
        );
        let mut query = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(window))
            .bind(search_sql::fts5_match(&q.terms))
            .bind(user.0);
        // `$3`..`$8`: the filters (the window has no page bounds).
        for v in &search_sql::filter_values(q)[..6] {
            query = query.bind(*v);
        }
        let found = query.fetch_all(&self.pool).await.map_err(db_err)?;
        let mut ranked: Vec<(usize, i64)> =
            found.iter().map(|(fid, body)| (search::score(body, &q.terms).unwrap_or(0), *fid)).collect();
        ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let page: Vec<i64> =
            ranked.iter().skip(q.offset as usize).take(q.limit as usize + 1).map(|(_, fid)| *fid).collect();
        let has_more = page.len() > q.limit as usize;
        let page = &page[..page.len().min(q.limit as usize)];
        if page.is_empty() {
            return Ok(SearchHits { messages: Vec::new(), has_more });
        }
        let ids = page.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        // `ids` are integers from the index, not input.
        let select = MSG_SELECT.replacen("SELECT m.", "SELECT i.id AS fid, m.", 1).replacen(
            "FROM messages m",
            "FROM messages_fts_ids i JOIN messages m ON m.room_id = i.room_id AND m.seq = i.seq",
            1,
        );
        let sql = format!("{select} WHERE i.id IN ({ids})");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(db_err)?;
        let mut by_id = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let fid: i64 = sqlx::Row::try_get(row, "fid").map_err(db_err)?;
            by_id.insert(fid, rows::message_from(row)?);
        }
        // In rank order; a message deleted between the two reads is left out.
        let messages = page.iter().filter_map(|fid| by_id.remove(fid)).collect();
        Ok(SearchHits { messages, has_more })
    }

    async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let outcomes = self.writer.append(batch.to_vec()).await?;
        // The originals of earlier-stored duplicates are read after the commit (rare).
        let mut out: Vec<Appended> = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            out.push(match o {
                Outcome::Stored(m) => Appended::Stored(m),
                Outcome::SameAsEarlier(first) => match &out[first] {
                    Appended::Stored(m) | Appended::Duplicate(m) => Appended::Duplicate(m.clone()),
                    Appended::NotMember => Appended::NotMember,
                },
                Outcome::Existing(room, seq) => match self.message_by_seq(room, seq).await? {
                    Some(m) => Appended::Duplicate(m),
                    None => Appended::NotMember,
                },
                Outcome::Refused => Appended::NotMember,
            });
        }
        Ok(out)
    }
}

shared::impl_sql_store!(SqlStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Session, Store};

    /// The reader threads answer a connect's reads as the pool's statements do: a group room whose
    /// last message shares a file and mentions the reader, a direct conversation (its peer), a session.
    #[tokio::test]
    async fn the_reader_threads_read_what_the_pool_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let mut users = Vec::new();
        for name in ["rita", "sam"] {
            let display = DisplayName::parse(name).unwrap();
            users.push(
                store.create_user(&Username::parse(name).unwrap(), &display, "hash", now_millis()).await.unwrap(),
            );
        }
        let (rita, sam) = (&users[0], &users[1]);
        let room = store
            .create_room(&RoomName::parse("read").unwrap(), Visibility::Public, rita.id, now_millis())
            .await
            .unwrap();
        store.add_member(room.id, sam.id, Role::Member, now_millis()).await.unwrap();
        let (direct, _) = store.open_direct(rita.id, sam.id, now_millis()).await.unwrap();
        let file = FileMeta {
            id: "f1".into(),
            room: room.id,
            uploader: rita.id,
            seq: None,
            blob: "b".repeat(64),
            name: "f1.png".into(),
            size: 10,
            content_type: "image/png".into(),
            width: Some(3),
            height: Some(4),
            created_at: now_millis(),
            thumbnail: None,
        };
        store.create_file(&file).await.unwrap();
        for (room, files, mentions) in
            [(room.id, vec![], vec![]), (room.id, vec![file], vec![sam.id]), (direct.id, vec![], vec![])]
        {
            let msg = NewMessage { mentions, files, ..NewMessage::test_text(room, rita, "hello", None) };
            assert!(matches!(store.append(&[msg]).await.unwrap()[0], Appended::Stored(_)));
        }
        let views = store.room_views(sam.id).await.unwrap();
        assert_eq!(views, store.pool_room_views(sam.id).await.unwrap());
        assert_eq!(views.len(), 2);
        let group = views.iter().find(|v| v.room.id == room.id).unwrap();
        assert_eq!((group.unread, group.mentions), (2, 1));
        assert_eq!(group.last_message.as_ref().map(|m| m.files.len()), Some(1), "the last message has its file");
        let dm = views.iter().find(|v| v.room.id == direct.id).unwrap();
        assert_eq!(dm.peer.as_ref(), Some(rita));
        assert_eq!(store.user_rooms(sam.id).await.unwrap(), store.pool_user_rooms(sam.id).await.unwrap());
        assert_eq!(store.user(sam.id).await.unwrap(), store.pool_user(sam.id).await.unwrap());
        let session =
            Session { id: SessionId::generate(), user: sam.id, expires_at: now_millis() + 60_000, revoked: false };
        store.create_session(&session, now_millis()).await.unwrap();
        assert_eq!(store.session(&session.id).await.unwrap(), Some(session.clone()));
        assert_eq!(store.session_user(&session.id).await.unwrap(), store.pool_session_user(&session.id).await.unwrap());
        assert_eq!(store.session_user(&session.id).await.unwrap(), Some((session, sam.clone())));
        store.close().await;
        assert!(matches!(store.user(sam.id).await, Err(Error::ShuttingDown)), "closed readers refuse");
    }

    /// Issue 11 item 4: SQLite rolls a transaction back by itself when a COMMIT hits a full disk, and
    /// sqlx then counts the connection as still inside it. Reproduced here with a `ROLLBACK` sqlx does
    /// not see: every connection of the pool ends up so, and writes through the pool (creating rooms)
    /// and appends must still work.
    #[tokio::test]
    async fn writes_work_after_sqlite_rolled_back_behind_sqlx() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let name = Username::parse("wendy").unwrap();
        let user = store.create_user(&name, &DisplayName::parse("wendy").unwrap(), "hash", now_millis()).await.unwrap();
        let room = store
            .create_room(&RoomName::parse("disk").unwrap(), Visibility::Public, user.id, now_millis())
            .await
            .unwrap();
        // Hold every connection at once so each of them is broken, then release them together.
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut tx = shared::Dialect::begin(&store).await.unwrap();
            sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
            held.push(tx);
        }
        drop(held);
        for i in 0..8 {
            let name = RoomName::parse(&format!("after{i}")).unwrap();
            store
                .create_room(&name, Visibility::Public, user.id, now_millis())
                .await
                .unwrap_or_else(|e| panic!("create_room {i} failed: {e:#}"));
        }
        for i in 0..8 {
            let msg = NewMessage::test_text(room.id, &user, &format!("after {i}"), None);
            let out = store.append(&[msg]).await.unwrap_or_else(|e| panic!("append {i} failed: {e:#}"));
            assert!(matches!(out[0], Appended::Stored(_)), "{out:?}");
        }
        store.probe_write().await.unwrap();
    }
    /// Migration 0025 on a database that already holds messages: the search ids keep their numbers
    /// (FTS5's rowids) and gain their senders, search still finds what it found, an edit and a delete
    /// still reach the index through the remade triggers, and the unread count the greeting runs reads
    /// the ids where it read `messages_unread`.
    #[test]
    fn migration_0025_keeps_the_search_ids_and_counts_unread_from_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = rusqlite::Connection::open(dir.path().join("m.db")).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let (before, after): (Vec<_>, Vec<_>) =
            files.into_iter().partition(|p| p.file_name().unwrap().to_str().unwrap() < "0025");
        assert!(after[0].file_name().unwrap().to_str().unwrap().starts_with("0025"), "{after:?}");
        for f in &before {
            db.execute_batch(&std::fs::read_to_string(f).unwrap()).unwrap();
        }
        db.execute_batch(
            "INSERT INTO users (id, username, username_key, display_name, password_hash, created_at) \
               VALUES (1, 'ann', 'ann', 'ann', '', 0), (2, 'bob', 'bob', 'bob', '', 0);
             INSERT INTO rooms (id, name, name_key, visibility, created_by, created_at, last_seq) \
               VALUES (1, 'r', 'r', 'public', 1, 0, 4);
             INSERT INTO members (room_id, user_id, role, joined_at, last_read) \
               VALUES (1, 1, 'owner', 0, 0), (1, 2, 'member', 0, 0);
             INSERT INTO messages (room_id, seq, kind, sender_id, body, created_at) VALUES \
               (1, 1, 'join', 2, '', 0), (1, 2, 'text', 1, 'alpha one', 0), (1, 3, 'text', 2, 'alpha two', 0), \
               (1, 4, 'text', 1, 'gamma', 0);
             -- As the writer indexed them before 0025 (ids not starting at 1, to see them kept).
             INSERT INTO messages_fts_ids (id, room_id, seq) VALUES (10, 1, 2), (11, 1, 3), (12, 1, 4);
             INSERT INTO messages_fts (rowid, body) VALUES (10, 'alpha one'), (11, 'alpha two'), (12, 'gamma');",
        )
        .unwrap();
        for f in &after {
            db.execute_batch(&std::fs::read_to_string(f).unwrap()).unwrap();
        }
        let ids: Vec<(i64, i64, i64)> = db
            .prepare("SELECT id, seq, sender_id FROM messages_fts_ids ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, [(10, 2, 1), (11, 3, 2), (12, 4, 1)]);
        let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
        let matches =
            |word: &str| count(&format!("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '{word}'"));
        assert_eq!(matches("alpha"), 2);
        let unread = |user: i64| -> i64 {
            let sql = format!(
                "SELECT {} FROM members mb JOIN rooms r ON r.id = mb.room_id WHERE mb.user_id = ?1",
                <SqlStore as shared::Dialect>::UNREAD_COUNT
            );
            db.query_row(&sql, [user], |r| r.get(0)).unwrap()
        };
        assert_eq!((unread(1), unread(2)), (1, 2), "texts from others, joins not counted");
        // The remade triggers: an edit re-indexes under the same id, a delete unindexes and uncounts.
        db.execute_batch("UPDATE messages SET body = 'delta' WHERE room_id = 1 AND seq = 2").unwrap();
        assert_eq!((matches("alpha"), matches("delta")), (1, 1));
        assert_eq!(count("SELECT id FROM messages_fts_ids WHERE seq = 2"), 10);
        db.execute_batch("UPDATE messages SET body = '', deleted = TRUE WHERE room_id = 1 AND seq = 3").unwrap();
        assert_eq!((matches("alpha"), unread(1)), (0, 0));
        assert_eq!(count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_unread'"), 0);
    }

    /// Migration 0024: a batch's search terms reach FTS5's b-tree once, at the batch's commit. When a
    /// trigger indexed each message, every insert opened a statement journal and FTS5 flushed a segment
    /// per message: with merging off, 200 messages added 200 `messages_fts_data` rows; now they add 2.
    /// Counted in rows, not timed; and the messages stay searchable.
    #[tokio::test]
    async fn a_batch_is_indexed_for_search_once_at_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let name = Username::parse("fay").unwrap();
        let user = store.create_user(&name, &DisplayName::parse("fay").unwrap(), "hash", now_millis()).await.unwrap();
        let room = store
            .create_room(&RoomName::parse("index").unwrap(), Visibility::Public, user.id, now_millis())
            .await
            .unwrap();
        let fts_rows = || async {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM messages_fts_data").fetch_one(&store.pool).await.unwrap();
            n
        };
        // No merging, so that every segment FTS5 writes stays countable.
        sqlx::query("INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO messages_fts (messages_fts, rank) VALUES ('crisismerge', 1000)")
            .execute(&store.pool)
            .await
            .unwrap();
        let before = fts_rows().await;
        let batch: Vec<NewMessage> = (0..200)
            .map(|i| NewMessage::test_text(room.id, &user, &format!("word{i} shared"), Some(&format!("c{i}"))))
            .collect();
        let out = store.append(&batch).await.unwrap();
        assert!(out.iter().all(|a| matches!(a, Appended::Stored(_))), "{out:?}");
        let added = fts_rows().await - before;
        assert!(added <= 5, "one commit of 200 messages added {added} FTS5 data rows (a segment per message?)");
        let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'shared'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(found, 200);
    }
}
