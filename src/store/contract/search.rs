//! The search part of the store contract: what matches (words, phrases, prefixes, live text only,
//! after edits, deletes and purges), who may find it (members only, at query time), the filters, the
//! ranking and the pages.

use super::{file, room, stored, text, uniq, user};
use crate::core::domain::*;
use crate::core::search::{self, SearchQuery};
use crate::store::DynStore;

fn query(q: &str) -> SearchQuery {
    let p = search::parse(q).unwrap();
    SearchQuery {
        terms: p.terms,
        from: p.from,
        before: p.before,
        has_link: p.has_link,
        has_file: p.has_file,
        limit: 20,
        ..Default::default()
    }
}

async fn found(store: &DynStore, who: &User, q: &SearchQuery) -> Vec<(RoomId, Seq)> {
    store.search(who.id, q).await.unwrap().messages.iter().map(|m| (m.room, m.seq)).collect()
}

pub(super) async fn run_all(store: &DynStore) {
    words_phrases_and_prefixes(store).await;
    only_members_find_at_query_time(store).await;
    edits_deletes_and_purges_change_the_index(store).await;
    filters_ranking_and_pages(store).await;
    has_file_finds_messages_sharing_files(store).await;
}

pub(super) async fn words_phrases_and_prefixes(store: &DynStore) {
    let u = user(store, "sw").await;
    let r = room(store, &u, Visibility::Public).await;
    let w = uniq("w"); // a word no other check (or earlier run on a shared database) uses
    let bodies = [
        format!("The {w} release notes are out"),
        format!("notes about the release of {w}"),
        format!("{w}ing is a longer word"),
        "nothing to see".to_owned(),
        format!("{} shouting", w.to_uppercase()),
    ];
    let batch: Vec<_> = bodies.iter().map(|b| text(r.id, &u, b, None)).collect();
    let seqs: Vec<Seq> = store.append(&batch).await.unwrap().iter().map(|a| stored(a).seq).collect();
    let mut got = found(store, &u, &query(&w)).await;
    got.sort();
    assert_eq!(got, vec![(r.id, seqs[0]), (r.id, seqs[1]), (r.id, seqs[4])], "whole words, any case");
    let got = found(store, &u, &query(&format!("{w} \"release notes\""))).await;
    assert_eq!(got, vec![(r.id, seqs[0])], "a phrase needs its words in order");
    let mut got = found(store, &u, &query(&format!("{w}*"))).await;
    got.sort();
    assert_eq!(got.len(), 4, "a prefix matches longer words too: {got:?}");
    assert!(found(store, &u, &query(&format!("{w} absentword"))).await.is_empty(), "every term must match");
    // System messages are not text: a topic naming the word is not a hit.
    let topic = NewMessage { kind: MessageKind::Topic, body: format!("topic {w}x"), ..text(r.id, &u, "", None) };
    store.append(&[topic]).await.unwrap();
    assert!(found(store, &u, &query(&format!("{w}x"))).await.is_empty());
}

pub(super) async fn only_members_find_at_query_time(store: &DynStore) {
    let owner = user(store, "so").await;
    let (member, outsider, leaver, banned) =
        (user(store, "sm").await, user(store, "sx").await, user(store, "sl").await, user(store, "sb").await);
    let public = room(store, &owner, Visibility::Public).await;
    let private = room(store, &owner, Visibility::Private).await;
    for r in [&public, &private] {
        for u in [&member, &leaver, &banned] {
            store.add_member(r.id, u.id, Role::Member, now_millis()).await.unwrap();
        }
    }
    let (dm, _) = store.open_direct(owner.id, member.id, now_millis()).await.unwrap();
    let w = uniq("w");
    let mut batch = Vec::new();
    for r in [&public, &private, &dm] {
        batch.push(text(r.id, &owner, &format!("secret {w}"), None));
    }
    let seqs: Vec<Seq> = store.append(&batch).await.unwrap().iter().map(|a| stored(a).seq).collect();
    let q = query(&w);
    let mut all = vec![(public.id, seqs[0]), (private.id, seqs[1]), (dm.id, seqs[2])];
    all.sort();
    let sorted = |mut v: Vec<(RoomId, Seq)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(found(store, &owner, &q).await), all, "the owner reads all three");
    let mut two = vec![(public.id, seqs[0]), (private.id, seqs[1]), (dm.id, seqs[2])];
    two.sort();
    assert_eq!(sorted(found(store, &member, &q).await), two, "a member, and the DM's peer");
    assert!(found(store, &outsider, &q).await.is_empty(), "an outsider finds nothing, not even in a public room");
    assert_eq!(sorted(found(store, &leaver, &q).await).len(), 2, "before leaving: the two group rooms");
    store.remove_member(public.id, leaver.id).await.unwrap();
    store.remove_member(private.id, leaver.id).await.unwrap();
    assert!(found(store, &leaver, &q).await.is_empty(), "after leaving: nothing");
    store.ban(public.id, banned.id, owner.id, now_millis()).await.unwrap();
    assert_eq!(
        found(store, &banned, &q).await,
        vec![(private.id, seqs[1])],
        "nothing from the room they are banned from"
    );
}

pub(super) async fn edits_deletes_and_purges_change_the_index(store: &DynStore) {
    let u = user(store, "se").await;
    let r = room(store, &u, Visibility::Public).await;
    let (old, new, gone) = (uniq("w"), uniq("w"), uniq("w"));
    let mut early = text(r.id, &u, &format!("early {gone}"), None);
    early.ts = 1000;
    let batch = [text(r.id, &u, &format!("draft {old}"), None), text(r.id, &u, &format!("oops {old}"), None), early];
    let seqs: Vec<Seq> = store.append(&batch).await.unwrap().iter().map(|a| stored(a).seq).collect();
    assert_eq!(found(store, &u, &query(&old)).await.len(), 2);
    store.edit_message(r.id, seqs[0], &format!("final {new}"), &[], 5).await.unwrap().unwrap();
    assert_eq!(found(store, &u, &query(&old)).await, vec![(r.id, seqs[1])], "the old text no longer matches");
    assert_eq!(found(store, &u, &query(&new)).await, vec![(r.id, seqs[0])], "the new text does");
    store.delete_message(r.id, seqs[1]).await.unwrap().unwrap();
    assert!(found(store, &u, &query(&old)).await.is_empty(), "a deleted message never matches");
    assert_eq!(found(store, &u, &query(&gone)).await.len(), 1);
    store.purge_before(r.id, 2000).await.unwrap();
    assert!(found(store, &u, &query(&gone)).await.is_empty(), "a purged message leaves the index");
}

pub(super) async fn filters_ranking_and_pages(store: &DynStore) {
    let (a, b) = (user(store, "sf").await, user(store, "sg").await);
    let r1 = room(store, &a, Visibility::Public).await;
    let r2 = room(store, &a, Visibility::Public).await;
    store.add_member(r1.id, b.id, Role::Member, now_millis()).await.unwrap();
    let w = uniq("w");
    let at = |room: RoomId, who: &User, body: String, ts: Millis| NewMessage { ts, ..text(room, who, &body, None) };
    let batch = [
        at(r1.id, &a, format!("{w} see https://example.org/x"), 86_400_000),
        at(r1.id, &b, format!("{w} from b, and a lot of other words around the match here"), 2 * 86_400_000),
        at(r2.id, &a, format!("{w} {w} {w}"), 3 * 86_400_000),
    ];
    let seqs: Vec<Seq> = store.append(&batch).await.unwrap().iter().map(|a| stored(a).seq).collect();
    let base = query(&w);
    let got = found(store, &a, &base).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], (r2.id, seqs[2]), "the best match (the word three times, short text) ranks first");
    let q = SearchQuery { room: Some(r1.id), ..base.clone() };
    assert_eq!(found(store, &a, &q).await.len(), 2, "room filter");
    let q = SearchQuery { sender: Some(b.id), ..base.clone() };
    assert_eq!(found(store, &a, &q).await, vec![(r1.id, seqs[1])], "sender filter");
    let q = SearchQuery { from: Some(2 * 86_400_000), before: Some(3 * 86_400_000), ..base.clone() };
    assert_eq!(found(store, &a, &q).await, vec![(r1.id, seqs[1])], "from is inclusive, before exclusive");
    let q = SearchQuery { has_link: true, ..base.clone() };
    assert_eq!(found(store, &a, &q).await, vec![(r1.id, seqs[0])], "has:link");
    // Pages: two, then one, with no hit twice.
    let p1 = store.search(a.id, &SearchQuery { limit: 2, ..base.clone() }).await.unwrap();
    let p2 = store.search(a.id, &SearchQuery { limit: 2, offset: 2, ..base.clone() }).await.unwrap();
    assert!(p1.has_more && !p2.has_more);
    assert_eq!((p1.messages.len(), p2.messages.len()), (2, 1));
    assert!(!p1.messages.iter().any(|m| p2.messages.iter().any(|n| (n.room, n.seq) == (m.room, m.seq))));
}

pub(super) async fn has_file_finds_messages_sharing_files(store: &DynStore) {
    let a = user(store, "sh").await;
    let r = room(store, &a, Visibility::Public).await;
    let w = uniq("w");
    let fid = uniq("hf");
    store.create_file(&file(&fid, r.id, a.id, "e", 5, now_millis())).await.unwrap();
    let mut with = text(r.id, &a, &format!("{w} see attached"), None);
    with.files = vec![store.file(&fid).await.unwrap().unwrap()];
    // An upload not (yet) shared by the message that names the word: no hit for has:file.
    store.create_file(&file(&uniq("hf"), r.id, a.id, "e", 5, now_millis())).await.unwrap();
    let without = text(r.id, &a, &format!("{w} nothing attached"), None);
    let seqs: Vec<Seq> = store.append(&[with, without]).await.unwrap().iter().map(|a| stored(a).seq).collect();
    assert_eq!(found(store, &a, &query(&w)).await.len(), 2);
    assert_eq!(found(store, &a, &query(&format!("{w} has:file"))).await, vec![(r.id, seqs[0])], "has:file");
    // Deleting the message deletes its files: it no longer matches (nor does its tombstone).
    store.delete_message(r.id, seqs[0]).await.unwrap().unwrap();
    assert!(found(store, &a, &query(&format!("{w} has:file"))).await.is_empty());
}
