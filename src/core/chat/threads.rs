//! Replies and threads (issue 14), and the derived parts every message read carries.
//!
//! A reply is an ordinary message of its room (its own `seq`, in the main stream, so order,
//! idempotency, resume and retention are unchanged) that also names its parent (`reply_to`) and its
//! thread's root (`thread`: the parent's root when the parent is itself a reply). A thread is read on its
//! own as its root plus a page of its replies. Whatever a client reads — history, thread pages, gap
//! fills, resumes, pins, edits — is *decorated* here from the room's current state: each reply's quote
//! of its parent (a tombstone once the parent is deleted), each root's reply count and latest reply
//! time, and each text message's reactions. Live, a reply carries the quote taken when it was sent, and
//! its root's new summary follows as a `thread_updated` event.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Chat, Identity};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::ports::broker::BrokerEvent;

impl Chat {
    /// The message a reply answers: a live text message of the room.
    pub(super) async fn reply_parent(&self, room: RoomId, seq: Seq) -> Result<Arc<Message>> {
        match self.store.message(room, seq).await? {
            Some(m) if m.kind == MessageKind::Text && !m.deleted => Ok(m),
            _ => Err(Error::MessageNotFound),
        }
    }

    /// Tells the room the thread rooted at `root` changed (a reply landed or was deleted). Best effort:
    /// the summary is in every later read anyway, so a failure is logged, not answered.
    pub(super) async fn thread_grew(&self, room: RoomId, root: Seq) {
        let result = async {
            let (reply_count, last_reply_ts) = match self.store.thread_stats(room, &[root]).await?.first() {
                Some(&(_, n, ts)) => (n, Some(ts)),
                None => (0, None),
            };
            let event = ConvoEvent::ThreadUpdated { room, seq: root, reply_count, last_reply_ts };
            self.broker.publish(BrokerEvent::Convo(event)).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = format!("{:#}", anyhow::Error::new(e)), room = room.0, "thread summary not sent");
        }
    }

    /// Fills in the derived parts of messages of one room: quotes, thread summaries, reactions.
    pub(super) async fn decorate(&self, room: RoomId, messages: &mut [Arc<Message>]) -> Result<()> {
        let texts: Vec<Seq> = messages.iter().filter(|m| m.kind == MessageKind::Text).map(|m| m.seq).collect();
        if texts.is_empty() {
            return Ok(());
        }
        let roots: Vec<Seq> =
            messages.iter().filter(|m| m.kind == MessageKind::Text && m.thread.is_none()).map(|m| m.seq).collect();
        let stats: HashMap<Seq, (i64, Millis)> =
            self.store.thread_stats(room, &roots).await?.into_iter().map(|(s, n, ts)| (s, (n, ts))).collect();
        let reactions: HashMap<Seq, Vec<Reaction>> = self.store.reactions(room, &texts).await?.into_iter().collect();
        let mut parents: Vec<Seq> = messages.iter().filter_map(|m| m.reply_to).collect();
        parents.sort_unstable();
        parents.dedup();
        // A parent on the same page is not read again.
        let mut quoted: HashMap<Seq, Quote> =
            messages.iter().filter(|m| parents.contains(&m.seq)).map(|m| (m.seq, Quote::of(m))).collect();
        parents.retain(|p| !quoted.contains_key(p));
        for p in self.store.messages_at(room, &parents).await? {
            quoted.insert(p.seq, Quote::of(&p));
        }
        for m in messages.iter_mut() {
            let extras = MessageExtras {
                // A parent purged by retention is shown as a tombstone.
                quote: m.reply_to.map(|p| {
                    quoted.get(&p).cloned().unwrap_or(Quote {
                        seq: p,
                        sender: None,
                        excerpt: String::new(),
                        deleted: true,
                    })
                }),
                reply_count: stats.get(&m.seq).map_or(0, |s| s.0),
                last_reply_ts: stats.get(&m.seq).map(|s| s.1),
                reactions: if m.deleted { Vec::new() } else { reactions.get(&m.seq).cloned().unwrap_or_default() },
            };
            if m.extras != extras {
                Arc::make_mut(m).extras = extras;
            }
        }
        Ok(())
    }

    /// One message, decorated.
    pub(super) async fn decorated(&self, m: Arc<Message>) -> Result<Arc<Message>> {
        let room = m.room;
        let mut one = [m];
        self.decorate(room, &mut one).await?;
        let [m] = one;
        Ok(m)
    }

    /// The thread `seq` belongs to: its root (decorated) and a page of its replies, ascending. Readable
    /// by whoever may read the room's history; naming a reply reads that reply's thread.
    pub async fn thread(
        &self,
        who: &Identity,
        r: &RoomRef,
        seq: Seq,
        q: HistoryQuery,
    ) -> Result<(Room, Arc<Message>, HistoryPage)> {
        let (room, _) = self.visible_room(who, r).await?;
        let named = self.store.message(room.id, seq).await?.ok_or(Error::MessageNotFound)?;
        let root = match named.thread {
            Some(t) => self.store.message(room.id, t).await?.ok_or(Error::MessageNotFound)?,
            None => named,
        };
        if root.kind != MessageKind::Text {
            return Err(Error::MessageNotFound);
        }
        let root = self.decorated(root).await?;
        let mut page = self.store.thread(room.id, root.seq, q).await?;
        self.decorate(room.id, &mut page.messages).await?;
        Ok((room, root, page))
    }

    /// The threads `who` follows (they wrote the root or a reply, or were mentioned in one), with their
    /// unread replies, latest activity first.
    pub async fn followed_threads(&self, who: &Identity) -> Result<Vec<ThreadSummary>> {
        self.store.followed_threads(who.user.id).await
    }

    /// Moves `who`'s read position in a thread forward (never back, never past the room's last `seq`);
    /// `(room, root, position)`.
    pub async fn mark_thread_read(&self, who: &Identity, r: &RoomRef, seq: Seq, at: Seq) -> Result<(RoomId, Seq, Seq)> {
        let (room, _) = self.member_room(who, r).await?;
        let named = self.store.message(room.id, seq).await?.ok_or(Error::MessageNotFound)?;
        let root = named.thread.unwrap_or(named.seq);
        let pos = self.store.mark_thread_read(room.id, root, who.user.id, at.clamp(0, room.last_seq)).await?;
        Ok((room.id, root, pos))
    }
}
