//! The store contract: one suite every backend must pass, compiled only for tests. Each rule is one
//! `#[tokio::test]` per backend (`tests::{memory,sqlite,postgres}::…`; PostgreSQL when
//! `PARLEY_TEST_POSTGRES_URL` is set), so one failure never hides the rest; [`run_all`] also runs them
//! in sequence on one store. Each check builds its own users and rooms, so the suite also runs on a
//! shared database.

use std::sync::Arc;

mod convo;
mod search;

use super::{DynStore, Session};
use crate::core::domain::*;
use crate::core::error::Error;

fn uniq(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 4]>()))
}

async fn user(store: &DynStore, prefix: &str) -> User {
    let name = Username::parse(&uniq(prefix)).unwrap();
    store.create_user(&name, &DisplayName::parse(name.as_str()).unwrap(), "hash", now_millis()).await.unwrap()
}

async fn room(store: &DynStore, owner: &User, vis: Visibility) -> Room {
    store.create_room(&RoomName::parse(&uniq("r")).unwrap(), vis, owner.id, now_millis()).await.unwrap()
}

fn text(room: RoomId, sender: &User, body: &str, cid: Option<&str>) -> NewMessage {
    NewMessage::test_text(room, sender, body, cid)
}

fn stored(a: &Appended) -> &Arc<Message> {
    match a {
        Appended::Stored(m) => m,
        other => panic!("expected Stored, got {other:?}"),
    }
}

/// Runs every check against `store`.
async fn run_all(store: DynStore) {
    store.probe_write().await.expect("a write probe succeeds on a healthy store");
    users_are_unique_ignoring_case(&store).await;
    sessions_can_be_revoked(&store).await;
    rooms_and_membership(&store).await;
    seqs_are_gapless_and_per_room(&store).await;
    client_ids_deduplicate(&store).await;
    direct_conversations_are_one_per_pair(&store).await;
    read_state_edits_and_deletes(&store).await;
    non_members_cannot_append(&store).await;
    history_pages(&store).await;
    retention_purges_old_messages_only(&store).await;
    webhooks_belong_to_rooms(&store).await;
    edits_replace_mentions(&store).await;
    invitations_are_listed_and_declined(&store).await;
    bans_are_listed(&store).await;
    ownership_moves_and_returns(&store).await;
    first_joins_at_once_make_one_owner(&store).await;
    direct_rooms_are_found_by_pair(&store).await;
    files_are_shared_once_and_go_with_their_message(&store).await;
    convo::run_all(&store).await;
    search::run_all(&store).await;
}

fn file(id: &str, room: RoomId, uploader: UserId, blob: &str, size: i64, at: Millis) -> FileMeta {
    FileMeta {
        id: id.to_owned(),
        room,
        uploader,
        seq: None,
        blob: blob.repeat(64),
        name: format!("{id}.png"),
        size,
        content_type: "image/png".into(),
        width: Some(3),
        height: Some(4),
        created_at: at,
        thumbnail: None,
    }
}

async fn files_are_shared_once_and_go_with_their_message(store: &DynStore) {
    let a = user(store, "fil").await;
    let b = user(store, "fil").await;
    let r = room(store, &a, Visibility::Public).await;
    assert!(store.add_member(r.id, b.id, Role::Member, now_millis()).await.unwrap());
    let tag = uniq("f");
    let (f1, f2, f3) = (format!("{tag}1"), format!("{tag}2"), format!("{tag}3"));
    let before = store.uploaded_bytes(a.id).await.unwrap();
    store.create_file(&file(&f1, r.id, a.id, "a", 10, 1)).await.unwrap();
    store.create_file(&file(&f2, r.id, a.id, "b", 20, 2)).await.unwrap();
    store.create_file(&file(&f3, r.id, a.id, "c", 30, now_millis())).await.unwrap();
    assert_eq!(store.uploaded_bytes(a.id).await.unwrap(), before + 60);
    assert_eq!(store.file(&f1).await.unwrap().unwrap().seq, None);
    assert!(store.file("nope").await.unwrap().is_none());

    // Shared by a message in its append; someone else's message cannot take it.
    let mut m = text(r.id, &a, "with files", None);
    m.files = vec![store.file(&f1).await.unwrap().unwrap(), store.file(&f2).await.unwrap().unwrap()];
    let mut theft = text(r.id, &b, "mine now", None);
    theft.files = vec![store.file(&f3).await.unwrap().unwrap()];
    let out = store.append(&[m, theft]).await.unwrap();
    let Appended::Stored(stored) = &out[0] else { panic!("stored") };
    assert_eq!(stored.files.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), vec![f1.as_str(), f2.as_str()]);
    assert!(stored.files.iter().all(|f| f.seq == Some(stored.seq)));
    let Appended::Stored(other) = &out[1] else { panic!("stored") };
    assert!(other.files.is_empty(), "not the uploader's message: not shared");
    assert_eq!(store.file(&f3).await.unwrap().unwrap().seq, None);
    let read = store.message(r.id, stored.seq).await.unwrap().unwrap();
    assert_eq!(read.files, stored.files, "read back as stored");
    assert_eq!(read.files[0].width, Some(3));
    let page = store.history(r.id, HistoryQuery::Latest { limit: 10 }).await.unwrap();
    assert_eq!(page.messages.iter().find(|x| x.seq == stored.seq).unwrap().files.len(), 2);
    assert!(page.messages.iter().find(|x| x.seq == other.seq).unwrap().files.is_empty());

    // A second message cannot share a file already shared.
    let mut again = text(r.id, &a, "again", None);
    again.files = vec![store.file(&f1).await.unwrap().unwrap()];
    let Appended::Stored(again) = &store.append(&[again]).await.unwrap()[0] else { panic!("stored") };
    assert!(again.files.is_empty());

    assert!(store.blob_in_use(&"a".repeat(64)).await.unwrap());
    let gone = store.delete_message(r.id, stored.seq).await.unwrap().unwrap();
    assert!(gone.files.is_empty());
    assert!(store.file(&f1).await.unwrap().is_none() && store.file(&f2).await.unwrap().is_none());
    assert!(!store.blob_in_use(&"a".repeat(64)).await.unwrap());
    assert_eq!(store.uploaded_bytes(a.id).await.unwrap(), before + 30, "deleted files stop counting");

    // Unsent uploads older than the cutoff are dropped; a fresh one stays.
    store.create_file(&file(&format!("{tag}4"), r.id, a.id, "d", 1, 5)).await.unwrap();
    assert_eq!(store.drop_unsent_files(1000).await.unwrap(), 1);
    assert!(store.file(&f3).await.unwrap().is_some());
    // A thumbnail is kept with its file, and its blob counts as in use while the file exists.
    let thumb = Thumbnail { blob: "9".repeat(64), content_type: "image/jpeg".into(), width: 3, height: 2, size: 7 };
    let with_thumb = FileMeta { thumbnail: Some(thumb), ..file(&format!("{tag}t"), r.id, a.id, "8", 1, 5) };
    store.create_file(&with_thumb).await.unwrap();
    assert_eq!(store.file(&with_thumb.id).await.unwrap().as_ref(), Some(&with_thumb));
    assert!(store.blob_in_use(&"9".repeat(64)).await.unwrap());
    assert_eq!(store.drop_unsent_files(1000).await.unwrap(), 1);
    assert!(!store.blob_in_use(&"9".repeat(64)).await.unwrap(), "gone with its file");

    // Purging a message purges its files.
    let mut m = text(r.id, &a, "old", None);
    m.ts = 10;
    m.files = vec![store.file(&f3).await.unwrap().unwrap()];
    let Appended::Stored(old) = &store.append(&[m]).await.unwrap()[0] else { panic!("stored") };
    assert_eq!(old.files.len(), 1);
    store.purge_before(r.id, 11).await.unwrap();
    assert!(store.file(&f3).await.unwrap().is_none());
    assert!(!store.blob_in_use(&"c".repeat(64)).await.unwrap());
}

async fn invitations_are_listed_and_declined(store: &DynStore) {
    let a = user(store, "inv").await;
    let b = user(store, "inv").await;
    let p1 = room(store, &a, Visibility::Private).await;
    let p2 = room(store, &a, Visibility::Public).await;
    assert!(store.invites_of(b.id).await.unwrap().is_empty());
    assert!(store.add_invite(p2.id, b.id, a.id, 2000).await.unwrap());
    assert!(store.add_invite(p1.id, b.id, a.id, 1000).await.unwrap());
    let list = store.invites_of(b.id).await.unwrap();
    let got: Vec<(RoomId, UserId, Millis)> = list.iter().map(|i| (i.room.id, i.invited_by.id, i.at)).collect();
    assert_eq!(got, vec![(p1.id, a.id, 1000), (p2.id, a.id, 2000)], "oldest first, with who and when");
    assert_eq!(list[0].room.name, p1.name);
    assert!(store.remove_invite(p1.id, b.id).await.unwrap());
    assert!(!store.remove_invite(p1.id, b.id).await.unwrap(), "declined once");
    assert!(!store.is_invited(p1.id, b.id).await.unwrap());
    assert_eq!(store.invites_of(b.id).await.unwrap().len(), 1);
    assert!(store.invites_of(a.id).await.unwrap().is_empty(), "only the invitee's");
}

async fn bans_are_listed(store: &DynStore) {
    let a = user(store, "ban").await;
    let b = user(store, "ban").await;
    let c = user(store, "ban").await;
    let r = room(store, &a, Visibility::Public).await;
    assert!(store.bans(r.id).await.unwrap().is_empty());
    store.ban(r.id, b.id, a.id, now_millis()).await.unwrap();
    store.ban(r.id, c.id, a.id, now_millis()).await.unwrap();
    let bans = store.bans(r.id).await.unwrap();
    let mut users: Vec<UserId> = bans.iter().map(|x| x.user.id).collect();
    users.sort();
    assert_eq!(users, vec![b.id, c.id]);
    assert!(bans.iter().all(|x| x.banned_at > 0));
    store.unban(r.id, b.id).await.unwrap();
    assert_eq!(store.bans(r.id).await.unwrap().iter().map(|x| x.user.id).collect::<Vec<_>>(), vec![c.id]);
}

async fn first_joins_at_once_make_one_owner(store: &DynStore) {
    for _ in 0..5 {
        let a = user(store, "race").await;
        let r = room(store, &a, Visibility::Public).await;
        store.remove_member(r.id, a.id).await.unwrap();
        let mut joiners = Vec::new();
        for _ in 0..8 {
            joiners.push(user(store, "race").await);
        }
        let joins = joiners.iter().map(|u| {
            let store = store.clone();
            let (room, user) = (r.id, u.id);
            tokio::spawn(async move { store.add_member(room, user, Role::Member, now_millis()).await.unwrap() })
        });
        for j in joins.collect::<Vec<_>>() {
            assert!(j.await.unwrap(), "every join adds its member");
        }
        let owners = store.members(r.id).await.unwrap().iter().filter(|m| m.role == Role::Owner).count();
        assert_eq!(owners, 1, "exactly one of the simultaneous first joins becomes the owner");
    }
}

async fn ownership_moves_and_returns(store: &DynStore) {
    let a = user(store, "own").await;
    let b = user(store, "own").await;
    let c = user(store, "own").await;
    let r = room(store, &a, Visibility::Public).await;
    store.add_member(r.id, b.id, Role::Member, now_millis()).await.unwrap();
    assert!(!store.transfer_owner(r.id, a.id, c.id).await.unwrap(), "only to a member");
    assert!(!store.transfer_owner(r.id, b.id, a.id).await.unwrap(), "only from the owner");
    assert!(!store.transfer_owner(r.id, a.id, a.id).await.unwrap());
    assert_eq!(store.role(r.id, a.id).await.unwrap(), Some(Role::Owner), "a refused transfer changes nothing");
    assert_eq!(store.role(r.id, b.id).await.unwrap(), Some(Role::Member));
    assert!(store.transfer_owner(r.id, a.id, b.id).await.unwrap());
    assert_eq!(store.role(r.id, a.id).await.unwrap(), Some(Role::Admin), "the old owner becomes an admin");
    assert_eq!(store.role(r.id, b.id).await.unwrap(), Some(Role::Owner));

    // A room left without members goes to whoever joins next.
    store.remove_member(r.id, a.id).await.unwrap();
    store.remove_member(r.id, b.id).await.unwrap();
    assert!(store.add_member(r.id, c.id, Role::Member, now_millis()).await.unwrap());
    assert_eq!(store.role(r.id, c.id).await.unwrap(), Some(Role::Owner));
    assert!(store.add_member(r.id, a.id, Role::Member, now_millis()).await.unwrap());
    assert_eq!(store.role(r.id, a.id).await.unwrap(), Some(Role::Member), "only the first");

    let v = store.set_visibility(r.id, Visibility::Private).await.unwrap();
    assert_eq!(v.visibility, Visibility::Private);
    assert!(!store.public_rooms().await.unwrap().iter().any(|x| x.id == r.id));
}

async fn direct_rooms_are_found_by_pair(store: &DynStore) {
    let a = user(store, "dr").await;
    let b = user(store, "dr").await;
    let c = user(store, "dr").await;
    assert_eq!(store.direct_room(a.id, b.id).await.unwrap(), None);
    let (d, _) = store.open_direct(b.id, a.id, now_millis()).await.unwrap();
    assert_eq!(store.direct_room(a.id, b.id).await.unwrap().map(|r| r.id), Some(d.id));
    assert_eq!(store.direct_room(b.id, a.id).await.unwrap().map(|r| r.id), Some(d.id));
    assert_eq!(store.direct_room(a.id, c.id).await.unwrap(), None);
}

async fn edits_replace_mentions(store: &DynStore) {
    let a = user(store, "em").await;
    let b = user(store, "em").await;
    let c = user(store, "em").await;
    let r = room(store, &a, Visibility::Public).await;
    for u in [&b, &c] {
        store.add_member(r.id, u.id, Role::Member, now_millis()).await.unwrap();
    }
    let mut m = text(r.id, &a, "hi @b", None);
    m.mentions = vec![b.id];
    let seq = stored(&store.append(&[m]).await.unwrap()[0]).seq;
    let mentions_of = |vs: Vec<RoomView>| vs.into_iter().find(|v| v.room.id == r.id).unwrap().mentions;
    assert_eq!(mentions_of(store.room_views(b.id).await.unwrap()), 1);
    // The mention moves from b to c.
    let edited = store.edit_message(r.id, seq, "hi @c", &[c.id], 7).await.unwrap().unwrap();
    assert_eq!(edited.mentions, vec![c.id]);
    assert_eq!(store.message(r.id, seq).await.unwrap().unwrap().mentions, vec![c.id]);
    assert_eq!(mentions_of(store.room_views(b.id).await.unwrap()), 0, "the removed mention no longer counts");
    assert_eq!(mentions_of(store.room_views(c.id).await.unwrap()), 1, "the added one does");
    // And is gone altogether.
    let edited = store.edit_message(r.id, seq, "hi all", &[], 8).await.unwrap().unwrap();
    assert!(edited.mentions.is_empty());
    assert_eq!(mentions_of(store.room_views(c.id).await.unwrap()), 0);
}

async fn retention_purges_old_messages_only(store: &DynStore) {
    let u = user(store, "ret").await;
    let r = room(store, &u, Visibility::Public).await;
    let other = room(store, &u, Visibility::Public).await;
    assert_eq!(r.retention_secs, None);
    assert_eq!(store.set_retention(r.id, Some(3600)).await.unwrap().retention_secs, Some(3600));
    assert!(store.retention_rooms().await.unwrap().contains(&(r.id, 3600)));
    // Timestamps are the caller's: old ones at 1000..1004, new ones at 5000..5002 (seqs after the create
    // message, which the store does not add itself).
    let mut batch = Vec::new();
    for (i, ts) in [1000, 1001, 1002, 1003, 5000, 5001, 5002].into_iter().enumerate() {
        let mut m = text(r.id, &u, &format!("m{i}"), Some(&format!("c{i}")));
        if ts < 5000 {
            m.mentions = vec![u.id];
        }
        m.ts = ts;
        batch.push(m);
    }
    let mut old_elsewhere = text(other.id, &u, "elsewhere", None);
    old_elsewhere.ts = 1000;
    batch.push(old_elsewhere);
    let seqs: Vec<Seq> = store.append(&batch).await.unwrap().iter().map(|a| stored(a).seq).collect();
    assert_eq!(store.purge_before(r.id, 5000).await.unwrap(), 4);
    assert_eq!(store.purge_before(r.id, 5000).await.unwrap(), 0, "purging is idempotent");
    let page = store.history(r.id, HistoryQuery::Latest { limit: 50 }).await.unwrap();
    let kept: Vec<(Seq, &str)> = page.messages.iter().map(|m| (m.seq, m.body.as_str())).collect();
    assert_eq!(kept, vec![(seqs[4], "m4"), (seqs[5], "m5"), (seqs[6], "m6")], "only the old ones go, seqs unchanged");
    assert!(!page.has_more);
    assert_eq!(store.message(r.id, seqs[0]).await.unwrap(), None);
    // Resuming from before the purged range continues at the oldest kept message.
    let after = store.history(r.id, HistoryQuery::After { after: 0, limit: 2 }).await.unwrap();
    assert_eq!(after.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![seqs[4], seqs[5]]);
    assert!(after.has_more);
    let before = store.history(r.id, HistoryQuery::Before { before: seqs[5], limit: 5 }).await.unwrap();
    assert_eq!(before.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![seqs[4]]);
    assert!(!before.has_more);
    // The counter is untouched: the next message continues after the last one ever stored.
    let room_now = store.room(r.id).await.unwrap().unwrap();
    assert_eq!(room_now.last_seq, seqs[6]);
    let next = store.append(&[text(r.id, &u, "next", None)]).await.unwrap();
    assert_eq!(stored(&next[0]).seq, seqs[6] + 1);
    // Purged messages no longer count as unread or mentions, and cannot be edited.
    let views = store.room_views(u.id).await.unwrap();
    let v = views.iter().find(|v| v.room.id == r.id).unwrap();
    assert_eq!(v.mentions, 0, "the mentions went with the old messages: {v:?}");
    assert_eq!(store.edit_message(r.id, seqs[0], "x", &[], 1).await.unwrap(), None);
    // A purged client_id may be used again (the idempotency window is the retention period).
    let again = store.append(&[text(r.id, &u, "again", Some("c0"))]).await.unwrap();
    assert!(matches!(again[0], Appended::Stored(_)), "{again:?}");
    // Other rooms are not touched.
    assert_eq!(store.history(other.id, HistoryQuery::Latest { limit: 5 }).await.unwrap().messages.len(), 1);
    assert_eq!(store.set_retention(r.id, None).await.unwrap().retention_secs, None);
    assert!(!store.retention_rooms().await.unwrap().iter().any(|(id, _)| *id == r.id));
}

async fn webhooks_belong_to_rooms(store: &DynStore) {
    let u = user(store, "hook").await;
    let (a, b) = (room(store, &u, Visibility::Public).await, room(store, &u, Visibility::Private).await);
    let url = WebhookUrl::parse("http://127.0.0.1:9/hook").unwrap();
    let new = |room, secret| NewWebhook { room, url: &url, secret, created_by: u.id, created_at: now_millis() };
    store.append(&[text(a.id, &u, "before the hook", None)]).await.unwrap();
    let h1 = store.create_webhook(&new(a.id, "s1")).await.unwrap();
    assert_eq!(h1.delivered_seq, 1, "a new webhook starts after the room's last message");
    let h2 = store.create_webhook(&new(b.id, "s2")).await.unwrap();
    assert_eq!((h1.room, h1.secret.as_str(), h1.url.as_str()), (a.id, "s1", "http://127.0.0.1:9/hook"));
    assert_eq!(store.webhook(h1.id).await.unwrap(), Some(h1.clone()));
    assert_eq!(store.webhooks(a.id).await.unwrap(), vec![h1.clone()]);
    assert_eq!(store.webhooks_for(&[a.id, b.id]).await.unwrap(), vec![h1.clone(), h2.clone()]);
    assert!(matches!(store.create_webhook(&new(RoomId(i64::MAX), "s")).await, Err(Error::RoomNotFound)));
    assert_eq!(h2.delivered_seq, 0);
    let all = store.all_webhooks().await.unwrap();
    assert!(all.contains(&h1) && all.contains(&h2));
    assert!(store.advance_webhook(h1.id, 1, 5).await.unwrap());
    assert!(!store.advance_webhook(h1.id, 1, 7).await.unwrap(), "compare-and-set: someone else moved it");
    assert_eq!(store.webhook(h1.id).await.unwrap().unwrap().delivered_seq, 5);
    assert!(!store.delete_webhook(a.id, h2.id).await.unwrap(), "a webhook is deleted through its own room");
    assert!(store.delete_webhook(b.id, h2.id).await.unwrap());
    assert_eq!(store.webhook(h2.id).await.unwrap(), None);
    assert!(store.webhooks_for(&[b.id]).await.unwrap().is_empty());
}

async fn users_are_unique_ignoring_case(store: &DynStore) {
    let name = uniq("Case");
    let u = store
        .create_user(&Username::parse(&name).unwrap(), &DisplayName::parse("Case").unwrap(), "h1", now_millis())
        .await
        .unwrap();
    let again = store
        .create_user(
            &Username::parse(&name.to_uppercase()).unwrap(),
            &DisplayName::parse("x").unwrap(),
            "h2",
            now_millis(),
        )
        .await;
    assert!(matches!(again, Err(Error::UsernameTaken)), "{again:?}");
    let creds = store.credentials(&name.to_ascii_lowercase()).await.unwrap().unwrap();
    assert_eq!(creds.user, u);
    assert_eq!(creds.password_hash, "h1");
    assert_eq!(store.user(u.id).await.unwrap(), Some(u.clone()));
    let renamed = store.set_display_name(u.id, &DisplayName::parse("Renamed").unwrap()).await.unwrap();
    assert_eq!(renamed.display_name, "Renamed");
    assert_eq!(store.user_by_name(&name.to_ascii_lowercase()).await.unwrap().unwrap().display_name, "Renamed");
    assert_eq!(store.credentials("nobody-here").await.unwrap().map(|c| c.user), None);
}

async fn sessions_can_be_revoked(store: &DynStore) {
    let u = user(store, "sess").await;
    let s = Session { id: SessionId::generate(), user: u.id, expires_at: now_millis() + 60_000, revoked: false };
    store.create_session(&s, now_millis()).await.unwrap();
    assert_eq!(store.session(&s.id).await.unwrap(), Some(s.clone()));
    let (read, user) = store.session_user(&s.id).await.unwrap().expect("the session and its user");
    assert_eq!(read, s);
    assert_eq!(user.id, s.user);
    assert_eq!(Some(user), store.user(s.user).await.unwrap());
    assert!(store.revoke_session(&s.id).await.unwrap());
    assert!(!store.revoke_session(&s.id).await.unwrap(), "second revoke reports not live");
    assert!(store.session(&s.id).await.unwrap().unwrap().revoked);
    assert_eq!(store.session(&SessionId::generate()).await.unwrap(), None);
    assert!(store.session_user(&SessionId::generate()).await.unwrap().is_none());
    assert!(store.session_user(&s.id).await.unwrap().unwrap().0.revoked, "a revoked session reads revoked");
}

async fn rooms_and_membership(store: &DynStore) {
    let a = user(store, "own").await;
    let b = user(store, "mem").await;
    let name = uniq("Room");
    let r = store.create_room(&RoomName::parse(&name).unwrap(), Visibility::Public, a.id, now_millis()).await.unwrap();
    assert_eq!((r.kind, r.topic.as_str()), (RoomKind::Group, ""));
    assert_eq!((r.member_count, r.last_seq, r.created_by), (1, 0, a.id));
    let dup = store
        .create_room(&RoomName::parse(&name.to_lowercase()).unwrap(), Visibility::Private, b.id, now_millis())
        .await;
    assert!(matches!(dup, Err(Error::RoomNameTaken)), "{dup:?}");
    assert_eq!(store.room_by_name(&name.to_lowercase()).await.unwrap().unwrap().id, r.id);
    assert!(store.add_member(r.id, b.id, Role::Member, now_millis()).await.unwrap());
    assert!(!store.add_member(r.id, b.id, Role::Member, now_millis()).await.unwrap(), "adding twice reports no change");
    assert!(store.is_member(r.id, b.id).await.unwrap());
    let members: Vec<(UserId, Role)> = store.members(r.id).await.unwrap().iter().map(|m| (m.user.id, m.role)).collect();
    assert_eq!(members, vec![(a.id, Role::Owner), (b.id, Role::Member)]);
    assert_eq!(store.room(r.id).await.unwrap().unwrap().member_count, 2);
    assert!(store.user_rooms(b.id).await.unwrap().iter().any(|x| x.id == r.id));
    assert!(store.remove_member(r.id, b.id).await.unwrap());
    assert!(!store.remove_member(r.id, b.id).await.unwrap());
    assert!(!store.user_rooms(b.id).await.unwrap().iter().any(|x| x.id == r.id));
    // The count follows every join and leave (and a repeated one changes nothing), wherever it is read.
    assert_eq!(store.room(r.id).await.unwrap().unwrap().member_count, 1);
    assert!(store.add_member(r.id, b.id, Role::Member, now_millis()).await.unwrap());
    assert!(!store.add_member(r.id, b.id, Role::Member, now_millis()).await.unwrap());
    let view = store.room_views(b.id).await.unwrap().into_iter().find(|v| v.room.id == r.id).unwrap();
    assert_eq!((view.room.member_count, view.role), (2, Role::Member));
    assert!(store.remove_member(r.id, b.id).await.unwrap());
    assert_eq!(store.user_rooms(a.id).await.unwrap().iter().find(|x| x.id == r.id).unwrap().member_count, 1);

    let p = room(store, &a, Visibility::Private).await;
    assert!(store.public_rooms().await.unwrap().iter().any(|x| x.id == r.id));
    assert!(!store.public_rooms().await.unwrap().iter().any(|x| x.id == p.id), "private rooms are not listed");
    assert!(!store.is_invited(p.id, b.id).await.unwrap());
    assert!(store.add_invite(p.id, b.id, a.id, 1000).await.unwrap());
    assert!(!store.add_invite(p.id, b.id, a.id, 2000).await.unwrap(), "the first invitation stays");
    assert!(store.is_invited(p.id, b.id).await.unwrap());
    assert!(store.add_member(p.id, b.id, Role::Member, now_millis()).await.unwrap());
    assert!(!store.is_invited(p.id, b.id).await.unwrap(), "joining uses the invitation up");

    // Roles, bans, renames and topics.
    assert!(store.set_role(p.id, b.id, Role::Admin).await.unwrap());
    assert_eq!(store.role(p.id, b.id).await.unwrap(), Some(Role::Admin));
    assert!(store.ban(p.id, b.id, a.id, now_millis()).await.unwrap());
    assert!(!store.ban(p.id, b.id, a.id, now_millis()).await.unwrap());
    assert!(store.is_banned(p.id, b.id).await.unwrap());
    assert_eq!(store.role(p.id, b.id).await.unwrap(), None, "a ban removes membership");
    assert!(store.unban(p.id, b.id).await.unwrap());
    assert!(!store.is_banned(p.id, b.id).await.unwrap());
    let new_name = uniq("Renamed");
    let renamed = store.rename_room(p.id, &RoomName::parse(&new_name).unwrap()).await.unwrap();
    assert_eq!(renamed.name, new_name);
    assert!(matches!(store.rename_room(p.id, &RoomName::parse(&name).unwrap()).await, Err(Error::RoomNameTaken)));
    assert_eq!(store.set_topic(p.id, &Topic::parse("plans").unwrap()).await.unwrap().topic, "plans");
}

async fn direct_conversations_are_one_per_pair(store: &DynStore) {
    let a = user(store, "dma").await;
    let b = user(store, "dmb").await;
    let (r1, created) = store.open_direct(a.id, b.id, now_millis()).await.unwrap();
    assert!(created);
    assert_eq!((r1.kind, r1.visibility, r1.member_count), (RoomKind::Direct, Visibility::Private, 2));
    let (r2, created) = store.open_direct(b.id, a.id, now_millis()).await.unwrap();
    assert_eq!((r2.id, created), (r1.id, false), "whoever opens it, it is the same conversation");
    assert!(!store.public_rooms().await.unwrap().iter().any(|r| r.id == r1.id));
    assert_eq!(store.room_by_name(&r1.name).await.unwrap(), None, "not addressable by name");
    let views = store.room_views(a.id).await.unwrap();
    let v = views.iter().find(|v| v.room.id == r1.id).unwrap();
    assert_eq!(v.peer.as_ref().map(|p| p.id), Some(b.id));
}

async fn read_state_edits_and_deletes(store: &DynStore) {
    let a = user(store, "rs").await;
    let b = user(store, "rs").await;
    let r = room(store, &a, Visibility::Public).await;
    store.add_member(r.id, b.id, Role::Member, now_millis()).await.unwrap();
    let mut mention = text(r.id, &a, "hi @b", None);
    mention.mentions = vec![b.id];
    store.append(&[text(r.id, &a, "one", None), mention, text(r.id, &b, "mine", None)]).await.unwrap();
    let view = |vs: Vec<RoomView>| vs.into_iter().find(|v| v.room.id == r.id).unwrap();
    let v = view(store.room_views(b.id).await.unwrap());
    assert_eq!((v.last_read, v.unread, v.mentions, v.role), (0, 2, 1, Role::Member), "own messages are not unread");
    assert_eq!(v.last_message.as_ref().map(|m| m.seq), Some(3));
    assert_eq!(store.mark_read(r.id, b.id, 2).await.unwrap(), 2);
    assert_eq!(store.mark_read(r.id, b.id, 1).await.unwrap(), 2, "read positions never move back");
    assert_eq!(store.mark_read(r.id, b.id, 99).await.unwrap(), 3, "nor past the end");
    let v = view(store.room_views(b.id).await.unwrap());
    assert_eq!((v.unread, v.mentions), (0, 0));
    assert!(matches!(store.mark_read(r.id, UserId(i64::MAX), 1).await, Err(Error::NotAMember)));

    let m = store.message(r.id, 2).await.unwrap().unwrap();
    assert_eq!(m.mentions, vec![b.id]);
    let edited = store.edit_message(r.id, 1, "one, edited", &[], 42).await.unwrap().unwrap();
    assert_eq!((edited.body.as_str(), edited.edited_at), ("one, edited", Some(42)));
    let deleted = store.delete_message(r.id, 2).await.unwrap().unwrap();
    assert!(deleted.deleted && deleted.body.is_empty() && deleted.mentions.is_empty());
    assert_eq!(store.edit_message(r.id, 2, "resurrect", &[], 43).await.unwrap(), None, "tombstones cannot be edited");
    let page = store.history(r.id, HistoryQuery::Latest { limit: 10 }).await.unwrap();
    assert_eq!(page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3], "a tombstone keeps its place");
    assert!(page.messages[1].deleted);
    assert_eq!(store.message(r.id, 99).await.unwrap(), None);
    let sys = NewMessage::system(r.id, MessageKind::Kick, &a, Some(&b), "", now_millis());
    let stored_sys = store.append(&[sys]).await.unwrap();
    assert_eq!(stored(&stored_sys[0]).target.as_ref().map(|t| t.id), Some(b.id));
    assert_eq!(store.message(r.id, 4).await.unwrap().unwrap().target.as_ref().map(|t| t.id), Some(b.id));
}

async fn seqs_are_gapless_and_per_room(store: &DynStore) {
    let a = user(store, "seq").await;
    let r1 = room(store, &a, Visibility::Public).await;
    let r2 = room(store, &a, Visibility::Public).await;
    let batch: Vec<NewMessage> =
        (0..10).map(|i| text(if i % 2 == 0 { r1.id } else { r2.id }, &a, &format!("m{i}"), None)).collect();
    let out = store.append(&batch).await.unwrap();
    let seqs: Vec<(RoomId, Seq)> = out.iter().map(|x| (stored(x).room, stored(x).seq)).collect();
    let want: Vec<(RoomId, Seq)> =
        (0..10).map(|i| if i % 2 == 0 { (r1.id, i / 2 + 1) } else { (r2.id, i / 2 + 1) }).collect();
    assert_eq!(seqs, want);
    let more = store.append(&[text(r1.id, &a, "next", None)]).await.unwrap();
    assert_eq!(stored(&more[0]).seq, 6);
    assert_eq!(store.room(r1.id).await.unwrap().unwrap().last_seq, 6);
    let sys = NewMessage { kind: MessageKind::Join, body: String::new(), ..text(r1.id, &a, "", None) };
    assert_eq!(stored(&store.append(&[sys]).await.unwrap()[0]).seq, 7);
}

async fn client_ids_deduplicate(store: &DynStore) {
    let a = user(store, "dup").await;
    let b = user(store, "dup").await;
    let r = room(store, &a, Visibility::Public).await;
    store.add_member(r.id, b.id, Role::Member, now_millis()).await.unwrap();
    let first = store.append(&[text(r.id, &a, "once", Some("c1"))]).await.unwrap();
    let m = stored(&first[0]).clone();
    assert_eq!(m.client_id.as_deref(), Some("c1"));
    // Again alone, and twice inside one batch, with another sender's same client_id in between.
    let again = store
        .append(&[
            text(r.id, &a, "once", Some("c1")),
            text(r.id, &b, "other", Some("c1")),
            text(r.id, &a, "x", Some("c2")),
            text(r.id, &a, "x", Some("c2")),
        ])
        .await
        .unwrap();
    assert_eq!(again[0], Appended::Duplicate(m.clone()));
    assert_eq!(stored(&again[1]).seq, 2, "client ids are per sender");
    assert_eq!(stored(&again[2]).seq, 3);
    assert_eq!(again[3], Appended::Duplicate(stored(&again[2]).clone()));
    let page = store.history(r.id, HistoryQuery::Latest { limit: 50 }).await.unwrap();
    assert_eq!(page.messages.len(), 3, "duplicates store nothing");
}

async fn non_members_cannot_append(store: &DynStore) {
    let a = user(store, "nm").await;
    let outsider = user(store, "nm").await;
    let r = room(store, &a, Visibility::Public).await;
    let out = store.append(&[text(r.id, &outsider, "hi", None), text(r.id, &a, "ok", None)]).await.unwrap();
    assert_eq!(out[0], Appended::NotMember);
    assert_eq!(stored(&out[1]).seq, 1, "a refused message takes no seq");
    let leave = NewMessage { kind: MessageKind::Leave, body: String::new(), ..text(r.id, &outsider, "", None) };
    assert!(
        matches!(store.append(&[leave]).await.unwrap()[0], Appended::Stored(_)),
        "system messages need no membership"
    );
}

async fn history_pages(store: &DynStore) {
    let a = user(store, "hist").await;
    let r = room(store, &a, Visibility::Public).await;
    let batch: Vec<NewMessage> = (1..=25).map(|i| text(r.id, &a, &format!("m{i}"), None)).collect();
    store.append(&batch).await.unwrap();
    let seqs = |p: &HistoryPage| p.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    let latest = store.history(r.id, HistoryQuery::Latest { limit: 10 }).await.unwrap();
    assert_eq!(seqs(&latest), (16..=25).collect::<Vec<_>>());
    assert!(latest.has_more);
    assert_eq!(latest.messages[0].body, "m16");
    assert_eq!(latest.messages[0].sender.as_ref().unwrap().id, a.id);
    let before = store.history(r.id, HistoryQuery::Before { before: 16, limit: 10 }).await.unwrap();
    assert_eq!(seqs(&before), (6..=15).collect::<Vec<_>>());
    assert!(before.has_more);
    let first = store.history(r.id, HistoryQuery::Before { before: 6, limit: 10 }).await.unwrap();
    assert_eq!(seqs(&first), (1..=5).collect::<Vec<_>>());
    assert!(!first.has_more);
    let after = store.history(r.id, HistoryQuery::After { after: 20, limit: 10 }).await.unwrap();
    assert_eq!(seqs(&after), (21..=25).collect::<Vec<_>>());
    assert!(!after.has_more);
    let after = store.history(r.id, HistoryQuery::After { after: 0, limit: 10 }).await.unwrap();
    assert_eq!(seqs(&after), (1..=10).collect::<Vec<_>>());
    assert!(after.has_more);
    let all = store.history(r.id, HistoryQuery::Latest { limit: 25 }).await.unwrap();
    assert!(!all.has_more);
    let empty = store.history(RoomId(i64::MAX), HistoryQuery::Latest { limit: 10 }).await.unwrap();
    assert!(empty.messages.is_empty());
}

async fn probe_write_succeeds(store: &DynStore) {
    store.probe_write().await.expect("a write probe succeeds on a healthy store");
}

#[cfg(test)]
mod tests;
