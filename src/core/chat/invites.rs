//! Invitations into group rooms: made by any member, seen by the invitee (an `invited` event on every
//! live connection of theirs, and a list), accepted (which joins) or declined.

use super::{Chat, Identity, group_only};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::ports::broker::BrokerEvent;

impl Chat {
    /// Invites `username` into a group room (single use: joining consumes it). The invitee's connections
    /// hear of it (`invited`) the first time; inviting again changes nothing but the room's history.
    pub async fn invite(&self, who: &Identity, r: &RoomRef, username: &str) -> Result<()> {
        let (room, _) = self.member_room(who, r).await?;
        group_only(&room)?;
        let invitee = self.user_named(username).await?;
        if self.store.is_banned(room.id, invitee.id).await? {
            return Err(Error::Forbidden("that user is banned from this room"));
        }
        if self.store.is_member(room.id, invitee.id).await? {
            return Ok(());
        }
        let at = self.now();
        let new = self.store.add_invite(room.id, invitee.id, who.user.id, at).await?;
        self.system(&room, who, MessageKind::Invite, Some(&invitee), "").await?;
        if new {
            let room = self.store.room(room.id).await?.ok_or(Error::RoomNotFound)?;
            let invite = Invite { room, invited_by: who.user.clone(), at };
            self.broker.publish(BrokerEvent::Invited { user: invitee.id, invite }).await?;
        }
        Ok(())
    }

    /// `who`'s pending invitations, oldest first.
    pub async fn invites(&self, who: &Identity) -> Result<Vec<Invite>> {
        self.store.invites_of(who.user.id).await
    }

    /// The room `r` names, if `who` holds an invitation into it; `InviteNotFound` otherwise, for any
    /// room (so a private room still answers as if it did not exist).
    async fn invited_room(&self, who: &Identity, r: &RoomRef) -> Result<Room> {
        let room = match self.find_room(who, r).await {
            Ok(room) => room,
            Err(Error::RoomNotFound) => return Err(Error::InviteNotFound),
            Err(e) => return Err(e),
        };
        if !self.store.is_invited(room.id, who.user.id).await? {
            return Err(Error::InviteNotFound);
        }
        Ok(room)
    }

    /// Accepts an invitation: `who` joins the room.
    pub async fn accept_invite(&self, who: &Identity, r: &RoomRef) -> Result<Room> {
        let room = self.invited_room(who, r).await?;
        self.join(who, &RoomRef::Id(room.id)).await
    }

    /// Declines an invitation: it is gone, and a private room is invisible again.
    pub async fn decline_invite(&self, who: &Identity, r: &RoomRef) -> Result<()> {
        let room = self.invited_room(who, r).await?;
        if !self.store.remove_invite(room.id, who.user.id).await? {
            return Err(Error::InviteNotFound);
        }
        Ok(())
    }
}
