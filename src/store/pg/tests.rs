//! PostgreSQL-only checks: concurrent nodes on one database (the store contract covers the rest).

use std::collections::HashSet;

use super::testing::{url_or_skip, with_schema};
use super::*;
use crate::store::Store;

fn text(room: RoomId, sender: &User, body: String, cid: Option<String>) -> NewMessage {
    NewMessage::test_text(room, sender, &body, cid.as_deref())
}

/// Every seq of `room`, read back page by page.
async fn all_seqs(store: &PgStore, room: RoomId) -> Vec<Seq> {
    let mut seqs = Vec::new();
    loop {
        let after = seqs.last().copied().unwrap_or(0);
        let page = store.history(room, HistoryQuery::After { after, limit: HistoryQuery::MAX_LIMIT }).await.unwrap();
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
            nodes.push(Arc::new(PgStore::connect_pool(opts.clone(), pool).await.expect("connecting to PostgreSQL")));
        }
        let alice = nodes[0]
            .create_user(&Username::parse("alice").unwrap(), &DisplayName::parse("Alice").unwrap(), "h", now_millis())
            .await
            .unwrap();
        let busy = nodes[0]
            .create_room(&RoomName::parse("busy").unwrap(), Visibility::Public, alice.id, now_millis())
            .await
            .unwrap();
        let side = nodes[0]
            .create_room(&RoomName::parse("side").unwrap(), Visibility::Public, alice.id, now_millis())
            .await
            .unwrap();

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
            .create_user(&Username::parse("bob").unwrap(), &DisplayName::parse("Bob").unwrap(), "h", now_millis())
            .await
            .unwrap();
        let (x, y) = tokio::join!(
            nodes[0].open_direct(alice.id, bob.id, now_millis()),
            nodes[1].open_direct(bob.id, alice.id, now_millis())
        );
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

/// Migration 0024: the search index's GIN pending list is merged in small pieces, so no insert waits
/// for the merge of a 4 MB list (ack p99 at 5,000 msg/s: 53–80 ms with the default, 21–23 ms with this;
/// BENCHMARKS.md). Read from the catalogue, in this test's own schema.
#[tokio::test]
async fn the_search_index_merges_its_pending_list_in_small_pieces() {
    let Some(url) = url_or_skip("the_search_index_merges_its_pending_list_in_small_pieces") else { return };
    with_schema(&url, |opts| async move {
        let store = PgStore::connect_pool(opts, PgPoolOptions::new().max_connections(1)).await.unwrap();
        let options: Option<Vec<String>> = sqlx::query_scalar(
            "SELECT c.reloptions FROM pg_class c WHERE c.relname = 'messages_search' \
             AND c.relnamespace = current_schema()::regnamespace",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        let options = options.unwrap_or_default();
        assert!(options.iter().any(|o| o == "gin_pending_list_limit=256"), "{options:?}");
    })
    .await;
}
