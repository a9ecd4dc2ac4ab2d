//! Notification levels and mute (issue 14), per member and room, synced to all the member's
//! connections like the read position. What they change in the counts: see
//! [`NotifyLevel::unread_shown`] (applied by the store's `room_views`).

use super::{Chat, Identity};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::ports::broker::BrokerEvent;

impl Chat {
    /// Changes `who`'s level and/or mute in a room; the settings after.
    pub async fn set_notify(
        &self,
        who: &Identity,
        r: &RoomRef,
        level: Option<NotifyLevel>,
        muted: Option<bool>,
    ) -> Result<(RoomId, NotifyLevel, bool)> {
        if level.is_none() && muted.is_none() {
            return Err(Error::BadRequest("give level, muted or both".into()));
        }
        let (room, _) = self.member_room(who, r).await?;
        let (level, muted) =
            self.store.set_notify(room.id, who.user.id, level, muted).await?.ok_or(Error::NotAMember)?;
        let event = ConvoEvent::Notify { room: room.id, level, muted };
        self.broker.publish(BrokerEvent::UserConvo { user: who.user.id, event }).await?;
        Ok((room.id, level, muted))
    }
}
