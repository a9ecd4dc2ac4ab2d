//! SQLite's hot write path: message appends run on one dedicated thread that owns a `rusqlite`
//! connection, with cached prepared statements and one `BEGIN IMMEDIATE … COMMIT` per batch.
//!
//! Why not sqlx here: its SQLite driver runs every statement on a worker thread reached over a channel,
//! and at tens of thousands of messages per second that hop (and the per-statement encoding around it)
//! cost several times what SQLite itself spends on an insert. Everything else (reads, rooms, members,
//! sessions…) stays on the sqlx pool; the two share the database file and SQLite's write lock, and wait
//! for each other through the busy timeout.
//!
//! The writer also indexes each new text message for search (`messages_fts_ids`, `messages_fts`) with two
//! plain inserts: migration 0024 dropped the trigger that did it, because a trigger makes every message
//! insert open a statement journal, and FTS5 writes its pending terms to disk at each such savepoint (a
//! segment per message, then merges: a third of the server's CPU at saturation). Now a batch's terms are
//! written once, at its commit. This thread is the only path that inserts messages into SQLite.
//!
//! Durability is unchanged: WAL with `synchronous=FULL`, so the batch is on disk when the commit
//! returns, and only then is the caller answered. A failed batch is rolled back on this connection
//! whatever state SQLite left it in (a COMMIT that failed on a full disk may already have rolled back),
//! so the next batch starts clean.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::rows::mentions_to_text;
use crate::core::domain::*;
use crate::core::error::{Error, Result};

/// What became of one message of a batch; `Existing` originals are read by the caller after the commit.
#[derive(Debug)]
pub(super) enum Outcome {
    Stored(Arc<Message>),
    /// The same `(room, sender, client_id)` as an earlier message of this batch (its index).
    SameAsEarlier(usize),
    /// Stored before, with this seq.
    Existing(RoomId, Seq),
    /// No such room, or a text from a non-member.
    Refused,
}

enum Job {
    Append(Vec<NewMessage>, oneshot::Sender<Result<Vec<Outcome>>>),
    Probe(oneshot::Sender<Result<()>>),
}

pub(super) struct Writer {
    tx: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn sql_err(e: rusqlite::Error) -> Error {
    Error::Internal(anyhow::Error::new(e).context("database"))
}

impl Writer {
    /// Opens the writer's own connection to the database at `path` (already created and migrated).
    pub(super) fn open(path: &Path, busy_timeout: Duration) -> anyhow::Result<Writer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        // The same settings as the sqlx pool's connections (see `SqlStore::connect`).
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 8192; PRAGMA temp_store = memory;",
        )?;
        conn.set_prepared_statement_cache_capacity(32);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new().name("parley-sqlite-writer".into()).spawn(move || {
            let mut conn = conn;
            while let Ok(job) = rx.recv() {
                match job {
                    Job::Append(batch, reply) => {
                        let _ = reply.send(in_transaction(&mut conn, |tx| append(tx, &batch)));
                    }
                    Job::Probe(reply) => {
                        let _ = reply.send(in_transaction(&mut conn, probe));
                    }
                }
            }
            if let Err((_, e)) = conn.close() {
                tracing::warn!(error = %e, "closing the SQLite writer connection failed");
            }
        })?;
        Ok(Writer { tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)) })
    }

    async fn call<T>(&self, job: impl FnOnce(oneshot::Sender<Result<T>>) -> Job) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let tx = self.tx.lock().clone().ok_or(Error::ShuttingDown)?;
        tx.send(job(reply)).map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::internal(anyhow::anyhow!("the SQLite writer thread stopped")))?
    }

    /// Stores `batch` in one transaction (see [`Store::append`](super::Store::append)).
    pub(super) async fn append(&self, batch: Vec<NewMessage>) -> Result<Vec<Outcome>> {
        self.call(|reply| Job::Append(batch, reply)).await
    }

    /// A durable write that changes nothing visible.
    pub(super) async fn probe(&self) -> Result<()> {
        self.call(Job::Probe).await
    }

    /// Lets the thread finish the job in hand, then closes its connection.
    pub(super) async fn close(&self) {
        self.tx.lock().take();
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Runs `f` inside `BEGIN IMMEDIATE … COMMIT`; on any failure makes sure no transaction stays open.
fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
) -> Result<T> {
    let run = |conn: &mut Connection| -> rusqlite::Result<T> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    };
    let out = run(conn);
    if out.is_err() && !conn.is_autocommit() {
        // Dropping the transaction already tried; a failed COMMIT can leave one open all the same.
        let _ = conn.execute_batch("ROLLBACK");
    }
    out.map_err(sql_err)
}

/// Rewrites the header's `user_version` with its own value: page 1 goes through the WAL and the commit
/// syncs, as any write's would.
fn probe(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    tx.execute_batch(&format!("PRAGMA user_version = {v}"))
}

fn append(tx: &rusqlite::Transaction<'_>, batch: &[NewMessage]) -> rusqlite::Result<Vec<Outcome>> {
    let mut by_client_id =
        tx.prepare_cached("SELECT seq FROM messages WHERE room_id = ?1 AND sender_id = ?2 AND client_id = ?3")?;
    let mut is_member = tx.prepare_cached("SELECT 1 FROM members WHERE room_id = ?1 AND user_id = ?2")?;
    let mut last_seq = tx.prepare_cached("SELECT last_seq FROM rooms WHERE id = ?1")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO messages (room_id, seq, kind, sender_id, target_id, body, client_id, mentions, created_at, \
         reply_to, thread) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut mention =
        tx.prepare_cached("INSERT INTO mentions (room_id, seq, user_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?;
    // The search index of a text message (migration 0024: not a trigger, so the insert above opens no
    // statement journal and FTS5 writes a batch's terms once, at commit).
    let mut index_id =
        tx.prepare_cached("INSERT INTO messages_fts_ids (room_id, seq, sender_id) VALUES (?1, ?2, ?3)")?;
    let mut index_body = tx.prepare_cached("INSERT INTO messages_fts (rowid, body) VALUES (?1, ?2)")?;
    let mut set_last = tx.prepare_cached("UPDATE rooms SET last_seq = ?1 WHERE id = ?2")?;
    let mut share_file = tx.prepare_cached(
        "UPDATE files SET seq = ?1 WHERE id = ?2 AND room_id = ?3 AND uploader_id = ?4 AND seq IS NULL",
    )?;

    // Per room: the last seq (None: no such room); per (room, sender): membership.
    let mut seqs: HashMap<RoomId, Option<Seq>> = HashMap::new();
    let mut members: HashMap<(RoomId, UserId), bool> = HashMap::new();
    let mut in_batch: HashMap<(RoomId, UserId, &str), usize> = HashMap::new();
    let mut touched: HashSet<RoomId> = HashSet::new();
    let mut out = Vec::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        let cid = m.client_id.as_ref().map(|c| c.as_str());
        if let Some(cid) = cid {
            if let Some(&first) = in_batch.get(&(m.room, m.sender.id, cid)) {
                out.push(Outcome::SameAsEarlier(first));
                continue;
            }
            let stored: Option<Seq> =
                by_client_id.query_row(params![m.room.0, m.sender.id.0, cid], |r| r.get(0)).optional()?;
            if let Some(seq) = stored {
                out.push(Outcome::Existing(m.room, seq));
                continue;
            }
        }
        let last = match seqs.get(&m.room) {
            Some(s) => *s,
            None => {
                let s: Option<Seq> = last_seq.query_row(params![m.room.0], |r| r.get(0)).optional()?;
                seqs.insert(m.room, s);
                s
            }
        };
        let Some(last) = last else {
            out.push(Outcome::Refused); // no such room
            continue;
        };
        if m.kind == MessageKind::Text {
            let member = match members.get(&(m.room, m.sender.id)) {
                Some(&b) => b,
                None => {
                    let b = is_member.exists(params![m.room.0, m.sender.id.0])?;
                    members.insert((m.room, m.sender.id), b);
                    b
                }
            };
            if !member {
                out.push(Outcome::Refused);
                continue;
            }
        }
        let seq = last + 1;
        insert.execute(params![
            m.room.0,
            seq,
            m.kind.as_str(),
            m.sender.id.0,
            m.target.as_ref().map(|t| t.id.0),
            m.body,
            cid,
            mentions_to_text(&m.mentions),
            m.ts,
            m.reply_to,
            m.thread,
        ])?;
        if m.kind == MessageKind::Text {
            index_id.execute(params![m.room.0, seq, m.sender.id.0])?;
            index_body.execute(params![tx.last_insert_rowid(), m.body])?;
        }
        for u in &m.mentions {
            mention.execute(params![m.room.0, seq, u.0])?;
        }
        let mut files = Vec::with_capacity(m.files.len());
        for f in &m.files {
            // A file already shared (by a racing send) stays with its first message.
            if share_file.execute(params![seq, f.id, m.room.0, m.sender.id.0])? == 1 {
                files.push(FileMeta { seq: Some(seq), ..f.clone() });
            }
        }
        seqs.insert(m.room, Some(seq));
        touched.insert(m.room);
        if let Some(cid) = cid {
            in_batch.insert((m.room, m.sender.id, cid), i);
        }
        out.push(Outcome::Stored(Arc::new(Message {
            room: m.room,
            seq,
            kind: m.kind,
            sender: Some(m.sender.clone()),
            target: m.target.clone(),
            body: m.body.clone(),
            client_id: cid.map(str::to_owned),
            mentions: m.mentions.clone(),
            ts: m.ts,
            edited_at: None,
            deleted: false,
            files,
            reply_to: m.reply_to,
            thread: m.thread,
            extras: MessageExtras { quote: m.quote.clone(), ..Default::default() },
        })));
    }
    for room in touched {
        if let Some(Some(seq)) = seqs.get(&room) {
            set_last.execute(params![seq, room.0])?;
        }
    }
    Ok(out)
}
