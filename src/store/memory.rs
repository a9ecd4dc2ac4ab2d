//! An in-memory store: the reference implementation of the contract, used by unit tests and by
//! `--database-url memory:` for throwaway servers. Nothing survives a restart.
//!
//! One file past 600 lines on purpose: it is the one `impl Store` of the reference backend, every method
//! a few lines over the same lock; its length follows the trait's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Credentials, Session, Store};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::search::{self, SearchHits, SearchQuery};

#[derive(Default)]
struct Inner {
    users: Vec<(User, String, String)>, // user, username key, password hash
    sessions: HashMap<SessionId, Session>,
    rooms: Vec<RoomRow>,
    invites: HashMap<(RoomId, UserId), (UserId, Millis)>, // invited by, at
    bans: HashMap<(RoomId, UserId), Millis>,              // banned at
    webhooks: Vec<Webhook>,
    next_webhook: i64,
    /// Uploaded files, in upload order.
    files: Vec<FileMeta>,
    /// Per member: notification level and mute (absent: `all`, not muted); dropped with the membership.
    notify: HashMap<(RoomId, UserId), (NotifyLevel, bool)>,
    /// Per message: emoji in first-reaction order, each with its users in reaction order.
    reactions: HashMap<(RoomId, Seq), Vec<Reaction>>,
    /// Per room: (seq, pinned by, at).
    pins: HashMap<RoomId, Vec<(Seq, UserId, Millis)>>,
    /// (user, room, root) → read position in that thread.
    thread_reads: HashMap<(UserId, RoomId, Seq), Seq>,
}

struct RoomRow {
    room: Room,
    name_key: String,
    members: BTreeMap<UserId, (Role, Seq)>, // role, last read
    messages: Vec<StoredRow>,               // index i holds seq i+1
    by_client_id: HashMap<(UserId, String), Seq>,
}

struct StoredRow {
    kind: MessageKind,
    sender: UserId,
    target: Option<UserId>,
    body: String,
    client_id: Option<String>,
    mentions: Vec<UserId>,
    ts: Millis,
    edited_at: Option<Millis>,
    deleted: bool,
    reply_to: Option<Seq>,
    thread: Option<Seq>,
    /// When its reactions last changed.
    reactions_at: Option<Millis>,
    /// Removed by retention: absent from every read, but its slot keeps later `seq`s in place.
    purged: bool,
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn idx(id: i64) -> Option<usize> {
    usize::try_from(id.checked_sub(1)?).ok()
}

impl MemoryStore {
    /// Adds `user`'s `emoji` to a message's list; false when it was there.
    fn add_to(list: &mut Vec<Reaction>, user: UserId, emoji: &Emoji) -> Result<bool> {
        let distinct = list.len();
        match list.iter_mut().find(|r| r.emoji == emoji.as_str()) {
            Some(r) if r.users.contains(&user) => Ok(false),
            Some(r) => {
                r.users.push(user);
                Ok(true)
            }
            None if distinct >= Emoji::MAX_PER_MESSAGE => Err(Error::TooManyReactions),
            None => {
                list.push(Reaction { emoji: emoji.as_str().to_owned(), users: vec![user] });
                Ok(true)
            }
        }
    }
}

impl Inner {
    fn touch_reactions(&mut self, room: RoomId, seq: Seq, at: Millis) {
        if let Some(m) = self.row_mut(room).and_then(|r| r.messages.get_mut(idx(seq)?)) {
            m.reactions_at = Some(at);
        }
    }
    fn user(&self, id: UserId) -> Option<&User> {
        self.users.get(idx(id.0)?).map(|(u, _, _)| u)
    }
    fn row(&self, id: RoomId) -> Option<&RoomRow> {
        self.rooms.get(idx(id.0)?)
    }
    fn row_mut(&mut self, id: RoomId) -> Option<&mut RoomRow> {
        self.rooms.get_mut(idx(id.0)?)
    }
    fn room(&self, r: &RoomRow) -> Room {
        Room { last_seq: r.messages.len() as Seq, member_count: r.members.len() as i64, ..r.room.clone() }
    }
    fn message(&self, room: RoomId, seq: Seq) -> Option<Arc<Message>> {
        let m = self.row(room)?.messages.get(idx(seq)?)?;
        if m.purged {
            return None;
        }
        Some(Arc::new(Message {
            room,
            seq,
            kind: m.kind,
            sender: self.user(m.sender).cloned(),
            target: m.target.and_then(|t| self.user(t).cloned()),
            body: m.body.clone(),
            client_id: m.client_id.clone(),
            mentions: m.mentions.clone(),
            ts: m.ts,
            edited_at: m.edited_at,
            deleted: m.deleted,
            files: self.files.iter().filter(|f| f.room == room && f.seq == Some(seq)).cloned().collect(),
            reply_to: m.reply_to,
            thread: m.thread,
            extras: MessageExtras::default(),
        }))
    }
    fn name_taken(&self, key: &str) -> bool {
        self.rooms.iter().any(|r| r.name_key == key)
    }
    fn new_room(&mut self, name: String, name_key: String, kind: RoomKind, vis: Visibility, creator: UserId) -> RoomId {
        let id = RoomId(self.rooms.len() as i64 + 1);
        let room = Room {
            id,
            name,
            kind,
            visibility: vis,
            topic: String::new(),
            created_by: creator,
            last_seq: 0,
            member_count: 0,
            retention_secs: None,
        };
        self.rooms.push(RoomRow {
            room,
            name_key,
            members: BTreeMap::new(),
            messages: Vec::new(),
            by_client_id: HashMap::new(),
        });
        id
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_user(&self, name: &Username, display: &DisplayName, hash: &str, _at: Millis) -> Result<User> {
        let mut g = self.inner.lock();
        let key = name.key();
        if g.users.iter().any(|(_, k, _)| *k == key) {
            return Err(Error::UsernameTaken);
        }
        let user = User {
            id: UserId(g.users.len() as i64 + 1),
            username: name.as_str().to_owned(),
            display_name: display.as_str().to_owned(),
        };
        g.users.push((user.clone(), key, hash.to_owned()));
        Ok(user)
    }

    async fn credentials(&self, username_key: &str) -> Result<Option<Credentials>> {
        let g = self.inner.lock();
        Ok(g.users
            .iter()
            .find(|(_, k, _)| k == username_key)
            .map(|(u, _, h)| Credentials { user: u.clone(), password_hash: h.clone() }))
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.inner.lock().user(id).cloned())
    }

    async fn user_by_name(&self, username_key: &str) -> Result<Option<User>> {
        let g = self.inner.lock();
        Ok(g.users.iter().find(|(_, k, _)| k == username_key).map(|(u, _, _)| u.clone()))
    }

    async fn set_display_name(&self, id: UserId, name: &DisplayName) -> Result<User> {
        let mut g = self.inner.lock();
        let (u, _, _) = idx(id.0).and_then(|i| g.users.get_mut(i)).ok_or(Error::UserNotFound)?;
        u.display_name = name.as_str().to_owned();
        Ok(u.clone())
    }

    async fn create_session(&self, session: &Session, _at: Millis) -> Result<()> {
        self.inner.lock().sessions.insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>> {
        Ok(self.inner.lock().sessions.get(id).cloned())
    }

    async fn session_user(&self, id: &SessionId) -> Result<Option<(Session, User)>> {
        let g = self.inner.lock();
        Ok(g.sessions.get(id).and_then(|s| Some((s.clone(), g.user(s.user)?.clone()))))
    }

    async fn revoke_session(&self, id: &SessionId) -> Result<bool> {
        let mut g = self.inner.lock();
        Ok(match g.sessions.get_mut(id) {
            Some(s) if !s.revoked => {
                s.revoked = true;
                true
            }
            _ => false,
        })
    }

    async fn create_room(&self, name: &RoomName, visibility: Visibility, creator: UserId, _at: Millis) -> Result<Room> {
        let mut g = self.inner.lock();
        if g.name_taken(&name.key()) {
            return Err(Error::RoomNameTaken);
        }
        let id = g.new_room(name.as_str().to_owned(), name.key(), RoomKind::Group, visibility, creator);
        let row = g.row_mut(id).expect("just created");
        row.members.insert(creator, (Role::Owner, 0));
        Ok(g.room(g.row(id).expect("just created")))
    }

    async fn open_direct(&self, a: UserId, b: UserId, _at: Millis) -> Result<(Room, bool)> {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let key = format!("@dm:{lo}:{hi}");
        let mut g = self.inner.lock();
        if let Some(r) = g.rooms.iter().find(|r| r.name_key == key) {
            return Ok((g.room(r), false));
        }
        let id = g.new_room(format!("dm-{lo}-{hi}"), key, RoomKind::Direct, Visibility::Private, a);
        let row = g.row_mut(id).expect("just created");
        row.members.insert(lo, (Role::Member, 0));
        row.members.insert(hi, (Role::Member, 0));
        Ok((g.room(g.row(id).expect("just created")), true))
    }

    async fn room(&self, id: RoomId) -> Result<Option<Room>> {
        let g = self.inner.lock();
        Ok(g.row(id).map(|r| g.room(r)))
    }

    async fn room_by_name(&self, name_key: &str) -> Result<Option<Room>> {
        let g = self.inner.lock();
        Ok(g.rooms.iter().find(|r| r.name_key == name_key && r.room.kind == RoomKind::Group).map(|r| g.room(r)))
    }

    async fn public_rooms(&self) -> Result<Vec<Room>> {
        let g = self.inner.lock();
        Ok(g.rooms
            .iter()
            .filter(|r| r.room.visibility == Visibility::Public && r.room.kind == RoomKind::Group)
            .map(|r| g.room(r))
            .collect())
    }

    async fn user_rooms(&self, user: UserId) -> Result<Vec<Room>> {
        let g = self.inner.lock();
        Ok(g.rooms.iter().filter(|r| r.members.contains_key(&user)).map(|r| g.room(r)).collect())
    }

    async fn room_views(&self, user: UserId) -> Result<Vec<RoomView>> {
        let g = self.inner.lock();
        let mut out = Vec::new();
        for r in g.rooms.iter() {
            let Some(&(role, last_read)) = r.members.get(&user) else { continue };
            let unread_msgs = r.messages.iter().skip(usize::try_from(last_read).unwrap_or(0));
            let unread_msgs: Vec<&StoredRow> = unread_msgs
                .filter(|m| !m.purged && m.kind == MessageKind::Text && m.sender != user && !m.deleted)
                .collect();
            let peer = match r.room.kind {
                RoomKind::Direct => r.members.keys().find(|u| **u != user).and_then(|u| g.user(*u).cloned()),
                RoomKind::Group => None,
            };
            let (notify, muted) = g.notify.get(&(r.room.id, user)).copied().unwrap_or_default();
            out.push(RoomView {
                room: g.room(r),
                role,
                last_read,
                unread: notify.unread_shown(muted, unread_msgs.len() as i64),
                notify,
                muted,
                mentions: unread_msgs.iter().filter(|m| m.mentions.contains(&user)).count() as i64,
                peer,
                last_message: g.message(r.room.id, r.messages.len() as Seq),
            });
        }
        Ok(out)
    }

    async fn rename_room(&self, room: RoomId, name: &RoomName) -> Result<Room> {
        let mut g = self.inner.lock();
        let key = name.key();
        if g.rooms.iter().any(|r| r.name_key == key && r.room.id != room) {
            return Err(Error::RoomNameTaken);
        }
        let r = g.row_mut(room).ok_or(Error::RoomNotFound)?;
        r.room.name = name.as_str().to_owned();
        r.name_key = key;
        Ok(g.room(g.row(room).expect("exists")))
    }

    async fn set_topic(&self, room: RoomId, topic: &Topic) -> Result<Room> {
        let mut g = self.inner.lock();
        g.row_mut(room).ok_or(Error::RoomNotFound)?.room.topic = topic.as_str().to_owned();
        Ok(g.room(g.row(room).expect("exists")))
    }

    async fn members(&self, room: RoomId) -> Result<Vec<Member>> {
        let g = self.inner.lock();
        let Some(r) = g.row(room) else { return Ok(vec![]) };
        Ok(r.members
            .iter()
            .filter_map(|(id, (role, _))| g.user(*id).map(|u| Member { user: u.clone(), role: *role }))
            .collect())
    }

    async fn role(&self, room: RoomId, user: UserId) -> Result<Option<Role>> {
        Ok(self.inner.lock().row(room).and_then(|r| r.members.get(&user)).map(|(role, _)| *role))
    }

    async fn add_member(&self, room: RoomId, user: UserId, role: Role, _at: Millis) -> Result<bool> {
        let mut g = self.inner.lock();
        g.invites.remove(&(room, user));
        let r = g.row_mut(room).ok_or(Error::RoomNotFound)?;
        if r.members.contains_key(&user) {
            return Ok(false);
        }
        let role = if r.members.is_empty() && r.room.kind == RoomKind::Group { Role::Owner } else { role };
        r.members.insert(user, (role, 0));
        Ok(true)
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<bool> {
        let mut g = self.inner.lock();
        g.notify.remove(&(room, user));
        Ok(g.row_mut(room).is_some_and(|r| r.members.remove(&user).is_some()))
    }

    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> Result<bool> {
        let mut g = self.inner.lock();
        Ok(match g.row_mut(room).and_then(|r| r.members.get_mut(&user)) {
            Some(m) => {
                m.0 = role;
                true
            }
            None => false,
        })
    }

    async fn add_invite(&self, room: RoomId, user: UserId, by: UserId, at: Millis) -> Result<bool> {
        let mut g = self.inner.lock();
        if g.invites.contains_key(&(room, user)) {
            return Ok(false);
        }
        g.invites.insert((room, user), (by, at));
        Ok(true)
    }

    async fn is_invited(&self, room: RoomId, user: UserId) -> Result<bool> {
        Ok(self.inner.lock().invites.contains_key(&(room, user)))
    }

    async fn invites_of(&self, user: UserId) -> Result<Vec<Invite>> {
        let g = self.inner.lock();
        let mut out: Vec<Invite> = g
            .invites
            .iter()
            .filter(|((_, u), _)| *u == user)
            .filter_map(|((r, _), (by, at))| {
                Some(Invite { room: g.room(g.row(*r)?), invited_by: g.user(*by)?.clone(), at: *at })
            })
            .collect();
        out.sort_by_key(|i| (i.at, i.room.id));
        Ok(out)
    }

    async fn remove_invite(&self, room: RoomId, user: UserId) -> Result<bool> {
        Ok(self.inner.lock().invites.remove(&(room, user)).is_some())
    }

    async fn bans(&self, room: RoomId) -> Result<Vec<Ban>> {
        let g = self.inner.lock();
        let mut out: Vec<Ban> = g
            .bans
            .iter()
            .filter(|((r, _), _)| *r == room)
            .filter_map(|((_, u), at)| Some(Ban { user: g.user(*u)?.clone(), banned_at: *at }))
            .collect();
        out.sort_by_key(|b| (b.banned_at, b.user.id));
        Ok(out)
    }

    async fn transfer_owner(&self, room: RoomId, from: UserId, to: UserId) -> Result<bool> {
        let mut g = self.inner.lock();
        let Some(r) = g.row_mut(room) else { return Ok(false) };
        if from == to || r.members.get(&from).map(|m| m.0) != Some(Role::Owner) || !r.members.contains_key(&to) {
            return Ok(false);
        }
        r.members.entry(from).and_modify(|m| m.0 = Role::Admin);
        r.members.entry(to).and_modify(|m| m.0 = Role::Owner);
        Ok(true)
    }

    async fn set_visibility(&self, room: RoomId, visibility: Visibility) -> Result<Room> {
        let mut g = self.inner.lock();
        g.row_mut(room).ok_or(Error::RoomNotFound)?.room.visibility = visibility;
        Ok(g.room(g.row(room).expect("exists")))
    }

    async fn direct_room(&self, a: UserId, b: UserId) -> Result<Option<Room>> {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let key = format!("@dm:{lo}:{hi}");
        let g = self.inner.lock();
        Ok(g.rooms.iter().find(|r| r.name_key == key).map(|r| g.room(r)))
    }

    async fn ban(&self, room: RoomId, user: UserId, _by: UserId, at: Millis) -> Result<bool> {
        let mut g = self.inner.lock();
        g.invites.remove(&(room, user));
        g.notify.remove(&(room, user));
        if let Some(r) = g.row_mut(room) {
            r.members.remove(&user);
        }
        if g.bans.contains_key(&(room, user)) {
            return Ok(false);
        }
        g.bans.insert((room, user), at);
        Ok(true)
    }

    async fn unban(&self, room: RoomId, user: UserId) -> Result<bool> {
        Ok(self.inner.lock().bans.remove(&(room, user)).is_some())
    }

    async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool> {
        Ok(self.inner.lock().bans.contains_key(&(room, user)))
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> Result<Seq> {
        let mut g = self.inner.lock();
        let r = g.row_mut(room).ok_or(Error::RoomNotFound)?;
        let last = r.messages.len() as Seq;
        let m = r.members.get_mut(&user).ok_or(Error::NotAMember)?;
        m.1 = m.1.max(seq.min(last));
        Ok(m.1)
    }

    async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        let mut g = self.inner.lock();
        let mut out = Vec::with_capacity(batch.len());
        for m in batch {
            let Some(r) = g.row_mut(m.room) else {
                out.push(Appended::NotMember);
                continue;
            };
            if let Some(cid) = &m.client_id
                && let Some(&seq) = r.by_client_id.get(&(m.sender.id, cid.as_str().to_owned()))
            {
                out.push(Appended::Duplicate(g.message(m.room, seq).expect("stored")));
                continue;
            }
            if m.kind == MessageKind::Text && !r.members.contains_key(&m.sender.id) {
                out.push(Appended::NotMember);
                continue;
            }
            r.messages.push(StoredRow {
                kind: m.kind,
                sender: m.sender.id,
                target: m.target.as_ref().map(|t| t.id),
                body: m.body.clone(),
                client_id: m.client_id.as_ref().map(|c| c.as_str().to_owned()),
                mentions: m.mentions.clone(),
                ts: m.ts,
                edited_at: None,
                deleted: false,
                reply_to: m.reply_to,
                thread: m.thread,
                reactions_at: None,
                purged: false,
            });
            let seq = r.messages.len() as Seq;
            if let Some(cid) = &m.client_id {
                r.by_client_id.insert((m.sender.id, cid.as_str().to_owned()), seq);
            }
            for f in &m.files {
                if let Some(stored) =
                    g.files.iter_mut().find(|x| x.id == f.id && x.room == m.room && x.uploader == m.sender.id)
                    && stored.seq.is_none()
                {
                    stored.seq = Some(seq);
                }
            }
            let mut stored = g.message(m.room, seq).expect("just stored");
            Arc::make_mut(&mut stored).extras.quote = m.quote.clone();
            out.push(Appended::Stored(stored));
        }
        Ok(out)
    }

    async fn history(&self, room: RoomId, query: HistoryQuery) -> Result<HistoryPage> {
        let g = self.inner.lock();
        let Some(r) = g.row(room) else { return Ok(HistoryPage { messages: vec![], has_more: false }) };
        let n = r.messages.len() as i64;
        let limit = query.limit() as usize;
        // Purged slots are skipped, as the SQL stores skip deleted rows: pages hold `limit` kept messages.
        let live = |seq: &i64| idx(*seq).and_then(|i| r.messages.get(i)).is_some_and(|m| !m.purged);
        let (mut seqs, forward): (Vec<i64>, bool) = match query {
            HistoryQuery::Latest { .. } => ((1..=n).rev().filter(live).take(limit + 1).collect(), false),
            HistoryQuery::Before { before, .. } => {
                ((1..before.min(n + 1)).rev().filter(live).take(limit + 1).collect(), false)
            }
            HistoryQuery::After { after, .. } => ((after.max(0) + 1..=n).filter(live).take(limit + 1).collect(), true),
        };
        let has_more = seqs.len() > limit;
        seqs.truncate(limit);
        if !forward {
            seqs.reverse();
        }
        let messages = seqs.into_iter().filter_map(|seq| g.message(room, seq)).collect();
        Ok(HistoryPage { messages, has_more })
    }

    async fn message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
        Ok(self.inner.lock().message(room, seq))
    }

    async fn edit_message(
        &self,
        room: RoomId,
        seq: Seq,
        body: &str,
        mentions: &[UserId],
        at: Millis,
    ) -> Result<Option<Arc<Message>>> {
        let mut g = self.inner.lock();
        let Some(m) = g.row_mut(room).and_then(|r| r.messages.get_mut(idx(seq)?)) else { return Ok(None) };
        if m.kind != MessageKind::Text || m.deleted || m.purged {
            return Ok(None);
        }
        m.body = body.to_owned();
        m.mentions = mentions.to_vec();
        m.edited_at = Some(at);
        Ok(g.message(room, seq))
    }

    async fn delete_message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
        let mut g = self.inner.lock();
        let Some(m) = g.row_mut(room).and_then(|r| r.messages.get_mut(idx(seq)?)) else { return Ok(None) };
        if m.purged {
            return Ok(None);
        }
        m.body.clear();
        m.mentions.clear();
        m.deleted = true;
        g.files.retain(|f| !(f.room == room && f.seq == Some(seq)));
        Ok(g.message(room, seq))
    }

    async fn search(&self, user: UserId, q: &SearchQuery) -> Result<SearchHits> {
        let g = self.inner.lock();
        let mut found: Vec<(usize, Millis, RoomId, Seq)> = Vec::new();
        for r in g.rooms.iter().filter(|r| r.members.contains_key(&user) && q.room.is_none_or(|id| id == r.room.id)) {
            for (i, m) in r.messages.iter().enumerate() {
                if m.purged || m.deleted || m.kind != MessageKind::Text || q.sender.is_some_and(|s| s != m.sender) {
                    continue;
                }
                let in_time = q.from.is_none_or(|f| m.ts >= f) && q.before.is_none_or(|b| m.ts < b);
                let link = !q.has_link || m.body.contains("http://") || m.body.contains("https://");
                let seq = i as Seq + 1;
                let file = !q.has_file || g.files.iter().any(|f| f.room == r.room.id && f.seq == Some(seq));
                if let (true, true, true, Some(score)) = (in_time, link, file, search::score(&m.body, &q.terms)) {
                    found.push((score, m.ts, r.room.id, seq));
                }
            }
        }
        // The newest `WINDOW` matches, best first (as the SQL stores).
        found.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(b.3.cmp(&a.3)));
        found.truncate(search::WINDOW as usize);
        found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3)));
        let page = found.iter().skip(q.offset as usize);
        let messages: Vec<_> =
            page.clone().take(q.limit as usize).filter_map(|&(_, _, room, seq)| g.message(room, seq)).collect();
        Ok(SearchHits { messages, has_more: page.count() > q.limit as usize })
    }

    async fn set_retention(&self, room: RoomId, secs: Option<i64>) -> Result<Room> {
        let mut g = self.inner.lock();
        g.row_mut(room).ok_or(Error::RoomNotFound)?.room.retention_secs = secs;
        Ok(g.room(g.row(room).expect("exists")))
    }

    async fn retention_rooms(&self) -> Result<Vec<(RoomId, i64)>> {
        let g = self.inner.lock();
        Ok(g.rooms.iter().filter_map(|r| r.room.retention_secs.map(|s| (r.room.id, s))).collect())
    }

    async fn purge_before(&self, room: RoomId, cutoff: Millis) -> Result<u64> {
        let mut g = self.inner.lock();
        let Some(r) = g.row_mut(room) else { return Ok(0) };
        let mut n = 0;
        let mut purged = Vec::new();
        for (i, m) in r.messages.iter_mut().enumerate().filter(|(_, m)| !m.purged && m.ts < cutoff) {
            purged.push(i as Seq + 1);
            m.purged = true;
            m.body = String::new();
            m.mentions = Vec::new();
            if let Some(cid) = m.client_id.take() {
                r.by_client_id.remove(&(m.sender, cid));
            }
            n += 1;
        }
        // Reactions and pins go with their messages.
        let gone: std::collections::HashSet<Seq> =
            r.messages.iter().enumerate().filter(|(_, m)| m.purged).map(|(i, _)| i as Seq + 1).collect();
        g.files.retain(|f| !(f.room == room && f.seq.is_some_and(|s| purged.contains(&s))));
        g.reactions.retain(|(rm, s), _| *rm != room || !gone.contains(s));
        if let Some(pins) = g.pins.get_mut(&room) {
            pins.retain(|(s, _, _)| !gone.contains(s));
        }
        Ok(n)
    }

    async fn create_file(&self, file: &FileMeta) -> Result<()> {
        self.inner.lock().files.push(file.clone());
        Ok(())
    }

    async fn file(&self, id: &str) -> Result<Option<FileMeta>> {
        Ok(self.inner.lock().files.iter().find(|f| f.id == id).cloned())
    }

    async fn uploaded_bytes(&self, user: UserId) -> Result<i64> {
        Ok(self.inner.lock().files.iter().filter(|f| f.uploader == user).map(|f| f.size).sum())
    }

    async fn blob_in_use(&self, blob: &str) -> Result<bool> {
        Ok(self
            .inner
            .lock()
            .files
            .iter()
            .any(|f| f.blob == blob || f.thumbnail.as_ref().is_some_and(|t| t.blob == blob)))
    }

    async fn drop_unsent_files(&self, before: Millis) -> Result<u64> {
        let mut g = self.inner.lock();
        let was = g.files.len();
        g.files.retain(|f| f.seq.is_some() || f.created_at >= before);
        Ok((was - g.files.len()) as u64)
    }

    async fn create_webhook(&self, new: &NewWebhook<'_>) -> Result<Webhook> {
        let mut g = self.inner.lock();
        let Some(delivered_seq) = g.row(new.room).map(|r| r.messages.len() as Seq) else {
            return Err(Error::RoomNotFound);
        };
        g.next_webhook += 1;
        let hook = new.stored(g.next_webhook, delivered_seq);
        g.webhooks.push(hook.clone());
        Ok(hook)
    }

    async fn webhooks(&self, room: RoomId) -> Result<Vec<Webhook>> {
        Ok(self.inner.lock().webhooks.iter().filter(|w| w.room == room).cloned().collect())
    }

    async fn webhooks_for(&self, rooms: &[RoomId]) -> Result<Vec<Webhook>> {
        Ok(self.inner.lock().webhooks.iter().filter(|w| rooms.contains(&w.room)).cloned().collect())
    }

    async fn webhook(&self, id: i64) -> Result<Option<Webhook>> {
        Ok(self.inner.lock().webhooks.iter().find(|w| w.id == id).cloned())
    }

    async fn all_webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(self.inner.lock().webhooks.clone())
    }

    async fn advance_webhook(&self, id: i64, from: Seq, to: Seq) -> Result<bool> {
        let mut g = self.inner.lock();
        Ok(match g.webhooks.iter_mut().find(|w| w.id == id && w.delivered_seq == from) {
            Some(w) => {
                w.delivered_seq = to;
                true
            }
            None => false,
        })
    }

    async fn delete_webhook(&self, room: RoomId, id: i64) -> Result<bool> {
        let mut g = self.inner.lock();
        let before = g.webhooks.len();
        g.webhooks.retain(|w| !(w.id == id && w.room == room));
        Ok(g.webhooks.len() < before)
    }

    async fn thread(&self, room: RoomId, root: Seq, query: HistoryQuery) -> Result<HistoryPage> {
        let g = self.inner.lock();
        let Some(r) = g.row(room) else { return Ok(HistoryPage { messages: vec![], has_more: false }) };
        let limit = query.limit() as usize;
        let replies = (1..=r.messages.len() as i64)
            .filter(|s| idx(*s).and_then(|i| r.messages.get(i)).is_some_and(|m| !m.purged && m.thread == Some(root)));
        let (mut seqs, forward): (Vec<i64>, bool) = match query {
            HistoryQuery::Latest { .. } => (replies.rev().take(limit + 1).collect(), false),
            HistoryQuery::Before { before, .. } => {
                (replies.rev().filter(|s| *s < before).take(limit + 1).collect(), false)
            }
            HistoryQuery::After { after, .. } => (replies.filter(|s| *s > after).take(limit + 1).collect(), true),
        };
        let has_more = seqs.len() > limit;
        seqs.truncate(limit);
        if !forward {
            seqs.reverse();
        }
        Ok(HistoryPage { messages: seqs.into_iter().filter_map(|s| g.message(room, s)).collect(), has_more })
    }

    async fn thread_stats(&self, room: RoomId, roots: &[Seq]) -> Result<Vec<(Seq, i64, Millis)>> {
        let g = self.inner.lock();
        let Some(r) = g.row(room) else { return Ok(vec![]) };
        let mut out: Vec<(Seq, i64, Millis)> = Vec::new();
        for m in r.messages.iter().filter(|m| !m.purged && !m.deleted) {
            let Some(t) = m.thread.filter(|t| roots.contains(t)) else { continue };
            match out.iter_mut().find(|(s, _, _)| *s == t) {
                Some(e) => {
                    e.1 += 1;
                    e.2 = e.2.max(m.ts);
                }
                None => out.push((t, 1, m.ts)),
            }
        }
        Ok(out)
    }

    async fn followed_threads(&self, user: UserId) -> Result<Vec<ThreadSummary>> {
        let g = self.inner.lock();
        let mut out = Vec::new();
        for r in g.rooms.iter().filter(|r| r.members.contains_key(&user)) {
            let live = |s: Seq| idx(s).and_then(|i| r.messages.get(i)).filter(|m| !m.purged);
            let involved = |m: &StoredRow| m.sender == user || m.mentions.contains(&user);
            let mut roots: Vec<Seq> = r.messages.iter().filter(|m| !m.purged).filter_map(|m| m.thread).collect();
            roots.sort_unstable();
            roots.dedup();
            for root in roots {
                let replies: Vec<(Seq, &StoredRow)> = (1..=r.messages.len() as i64)
                    .filter_map(|s| live(s).filter(|m| m.thread == Some(root)).map(|m| (s, m)))
                    .collect();
                let follows = live(root).is_some_and(involved) || replies.iter().any(|(_, m)| involved(m));
                let alive: Vec<&(Seq, &StoredRow)> = replies.iter().filter(|(_, m)| !m.deleted).collect();
                if !follows || alive.is_empty() {
                    continue;
                }
                let read = g.thread_reads.get(&(user, r.room.id, root)).copied().unwrap_or(0);
                out.push(ThreadSummary {
                    room: r.room.id,
                    root,
                    reply_count: alive.len() as i64,
                    last_reply_ts: alive.iter().map(|(_, m)| m.ts).max(),
                    unread: alive.iter().filter(|(s, m)| *s > read && m.sender != user).count() as i64,
                });
            }
        }
        out.sort_by_key(|t| std::cmp::Reverse(t.last_reply_ts));
        Ok(out)
    }

    async fn mark_thread_read(&self, room: RoomId, root: Seq, user: UserId, seq: Seq) -> Result<Seq> {
        let mut g = self.inner.lock();
        let e = g.thread_reads.entry((user, room, root)).or_insert(seq);
        *e = (*e).max(seq);
        Ok(*e)
    }

    async fn add_reaction(&self, room: RoomId, seq: Seq, user: UserId, emoji: &Emoji, at: Millis) -> Result<bool> {
        let mut g = self.inner.lock();
        if g.message(room, seq).is_none() {
            return Err(Error::MessageNotFound);
        }
        let added = Self::add_to(g.reactions.entry((room, seq)).or_default(), user, emoji)?;
        if added {
            g.touch_reactions(room, seq, at);
        }
        Ok(added)
    }

    async fn remove_reaction(&self, room: RoomId, seq: Seq, user: UserId, emoji: &Emoji, at: Millis) -> Result<bool> {
        let mut g = self.inner.lock();
        let Some(list) = g.reactions.get_mut(&(room, seq)) else { return Ok(false) };
        let Some(i) = list.iter().position(|r| r.emoji == emoji.as_str()) else { return Ok(false) };
        let before = list[i].users.len();
        list[i].users.retain(|u| *u != user);
        let removed = list[i].users.len() < before;
        if list[i].users.is_empty() {
            // The emoji goes, and with it its place in first-reaction order (as in the SQL stores).
            list.remove(i);
        }
        if removed {
            g.touch_reactions(room, seq, at);
        }
        Ok(removed)
    }

    async fn reactions_changed(
        &self,
        room: RoomId,
        through: Seq,
        since: Millis,
        limit: u32,
    ) -> Result<Vec<(Seq, Vec<Reaction>)>> {
        let g = self.inner.lock();
        let Some(r) = g.row(room) else { return Ok(vec![]) };
        let mut seqs: Vec<Seq> = r
            .messages
            .iter()
            .enumerate()
            .filter(|(i, m)| !m.purged && (*i as Seq) < through && m.reactions_at.is_some_and(|t| t > since))
            .map(|(i, _)| i as Seq + 1)
            .collect();
        let skip = seqs.len().saturating_sub(limit as usize);
        seqs.drain(..skip);
        Ok(seqs.into_iter().map(|s| (s, g.reactions.get(&(room, s)).cloned().unwrap_or_default())).collect())
    }
    async fn reactions(&self, room: RoomId, seqs: &[Seq]) -> Result<Vec<(Seq, Vec<Reaction>)>> {
        let g = self.inner.lock();
        let mut out: Vec<(Seq, Vec<Reaction>)> = seqs
            .iter()
            .filter_map(|s| g.reactions.get(&(room, *s)).filter(|l| !l.is_empty()).map(|l| (*s, l.clone())))
            .collect();
        out.sort_by_key(|(s, _)| *s);
        out.dedup_by_key(|(s, _)| *s);
        Ok(out)
    }

    async fn pin(&self, room: RoomId, seq: Seq, by: UserId, at: Millis) -> Result<bool> {
        let mut g = self.inner.lock();
        let list = g.pins.entry(room).or_default();
        if list.iter().any(|(s, _, _)| *s == seq) {
            return Ok(false);
        }
        list.push((seq, by, at));
        Ok(true)
    }

    async fn unpin(&self, room: RoomId, seq: Seq) -> Result<bool> {
        let mut g = self.inner.lock();
        let Some(list) = g.pins.get_mut(&room) else { return Ok(false) };
        let before = list.len();
        list.retain(|(s, _, _)| *s != seq);
        Ok(list.len() < before)
    }

    async fn pins(&self, room: RoomId) -> Result<Vec<(Seq, User, Millis)>> {
        let g = self.inner.lock();
        let mut out: Vec<(Seq, User, Millis)> = g
            .pins
            .get(&room)
            .map(|l| l.iter().filter_map(|(s, by, at)| Some((*s, g.user(*by)?.clone(), *at))).collect())
            .unwrap_or_default();
        out.sort_by_key(|(s, _, at)| std::cmp::Reverse((*at, *s)));
        Ok(out)
    }

    async fn set_notify(
        &self,
        room: RoomId,
        user: UserId,
        level: Option<NotifyLevel>,
        muted: Option<bool>,
    ) -> Result<Option<(NotifyLevel, bool)>> {
        let mut g = self.inner.lock();
        if !g.row(room).is_some_and(|r| r.members.contains_key(&user)) {
            return Ok(None);
        }
        let e = g.notify.entry((room, user)).or_default();
        if let Some(l) = level {
            e.0 = l;
        }
        if let Some(m) = muted {
            e.1 = m;
        }
        Ok(Some(*e))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn close(&self) {}
}
