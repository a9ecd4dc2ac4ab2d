//! Messages: history, sending (the message budget, mentions, the send deadline), editing and deleting,
//! read marks, typing, and the gap fills a connection's Feed asks for.

use std::sync::Arc;
use std::time::Instant;

use super::{Ack, Chat, Identity, PendingSend, SendRequest};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::ports::broker::BrokerEvent;

impl Chat {
    pub async fn history(&self, who: &Identity, r: &RoomRef, q: HistoryQuery) -> Result<(Room, HistoryPage)> {
        let (room, _) = self.visible_room(who, r).await?;
        let mut page = self.store.history(room.id, q).await?;
        self.decorate(room.id, &mut page.messages).await?;
        Ok((room, page))
    }

    /// Stores a message and answers once it is durable. A repeated `client_id` answers the first ack.
    pub async fn send(&self, who: &Identity, req: SendRequest) -> Result<Ack> {
        let pending = self.submit(who, req).await?;
        self.finish_send(who, pending).await
    }

    /// The first half of [`Chat::send`]: queues the message for storage. Messages one connection
    /// submits are stored in submission order, so a transport that submits in the order it reads and
    /// awaits the acks concurrently keeps each sender's order without waiting a round trip per message.
    pub async fn submit(&self, who: &Identity, req: SendRequest) -> Result<PendingSend> {
        let SendRequest { room, body, client_id, reply_to, files } = req;
        let (room, files) = self.shared_files(who, room, &files).await?;
        self.submit_inner(who, &room, body, client_id, reply_to, files).await
    }

    async fn submit_inner(
        &self,
        who: &Identity,
        r: &RoomRef,
        body: MessageBody,
        client_id: Option<ClientMsgId>,
        reply_to: Option<Seq>,
        files: Vec<FileMeta>,
    ) -> Result<PendingSend> {
        // One bucket per user, whatever the transport; checked before any work is done.
        let submitted = Instant::now();
        self.message_rate.take(who.user.id, submitted)?;
        // Every send has an outcome within the send timeout, store lookups before queueing included.
        let deadline = tokio::time::Instant::from_std(submitted) + self.ingest.send_timeout();
        let (room, parent, mentions) = tokio::time::timeout_at(deadline, async {
            let (room, parent) = match (r, reply_to) {
                (RoomRef::Id(id), None) => (*id, None),
                (_, None) => (self.visible_room(who, r).await?.0.id, None),
                // A reply checks access first, so the parent's existence tells an outsider nothing.
                (_, Some(seq)) => {
                    let (room, _) = self.member_room(who, r).await?;
                    (room.id, Some(self.reply_parent(room.id, seq).await?))
                }
            };
            let mentions = self.resolve_mentions(room, who, body.as_str()).await?;
            Ok::<_, Error>((room, parent, mentions))
        })
        .await
        .map_err(|_| Error::Unavailable)??;
        self.typing.stop(room, who.user.id);
        let msg = NewMessage {
            room,
            kind: MessageKind::Text,
            sender: who.user.clone(),
            target: None,
            body: body.as_str().to_owned(),
            client_id,
            mentions,
            ts: self.now(),
            files,
            reply_to: parent.as_ref().map(|p| p.seq),
            thread: parent.as_ref().map(|p| p.thread.unwrap_or(p.seq)),
            quote: parent.as_deref().map(Quote::of),
        };
        let thread = msg.thread;
        let waiting = self.ingest.enqueue_until(msg, deadline).await?;
        self.received.increment(1);
        Ok(PendingSend { room, thread, waiting, submitted })
    }

    /// Members of `room` named by `@username` in `body`. Costs a lookup only when there is an `@`.
    /// `@room` from the room's owner or an admin names every member but the sender; from anyone else it
    /// is an ordinary word (or names a member called `room`).
    async fn resolve_mentions(&self, room: RoomId, who: &Identity, body: &str) -> Result<Vec<UserId>> {
        let names = mentioned_names(body);
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let members = self.store.members(room).await?;
        let everyone = names.iter().any(|n| n == ROOM_MENTION)
            && members.iter().any(|m| m.user.id == who.user.id && m.role.moderates());
        Ok(members
            .iter()
            .filter(|m| {
                if everyone { m.user.id != who.user.id } else { names.contains(&m.user.username.to_ascii_lowercase()) }
            })
            .map(|m| m.user.id)
            .collect())
    }

    /// The second half of [`Chat::send`]: waits until the message is durable.
    pub async fn finish_send(&self, who: &Identity, pending: PendingSend) -> Result<Ack> {
        let (m, duplicate) = match pending.waiting.wait().await? {
            Appended::Stored(m) if pending.thread.is_some() => {
                self.thread_grew(m.room, m.thread.unwrap_or(m.seq)).await;
                (m, false)
            }
            Appended::Stored(m) => (m, false),
            Appended::Duplicate(m) => (m, true),
            Appended::NotMember => {
                // Refused: say why without revealing a private room to an outsider.
                self.visible_room(who, &RoomRef::Id(pending.room)).await?;
                return Err(Error::NotAMember);
            }
        };
        self.ack_latency.record(pending.submitted.elapsed().as_secs_f64());
        Ok(Ack { room: m.room, seq: m.seq, ts: m.ts, client_id: m.client_id.clone(), duplicate })
    }

    /// Replaces the text of one of `who`'s own messages.
    pub async fn edit(&self, who: &Identity, r: &RoomRef, seq: Seq, body: MessageBody) -> Result<Arc<Message>> {
        let (room, _) = self.member_room(who, r).await?;
        let msg = self.store.message(room.id, seq).await?.ok_or(Error::MessageNotFound)?;
        if msg.kind != MessageKind::Text || msg.deleted {
            return Err(Error::MessageNotFound);
        }
        if msg.sender.as_ref().map(|u| u.id) != Some(who.user.id) {
            return Err(Error::Forbidden("you can only edit your own messages"));
        }
        // The new text's mentions replace the old ones (and with them the members' mention counts).
        let mentions = self.resolve_mentions(room.id, who, body.as_str()).await?;
        let m = self
            .store
            .edit_message(room.id, seq, body.as_str(), &mentions, self.now())
            .await?
            .ok_or(Error::MessageNotFound)?;
        let m = self.decorated(m).await?;
        self.broker.publish(BrokerEvent::Updated(m.clone())).await?;
        Ok(m)
    }

    /// Deletes a message: the author may, and so may the room's owner and admins.
    pub async fn delete(&self, who: &Identity, r: &RoomRef, seq: Seq) -> Result<Arc<Message>> {
        let (room, role) = self.member_room(who, r).await?;
        let msg = self.store.message(room.id, seq).await?.ok_or(Error::MessageNotFound)?;
        if msg.kind != MessageKind::Text || msg.deleted {
            return Err(Error::MessageNotFound);
        }
        let own = msg.sender.as_ref().map(|u| u.id) == Some(who.user.id);
        if !(own || (role.moderates() && room.kind == RoomKind::Group)) {
            return Err(Error::Forbidden("you can only delete your own messages"));
        }
        let m = self.store.delete_message(room.id, seq).await?.ok_or(Error::MessageNotFound)?;
        let m = self.decorated(m).await?;
        self.broker.publish(BrokerEvent::Updated(m.clone())).await?;
        if let Some(root) = m.thread {
            // One reply fewer.
            self.thread_grew(room.id, root).await;
        }
        Ok(m)
    }

    /// Moves `who`'s read position in a room forward; synced to their other devices.
    pub async fn mark_read(&self, who: &Identity, r: &RoomRef, seq: Seq) -> Result<(RoomId, Seq)> {
        let (room, _) = self.member_room(who, r).await?;
        let seq = self.store.mark_read(room.id, who.user.id, seq).await?;
        self.broker.publish(BrokerEvent::Read { user: who.user.id, room: room.id, seq }).await?;
        Ok((room.id, seq))
    }

    /// `who` is typing in a room: forwarded to the other members, at most once per interval. Access is
    /// checked first, every time: a refused call records nothing, and a private room answers a
    /// non-member exactly as a room that does not exist, however often it is asked.
    pub async fn typing(&self, who: &Identity, r: &RoomRef) -> Result<()> {
        let (room, _) = self.member_room(who, r).await?;
        if !self.typing.accept(room.id, who.user.id) {
            return Ok(());
        }
        self.broker.publish(BrokerEvent::Typing { room: room.id, user: who.user.clone() }).await
    }

    /// Who is typing in a room now.
    pub async fn typing_in(&self, who: &Identity, r: &RoomRef) -> Result<Vec<UserId>> {
        let (room, _) = self.member_room(who, r).await?;
        Ok(self.typing.typing_in(room.id))
    }

    /// Messages of `room` after `after`, in pages, for a connection filling a gap or resuming. `who`
    /// must still be able to see the room.
    pub async fn messages_after(&self, who: &Identity, room: RoomId, after: Seq, limit: u32) -> Result<HistoryPage> {
        let (room, _) = self.visible_room(who, &RoomRef::Id(room)).await?;
        let mut page = self.store.history(room.id, HistoryQuery::After { after, limit }).await?;
        self.decorate(room.id, &mut page.messages).await?;
        Ok(page)
    }
}
