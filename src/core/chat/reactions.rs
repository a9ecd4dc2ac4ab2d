//! Reactions (issue 14): an emoji per user on a text message, aggregated per emoji.
//!
//! Only members react (a private room answers an outsider as a room that does not exist), only on live
//! text messages, at most [`Emoji::MAX_PER_MESSAGE`] distinct emoji per message. Adding twice or removing
//! what is not there changes nothing and tells nobody; a change goes to the room as a `reactions` event
//! with the message's whole list (not a new `seq`).

use super::{Chat, Identity};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::ports::broker::BrokerEvent;

impl Chat {
    /// Adds (`add`) or removes `who`'s `emoji` on message `seq`; the message's reactions after.
    pub async fn react(
        &self,
        who: &Identity,
        r: &RoomRef,
        seq: Seq,
        emoji: &Emoji,
        add: bool,
    ) -> Result<(RoomId, Vec<Reaction>)> {
        let (room, _) = self.member_room(who, r).await?;
        match self.store.message(room.id, seq).await? {
            Some(m) if m.kind == MessageKind::Text && !m.deleted => {}
            _ => return Err(Error::MessageNotFound),
        }
        let changed = if add {
            self.store.add_reaction(room.id, seq, who.user.id, emoji, self.now()).await?
        } else {
            self.store.remove_reaction(room.id, seq, who.user.id, emoji, self.now()).await?
        };
        let reactions = self.store.reactions(room.id, &[seq]).await?.pop().map(|(_, r)| r).unwrap_or_default();
        if changed {
            let event = ConvoEvent::Reactions { room: room.id, seq, reactions: reactions.clone() };
            self.broker.publish(BrokerEvent::Convo(event)).await?;
        }
        Ok((room.id, reactions))
    }

    /// For a client resuming `room` after `after`: the reactions of earlier messages that changed since
    /// it had `after` (taken as the time `after` was sent), as `reactions` events with the current lists
    /// (at most [`MISSED_REACTIONS`], the newest). Changes it did see come again; applying one is
    /// idempotent.
    pub async fn missed_reactions(&self, who: &Identity, room: RoomId, after: Seq) -> Result<Vec<ConvoEvent>> {
        let (room, _) = self.visible_room(who, &RoomRef::Id(room)).await?;
        if after <= 0 {
            return Ok(Vec::new());
        }
        // A message purged by retention: everything still kept up to `after` is older than it anyway.
        let since = self.store.message(room.id, after).await?.map_or(0, |m| m.ts);
        let changed = self.store.reactions_changed(room.id, after, since, MISSED_REACTIONS).await?;
        Ok(changed
            .into_iter()
            .map(|(seq, reactions)| ConvoEvent::Reactions { room: room.id, seq, reactions })
            .collect())
    }
}

/// At most this many `reactions` events per room in a resume.
pub(crate) const MISSED_REACTIONS: u32 = 500;
