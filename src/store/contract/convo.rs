//! The store contract for issue 14: replies and threads, reactions, pins, notification settings,
//! followed threads.

use super::*;

pub(super) async fn run_all(store: &DynStore) {
    replies_keep_their_thread(store).await;
    reactions_are_idempotent_ordered_and_capped(store).await;
    pins_are_listed_newest_first(store).await;
    notify_settings_shape_room_views(store).await;
    followed_threads_count_unread_replies(store).await;
    retention_takes_reactions_and_pins_along(store).await;
    concurrent_reactions_count_exactly_and_respect_the_cap(store).await;
}

pub(super) async fn concurrent_reactions_count_exactly_and_respect_the_cap(store: &DynStore) {
    let a = user(store, "con").await;
    let r = room(store, &a, Visibility::Public).await;
    let seq = stored(&store.append(&[text(r.id, &a, "pile on", None)]).await.unwrap()[0]).seq;
    let mut users = Vec::new();
    for _ in 0..20 {
        users.push(user(store, "con").await);
    }
    // 20 users, the same emoji, twice each, all at once: exactly 20.
    let up = Emoji::parse("👍").unwrap();
    let tasks: Vec<_> = users
        .iter()
        .flat_map(|u| [u.id, u.id])
        .map(|u| {
            let (store, up) = (store.clone(), up.clone());
            tokio::spawn(async move { store.add_reaction(r.id, seq, u, &up, 1).await.unwrap() })
        })
        .collect();
    let mut added = 0;
    for t in tasks {
        added += usize::from(t.await.unwrap());
    }
    assert_eq!(added, 20, "each user's second add changed nothing");
    assert_eq!(store.reactions(r.id, &[seq]).await.unwrap()[0].1[0].users.len(), 20);
    // 25 distinct emoji at once on a fresh message: exactly 20 get in.
    let seq2 = stored(&store.append(&[text(r.id, &a, "cap race", None)]).await.unwrap()[0]).seq;
    let tasks: Vec<_> = ('a'..='y')
        .map(|c| {
            let (store, e, u) = (store.clone(), Emoji::parse(&c.to_string()).unwrap(), a.id);
            tokio::spawn(async move { store.add_reaction(r.id, seq2, u, &e, 1).await })
        })
        .collect();
    let (mut ok, mut capped) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => ok += 1,
            Err(Error::TooManyReactions) => capped += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, capped), (20, 5));
    assert_eq!(store.reactions(r.id, &[seq2]).await.unwrap()[0].1.len(), 20);
}

pub(super) async fn retention_takes_reactions_and_pins_along(store: &DynStore) {
    let a = user(store, "ret").await;
    let r = room(store, &a, Visibility::Public).await;
    let old = NewMessage { ts: 1_000, ..text(r.id, &a, "old", None) };
    let out = store.append(&[old, text(r.id, &a, "new", None)]).await.unwrap();
    let (s_old, s_new) = (stored(&out[0]).seq, stored(&out[1]).seq);
    let up = Emoji::parse("👍").unwrap();
    for s in [s_old, s_new] {
        store.add_reaction(r.id, s, a.id, &up, 1).await.unwrap();
        store.pin(r.id, s, a.id, s).await.unwrap();
    }
    assert_eq!(store.purge_before(r.id, 2_000).await.unwrap(), 1);
    let left: Vec<Seq> = store.reactions(r.id, &[s_old, s_new]).await.unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(left, vec![s_new]);
    let pins: Vec<Seq> = store.pins(r.id).await.unwrap().into_iter().map(|(s, _, _)| s).collect();
    assert_eq!(pins, vec![s_new]);
}

fn reply(room: RoomId, sender: &User, body: &str, parent: Seq, thread: Seq) -> NewMessage {
    NewMessage { reply_to: Some(parent), thread: Some(thread), ..text(room, sender, body, None) }
}

pub(super) async fn replies_keep_their_thread(store: &DynStore) {
    let a = user(store, "thr").await;
    let r = room(store, &a, Visibility::Public).await;
    let root = stored(&store.append(&[text(r.id, &a, "root", None)]).await.unwrap()[0]).seq;
    let other = stored(&store.append(&[text(r.id, &a, "other root", None)]).await.unwrap()[0]).seq;
    let batch =
        [reply(r.id, &a, "r1", root, root), text(r.id, &a, "plain", None), reply(r.id, &a, "r2", root + 2, root)];
    let out = store.append(&batch).await.unwrap();
    let (r1, r2) = (stored(&out[0]).clone(), stored(&out[2]).clone());
    assert_eq!((r1.reply_to, r1.thread), (Some(root), Some(root)), "the append answers them");
    let back = store.message(r.id, r2.seq).await.unwrap().unwrap();
    assert_eq!((back.reply_to, back.thread), (Some(root + 2), Some(root)), "and stores them");
    let page = store.history(r.id, HistoryQuery::Latest { limit: 10 }).await.unwrap();
    assert!(page.messages.iter().any(|m| m.seq == r1.seq && m.thread == Some(root)), "replies are in the main stream");

    let t = store.thread(r.id, root, HistoryQuery::Latest { limit: 10 }).await.unwrap();
    assert_eq!(t.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![r1.seq, r2.seq], "replies only, ascending");
    assert!(!t.has_more);
    let t = store.thread(r.id, root, HistoryQuery::After { after: r1.seq, limit: 1 }).await.unwrap();
    assert_eq!((t.messages[0].seq, t.has_more), (r2.seq, false));
    let t = store.thread(r.id, root, HistoryQuery::Before { before: r2.seq, limit: 1 }).await.unwrap();
    assert_eq!((t.messages[0].seq, t.has_more), (r1.seq, false));

    let stats = store.thread_stats(r.id, &[root, other]).await.unwrap();
    assert_eq!(stats, vec![(root, 2, r2.ts.max(r1.ts))], "roots without replies are left out");
    store.delete_message(r.id, r2.seq).await.unwrap();
    assert_eq!(
        store.thread_stats(r.id, &[root]).await.unwrap(),
        vec![(root, 1, r1.ts)],
        "deleted replies do not count"
    );
    let got = store.messages_at(r.id, &[root, other, 999]).await.unwrap();
    let mut seqs: Vec<Seq> = got.iter().map(|m| m.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![root, other]);
}

pub(super) async fn reactions_are_idempotent_ordered_and_capped(store: &DynStore) {
    let a = user(store, "rea").await;
    let b = user(store, "rea").await;
    let r = room(store, &a, Visibility::Public).await;
    let seq = stored(&store.append(&[text(r.id, &a, "react to me", None)]).await.unwrap()[0]).seq;
    let (up, party) = (Emoji::parse("👍").unwrap(), Emoji::parse("🎉").unwrap());
    assert!(store.add_reaction(r.id, seq, a.id, &up, 1).await.unwrap());
    assert!(!store.add_reaction(r.id, seq, a.id, &up, 2).await.unwrap(), "adding twice is one reaction");
    assert!(store.add_reaction(r.id, seq, b.id, &party, 3).await.unwrap());
    assert!(store.add_reaction(r.id, seq, b.id, &up, 4).await.unwrap());
    let got = store.reactions(r.id, &[seq]).await.unwrap();
    assert_eq!(
        got,
        vec![(
            seq,
            vec![
                Reaction { emoji: "👍".into(), users: vec![a.id, b.id] },
                Reaction { emoji: "🎉".into(), users: vec![b.id] }
            ]
        )],
        "first-reaction order, users in reaction order"
    );
    assert!(store.remove_reaction(r.id, seq, b.id, &party, 5).await.unwrap());
    assert!(!store.remove_reaction(r.id, seq, b.id, &party, 9).await.unwrap(), "removing twice changes nothing");
    // What changed after a time: current lists, an emptied one included.
    let other = stored(&store.append(&[text(r.id, &a, "other", None)]).await.unwrap()[0]).seq;
    assert!(store.add_reaction(r.id, other, a.id, &party, 6).await.unwrap());
    assert!(store.remove_reaction(r.id, other, a.id, &party, 7).await.unwrap());
    let changed = store.reactions_changed(r.id, other, 4, 10).await.unwrap();
    assert_eq!(changed.iter().map(|(s, l)| (*s, l.len())).collect::<Vec<_>>(), vec![(seq, 1), (other, 0)]);
    assert_eq!(store.reactions_changed(r.id, other, 6, 10).await.unwrap().len(), 1, "only after `since`");
    assert_eq!(store.reactions_changed(r.id, seq, 4, 10).await.unwrap().len(), 1, "only through `through`");
    assert_eq!(store.reactions_changed(r.id, other, 4, 1).await.unwrap()[0].0, other, "the newest");
    assert_eq!(store.reactions(r.id, &[seq]).await.unwrap()[0].1.len(), 1, "an emoji nobody uses is gone");
    assert!(matches!(store.add_reaction(r.id, 9999, a.id, &up, 5).await, Err(Error::MessageNotFound)));

    // At most 20 distinct emoji per message; more of an existing one is fine.
    let seq2 = stored(&store.append(&[text(r.id, &a, "cap", None)]).await.unwrap()[0]).seq;
    let many: Vec<Emoji> = ('a'..='u').map(|c| Emoji::parse(&c.to_string()).unwrap()).collect();
    for e in &many[..20] {
        assert!(store.add_reaction(r.id, seq2, a.id, e, 6).await.unwrap());
    }
    assert!(matches!(store.add_reaction(r.id, seq2, a.id, &many[20], 7).await, Err(Error::TooManyReactions)));
    assert!(store.add_reaction(r.id, seq2, b.id, &many[0], 8).await.unwrap());
    let both = store.reactions(r.id, &[seq, seq2]).await.unwrap();
    assert_eq!(both.iter().map(|(s, l)| (*s, l.len())).collect::<Vec<_>>(), vec![(seq, 1), (seq2, 20)]);
    assert!(store.reactions(r.id, &[seq2 + 100]).await.unwrap().is_empty());
}

pub(super) async fn pins_are_listed_newest_first(store: &DynStore) {
    let a = user(store, "pin").await;
    let r = room(store, &a, Visibility::Public).await;
    let out = store.append(&[text(r.id, &a, "one", None), text(r.id, &a, "two", None)]).await.unwrap();
    let (s1, s2) = (stored(&out[0]).seq, stored(&out[1]).seq);
    assert!(store.pin(r.id, s1, a.id, 100).await.unwrap());
    assert!(!store.pin(r.id, s1, a.id, 150).await.unwrap(), "pinned once");
    assert!(store.pin(r.id, s2, a.id, 200).await.unwrap());
    let pins = store.pins(r.id).await.unwrap();
    assert_eq!(
        pins.iter().map(|(s, u, at)| (*s, u.id, *at)).collect::<Vec<_>>(),
        vec![(s2, a.id, 200), (s1, a.id, 100)]
    );
    assert!(store.unpin(r.id, s1).await.unwrap());
    assert!(!store.unpin(r.id, s1).await.unwrap());
    assert_eq!(store.pins(r.id).await.unwrap().len(), 1);
}

pub(super) async fn notify_settings_shape_room_views(store: &DynStore) {
    let a = user(store, "ntf").await;
    let b = user(store, "ntf").await;
    let r = room(store, &a, Visibility::Public).await;
    store.add_member(r.id, b.id, Role::Member, now_millis()).await.unwrap();
    let mention = NewMessage { mentions: vec![b.id], ..text(r.id, &a, "hi @b", None) };
    store.append(&[text(r.id, &a, "noise", None), mention]).await.unwrap();
    let view = |store: DynStore| async move {
        store.room_views(b.id).await.unwrap().into_iter().find(|v| v.room.id == r.id).unwrap()
    };
    let v = view(store.clone()).await;
    assert_eq!((v.notify, v.muted, v.unread, v.mentions), (NotifyLevel::All, false, 2, 1), "defaults");
    assert_eq!(
        store.set_notify(r.id, b.id, Some(NotifyLevel::Mentions), None).await.unwrap(),
        Some((NotifyLevel::Mentions, false))
    );
    let v = view(store.clone()).await;
    assert_eq!((v.notify, v.unread, v.mentions), (NotifyLevel::Mentions, 0, 1), "mentions only");
    assert_eq!(
        store.set_notify(r.id, b.id, Some(NotifyLevel::All), Some(true)).await.unwrap(),
        Some((NotifyLevel::All, true))
    );
    let v = view(store.clone()).await;
    assert_eq!((v.muted, v.unread, v.mentions), (true, 0, 1), "muted");
    assert_eq!(
        store.set_notify(r.id, b.id, None, Some(false)).await.unwrap(),
        Some((NotifyLevel::All, false)),
        "level kept"
    );
    let outsider = user(store, "ntf").await;
    assert_eq!(store.set_notify(r.id, outsider.id, Some(NotifyLevel::None), None).await.unwrap(), None);
}

pub(super) async fn followed_threads_count_unread_replies(store: &DynStore) {
    let a = user(store, "fol").await;
    let b = user(store, "fol").await;
    let c = user(store, "fol").await;
    let r = room(store, &a, Visibility::Public).await;
    for u in [&b, &c] {
        store.add_member(r.id, u.id, Role::Member, now_millis()).await.unwrap();
    }
    let root = stored(&store.append(&[text(r.id, &a, "root by a", None)]).await.unwrap()[0]).seq;
    let lone = stored(&store.append(&[text(r.id, &c, "c's root, b not in it", None)]).await.unwrap()[0]).seq;
    let out = store
        .append(&[
            reply(r.id, &b, "b replies", root, root),
            reply(r.id, &a, "a answers", root, root),
            reply(r.id, &a, "a again", root, root),
            reply(r.id, &a, "in c's thread", lone, lone),
            NewMessage { mentions: vec![c.id], ..reply(r.id, &a, "@c look", root, root) },
        ])
        .await
        .unwrap();
    let a_answers = stored(&out[1]).seq;
    let b_threads = store.followed_threads(b.id).await.unwrap();
    assert_eq!(b_threads.len(), 1, "b wrote in one thread: {b_threads:?}");
    assert_eq!(
        (b_threads[0].room, b_threads[0].root, b_threads[0].reply_count, b_threads[0].unread),
        (r.id, root, 4, 3)
    );
    assert_eq!(store.mark_thread_read(r.id, root, b.id, a_answers).await.unwrap(), a_answers);
    assert_eq!(store.mark_thread_read(r.id, root, b.id, 1).await.unwrap(), a_answers, "never back");
    assert_eq!(store.followed_threads(b.id).await.unwrap()[0].unread, 2);
    let c_threads = store.followed_threads(c.id).await.unwrap();
    let mut roots: Vec<Seq> = c_threads.iter().map(|t| t.root).collect();
    roots.sort_unstable();
    assert_eq!(roots, vec![root, lone], "c wrote one root and was mentioned in the other");
    let a_threads = store.followed_threads(a.id).await.unwrap();
    assert_eq!(a_threads.iter().find(|t| t.root == root).unwrap().unread, 1, "a's own replies are not unread");
}
