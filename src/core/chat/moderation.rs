//! Moderation and ownership: kicks, bans, roles, and handing a room to another owner.
//!
//! Who may do what: the owner and admins moderate members ranked below them; only the owner changes
//! roles, hands the room over ([`Chat::transfer_ownership`]) or changes its visibility. A room always has
//! one owner while it has members: the owner cannot leave while others remain (they hand the room over
//! first), and a room left without members gets its next joiner as owner (`Store::add_member`).

use super::{Chat, Identity, group_only};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::ports::broker::BrokerEvent;

impl Chat {
    /// The room, if `who` is one of its owner and admins (for moderator-only views).
    pub async fn moderated(&self, who: &Identity, r: &RoomRef) -> Result<Room> {
        Ok(self.moderated_room(who, r).await?.0)
    }

    /// The target of a moderation action, who must rank below the moderator.
    async fn outranked(&self, room: &Room, role: Role, username: &str) -> Result<(User, Option<Role>)> {
        let target = self.user_named(username).await?;
        let target_role = self.store.role(room.id, target.id).await?;
        if target_role.is_some_and(|t| t >= role) {
            return Err(Error::Forbidden("you can only act on members ranked below you"));
        }
        Ok((target, target_role))
    }

    pub async fn kick(&self, who: &Identity, r: &RoomRef, username: &str) -> Result<()> {
        let (room, role) = self.moderated_room(who, r).await?;
        let (target, target_role) = self.outranked(&room, role, username).await?;
        if target_role.is_none() {
            return Err(Error::Forbidden("that user is not a member"));
        }
        if self.store.remove_member(room.id, target.id).await? {
            self.system(&room, who, MessageKind::Kick, Some(&target), "").await?;
            self.broker.publish(BrokerEvent::Left { room, user: target.id }).await?;
        }
        Ok(())
    }

    pub async fn ban(&self, who: &Identity, r: &RoomRef, username: &str) -> Result<()> {
        let (room, role) = self.moderated_room(who, r).await?;
        let (target, target_role) = self.outranked(&room, role, username).await?;
        if self.store.ban(room.id, target.id, who.user.id, self.now()).await? {
            self.system(&room, who, MessageKind::Ban, Some(&target), "").await?;
            if target_role.is_some() {
                self.broker.publish(BrokerEvent::Left { room, user: target.id }).await?;
            }
        }
        Ok(())
    }

    pub async fn unban(&self, who: &Identity, r: &RoomRef, username: &str) -> Result<()> {
        let (room, _) = self.moderated_room(who, r).await?;
        let target = self.user_named(username).await?;
        if self.store.unban(room.id, target.id).await? {
            self.system(&room, who, MessageKind::Unban, Some(&target), "").await?;
        }
        Ok(())
    }

    /// Makes a member an admin or a plain member again. Only the owner may.
    pub async fn set_role(&self, who: &Identity, r: &RoomRef, username: &str, new: Role) -> Result<()> {
        let (room, role) = self.owned_room(who, r).await?;
        Role::parse_assignable(new.as_str())?; // never a second owner
        let (target, target_role) = self.outranked(&room, role, username).await?;
        if target_role.is_none() {
            return Err(Error::Forbidden("that user is not a member"));
        }
        if target_role != Some(new) && self.store.set_role(room.id, target.id, new).await? {
            self.system(&room, who, MessageKind::Role, Some(&target), new.as_str()).await?;
        }
        Ok(())
    }

    /// The room's bans, for its owner and admins.
    pub async fn bans(&self, who: &Identity, r: &RoomRef) -> Result<Vec<Ban>> {
        let (room, _) = self.moderated_room(who, r).await?;
        self.store.bans(room.id).await
    }

    /// Hands the room to `username`, a current member; the owner becomes an admin. Owner only. Recorded as
    /// an `owner_changed` system message (actor: the previous owner, target: the new one).
    pub async fn transfer_ownership(&self, who: &Identity, r: &RoomRef, username: &str) -> Result<()> {
        let (room, _) = self.owned_room(who, r).await?;
        let target = self.user_named(username).await?;
        if target.id == who.user.id {
            return Err(Error::BadRequest("you own this room already".into()));
        }
        if !self.store.transfer_owner(room.id, who.user.id, target.id).await? {
            return Err(Error::Forbidden("that user is not a member"));
        }
        self.system(&room, who, MessageKind::OwnerChanged, Some(&target), "").await
    }

    /// Makes a group room public or private. Owner only.
    pub async fn set_visibility(&self, who: &Identity, r: &RoomRef, visibility: Visibility) -> Result<Room> {
        let (room, _) = self.owned_room(who, r).await?;
        group_only(&room)?;
        if room.visibility == visibility {
            return Ok(room);
        }
        self.store.set_visibility(room.id, visibility).await?;
        self.room_updated(room.id).await
    }
}
