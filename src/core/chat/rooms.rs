//! Rooms: creating, finding, joining and leaving them, direct conversations, and the room settings
//! moderators change (name, topic, retention, webhooks). Access rules are `Chat::visible_room` and its
//! siblings in `chat.rs`; ownership and moderation are in `moderation.rs`.

use tracing::info;

use super::{Chat, Identity, group_only};
use crate::core::domain::*;
use crate::core::error::{Error, Result};
use crate::core::ports::broker::BrokerEvent;

impl Chat {
    pub async fn create_room(&self, who: &Identity, name: RoomName, visibility: Visibility) -> Result<Room> {
        let room = self.store.create_room(&name, visibility, who.user.id, self.now()).await?;
        self.broker.publish(BrokerEvent::Joined { room: room.clone(), user: who.user.id }).await?;
        self.system(&room, who, MessageKind::Create, None, "").await?;
        self.store.room(room.id).await?.ok_or(Error::RoomNotFound)
    }

    pub async fn public_rooms(&self) -> Result<Vec<Room>> {
        self.store.public_rooms().await
    }

    /// `who`'s rooms and conversations, with read state and unread counts.
    pub async fn my_rooms(&self, who: &Identity) -> Result<Vec<RoomView>> {
        self.store.room_views(who.user.id).await
    }

    pub async fn room(&self, who: &Identity, r: &RoomRef) -> Result<Room> {
        Ok(self.visible_room(who, r).await?.0)
    }

    /// Members with their role and whether they are online.
    pub async fn members(&self, who: &Identity, r: &RoomRef) -> Result<Vec<(Member, bool)>> {
        let (room, _) = self.visible_room(who, r).await?;
        let members = self.store.members(room.id).await?;
        let online = self.hub.online(members.iter().map(|m| m.user.id));
        Ok(members.into_iter().map(|m| (online.contains(&m.user.id), m)).map(|(o, m)| (m, o)).collect())
    }

    pub async fn join(&self, who: &Identity, r: &RoomRef) -> Result<Room> {
        let (room, role) = self.visible_room(who, r).await?;
        if role.is_some() {
            return Ok(room);
        }
        group_only(&room)?;
        if !self.store.add_member(room.id, who.user.id, Role::Member, self.now()).await? {
            return Ok(room);
        }
        let room = self.store.room(room.id).await?.ok_or(Error::RoomNotFound)?;
        // Follow first, so the joiner's own connections receive the join message.
        self.broker.publish(BrokerEvent::Joined { room: room.clone(), user: who.user.id }).await?;
        self.system(&room, who, MessageKind::Join, None, "").await?;
        Ok(room)
    }

    /// Leaves a group room. The owner may leave only as its last member (the room then goes to whoever
    /// joins it next); with others in the room, they hand it over first (`transfer_ownership`).
    pub async fn leave(&self, who: &Identity, r: &RoomRef) -> Result<Room> {
        let (room, role) = self.member_room(who, r).await?;
        group_only(&room)?;
        if role == Role::Owner && room.member_count > 1 {
            return Err(Error::Forbidden(
                "the owner cannot leave while others are in the room: transfer ownership to a member first",
            ));
        }
        if self.store.remove_member(room.id, who.user.id).await? {
            self.system(&room, who, MessageKind::Leave, None, "").await?;
            self.broker.publish(BrokerEvent::Left { room: room.clone(), user: who.user.id }).await?;
        }
        Ok(room)
    }

    /// Opens (or finds) the one direct conversation between `who` and `username`.
    pub async fn open_direct(&self, who: &Identity, username: &str) -> Result<(Room, User)> {
        let peer = self.user_named(username).await?;
        if peer.id == who.user.id {
            return Err(Error::BadRequest("you cannot open a conversation with yourself".into()));
        }
        let (room, created) = self.store.open_direct(who.user.id, peer.id, self.now()).await?;
        if created {
            for u in [who.user.id, peer.id] {
                self.broker.publish(BrokerEvent::Joined { room: room.clone(), user: u }).await?;
            }
        }
        Ok((room, peer))
    }

    pub async fn rename(&self, who: &Identity, r: &RoomRef, name: RoomName) -> Result<Room> {
        let (room, _) = self.moderated_room(who, r).await?;
        let room = self.store.rename_room(room.id, &name).await?;
        self.system(&room, who, MessageKind::Rename, None, room.name.as_str()).await?;
        self.room_updated(room.id).await
    }

    pub async fn set_topic(&self, who: &Identity, r: &RoomRef, topic: Topic) -> Result<Room> {
        let (room, _) = self.moderated_room(who, r).await?;
        let room = self.store.set_topic(room.id, &topic).await?;
        self.system(&room, who, MessageKind::Topic, None, topic.as_str()).await?;
        self.room_updated(room.id).await
    }

    /// Reads the room again (so `last_seq` includes the system message just written) and tells its
    /// members' connections.
    pub(super) async fn room_updated(&self, id: RoomId) -> Result<Room> {
        let room = self.store.room(id).await?.ok_or(Error::RoomNotFound)?;
        self.broker.publish(BrokerEvent::RoomUpdated(room.clone())).await?;
        Ok(room)
    }

    /// Sets how long the room keeps messages (`None`: forever). Older ones are purged by a background
    /// job; see `jobs::retention`.
    pub async fn set_retention(&self, who: &Identity, r: &RoomRef, secs: Option<i64>) -> Result<Room> {
        let secs = parse_retention(secs)?;
        let (room, _) = self.moderated_room(who, r).await?;
        let room = self.store.set_retention(room.id, secs).await?;
        info!(room = room.id.0, retention_secs = ?secs, by = who.user.id.0, "retention set");
        self.broker.publish(BrokerEvent::RoomUpdated(room.clone())).await?;
        Ok(room)
    }

    /// Registers a webhook; the answer holds its secret, which is not shown again.
    pub async fn add_webhook(&self, who: &Identity, r: &RoomRef, url: WebhookUrl) -> Result<Webhook> {
        const MAX_PER_ROOM: usize = 20;
        let (room, _) = self.moderated_room(who, r).await?;
        if self.store.webhooks(room.id).await?.len() >= MAX_PER_ROOM {
            return Err(Error::Forbidden("a room can have at most 20 webhooks"));
        }
        let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()));
        let hook = self
            .store
            .create_webhook(&NewWebhook {
                room: room.id,
                url: &url,
                secret: &secret,
                created_by: who.user.id,
                created_at: self.now(),
            })
            .await?;
        info!(room = room.id.0, webhook = hook.id, by = who.user.id.0, "webhook added");
        Ok(hook)
    }

    pub async fn webhooks(&self, who: &Identity, r: &RoomRef) -> Result<Vec<Webhook>> {
        let (room, _) = self.moderated_room(who, r).await?;
        self.store.webhooks(room.id).await
    }

    pub async fn remove_webhook(&self, who: &Identity, r: &RoomRef, id: i64) -> Result<()> {
        let (room, _) = self.moderated_room(who, r).await?;
        if !self.store.delete_webhook(room.id, id).await? {
            return Err(Error::WebhookNotFound);
        }
        info!(room = room.id.0, webhook = id, by = who.user.id.0, "webhook removed");
        Ok(())
    }
}
