//! A connect's store reads cost the same in a 10-member room and in a 2,000-member room (issue 18).
//!
//! The statements are the ones the SQL stores run on a connect ([`super::connect_sql`]), run here on a
//! SQLite database migrated by the real store and seeded as a big room is in production: one `join`
//! system message per member, a few texts on top, readers who never read (`last_read` 0). SQLite counts
//! the virtual-machine steps each statement takes (`sqlite3_stmt_status(SQLITE_STMTSTATUS_VM_STEP)`),
//! which is the work it does, independent of the machine's speed or load: a statement that walks a
//! room's rows shows it here whatever the timing. The query plans are printed (`--nocapture`) for
//! reading.

use rusqlite::{Connection, StatementStatus, ToSql, params};

use super::connect_sql;
use super::shared::Dialect;
use super::sql::SqlStore;

/// Text messages on top of the joins, in each room: what each reader has unread.
const TEXTS: i64 = 20;

/// Seeds room `room` with `members` members (user ids `first_user..`), its `create` message, one `join`
/// per member and [`TEXTS`] texts from its owner; every member has `last_read` 0.
fn seed_room(db: &Connection, room: i64, first_user: i64, members: i64) -> rusqlite::Result<()> {
    let owner = first_user;
    for user in first_user..first_user + members {
        db.execute(
            "INSERT INTO users (id, username, username_key, display_name, password_hash, created_at) \
             VALUES (?1, ?2, ?2, ?2, '', 0)",
            params![user, format!("u{user}")],
        )?;
        db.execute(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, revoked) VALUES (?1, ?2, 0, ?3, 0)",
            params![format!("s{user}"), user, i64::MAX],
        )?;
    }
    db.execute(
        "INSERT INTO rooms (id, name, name_key, visibility, created_by, created_at) VALUES (?1, ?2, ?2, 'public', ?3, 0)",
        params![room, format!("room{room}"), owner],
    )?;
    let mut seq = 0;
    let mut message = |kind: &str, sender: i64, body: &str| -> rusqlite::Result<()> {
        seq += 1;
        db.execute(
            "INSERT INTO messages (room_id, seq, kind, sender_id, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
            params![room, seq, kind, sender, body],
        )?;
        if kind == "text" {
            // What the writer thread does for a text message: its search-index id (migration 0025),
            // which the unread count reads.
            db.execute(
                "INSERT INTO messages_fts_ids (room_id, seq, sender_id) VALUES (?1, ?2, ?3)",
                params![room, seq, sender],
            )?;
        }
        Ok(())
    };
    message("create", owner, "")?;
    for user in first_user..first_user + members {
        let role = if user == owner { "owner" } else { "member" };
        db.execute(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, 0)",
            params![room, user, role],
        )?;
        message("join", user, "")?;
    }
    for i in 0..TEXTS {
        message("text", owner, &format!("hello {i}"))?;
    }
    db.execute("UPDATE rooms SET last_seq = ?1 WHERE id = ?2", params![seq, room])?;
    Ok(())
}

/// Runs `sql` with `args` to the end; SQLite's VM steps for it.
fn steps(db: &Connection, sql: &str, args: &[&dyn ToSql]) -> u64 {
    let plan: Vec<String> = db
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .and_then(|mut s| s.query_map(args, |r| r.get::<_, String>(3))?.collect())
        .expect("query plan");
    eprintln!("{}\n  {}", sql.split_whitespace().take(8).collect::<Vec<_>>().join(" "), plan.join("\n  "));
    // A full scan of a table is work that grows with the table, whatever the user: never on a connect.
    assert!(!plan.iter().any(|p| p.starts_with("SCAN ")), "a connect statement scans a table: {sql}\n{plan:?}");
    let mut stmt = db.prepare(sql).expect("prepare");
    let mut rows = stmt.query(args).expect("query");
    while rows.next().expect("step").is_some() {}
    drop(rows);
    stmt.get_status(StatementStatus::VmStep) as u64
}

/// The VM steps of every statement a connect of `user` (session `s{user}`) runs, in `room`.
fn connect_steps(db: &Connection, user: i64, room: i64) -> Vec<(&'static str, u64)> {
    let last_seq: i64 = db.query_row("SELECT last_seq FROM rooms WHERE id = ?1", [room], |r| r.get(0)).unwrap();
    let session = format!("s{user}");
    vec![
        ("session and user", steps(db, connect_sql::SESSION_USER, &[&session])),
        ("user_rooms", steps(db, &connect_sql::user_rooms(), &[&user])),
        ("room_views", steps(db, &connect_sql::room_views(<SqlStore as Dialect>::UNREAD_COUNT), &[&user])),
        ("last message", steps(db, &connect_sql::message_row(), &[&room, &last_seq])),
        ("its files", steps(db, &connect_sql::files_between(), &[&room, &last_seq, &last_seq])),
    ]
}

#[tokio::test]
async fn a_connect_reads_as_much_in_a_big_room_as_in_a_small_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parley.db");
    // The real store creates the schema (every migration), then closes.
    let store = SqlStore::open_sqlite(&path).await.unwrap();
    crate::store::Store::close(&store).await;
    drop(store);

    let mut db = Connection::open(&path).unwrap();
    let tx = db.transaction().unwrap();
    seed_room(&tx, 1, 1, 10).unwrap();
    seed_room(&tx, 2, 1_000, 2_000).unwrap();
    // Other rooms of the server, none of the readers': a connect must not look at them either.
    for room in 3..300 {
        seed_room(&tx, room, 10_000 + room * 2, 2).unwrap();
    }
    tx.commit().unwrap();
    db.execute_batch("ANALYZE").unwrap();

    // The last member of each room: a plain member with everything unread.
    let small = connect_steps(&db, 10, 1);
    let big = connect_steps(&db, 2_999, 2);
    eprintln!("VM steps per statement, 10 members: {small:?}\n                      2,000 members: {big:?}");
    for ((name, s), (_, b)) in small.iter().zip(&big) {
        // A few steps of slack for b-tree depth; a walk over the room's members or joins is thousands.
        assert!(*b <= s + 16, "{name}: {b} VM steps in a 2,000-member room, {s} in a 10-member room");
    }
    // The unread count is right (the texts, not the joins).
    let unread: i64 = db
        .query_row(
            &format!(
                "SELECT unread FROM ({}) WHERE id = 2",
                connect_sql::room_views(<SqlStore as Dialect>::UNREAD_COUNT)
            ),
            [2_999],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unread, TEXTS);
}
