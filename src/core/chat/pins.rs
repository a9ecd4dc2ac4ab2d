//! Pins (issue 14): the room's owner and admins pin live text messages; whoever may read the room lists
//! them. Each pin and unpin that changes something is recorded as a `pin` / `unpin` system message whose
//! body is the seq, so every transport sees it live and a resuming client replays it.

use super::{Chat, Identity};
use crate::core::domain::*;
use crate::core::error::{Error, Result};

impl Chat {
    /// Pins (`pin`) or unpins message `seq`. Repeating either is a no-op (no second system message).
    pub async fn set_pinned(&self, who: &Identity, r: &RoomRef, seq: Seq, pin: bool) -> Result<()> {
        let (room, _) = self.moderated_room(who, r).await?;
        let changed = if pin {
            match self.store.message(room.id, seq).await? {
                Some(m) if m.kind == MessageKind::Text && !m.deleted => {}
                _ => return Err(Error::MessageNotFound),
            }
            self.store.pin(room.id, seq, who.user.id, self.now()).await?
        } else {
            self.store.unpin(room.id, seq).await?
        };
        if changed {
            let kind = if pin { MessageKind::Pin } else { MessageKind::Unpin };
            self.system(&room, who, kind, None, &seq.to_string()).await?;
        }
        Ok(())
    }

    /// The room's pins, newest first, each with its message as it is now (a purged one is left out).
    pub async fn pins(&self, who: &Identity, r: &RoomRef) -> Result<(RoomId, Vec<Pin>)> {
        let (room, _) = self.visible_room(who, r).await?;
        let mut out = Vec::new();
        for (seq, pinned_by, at) in self.store.pins(room.id).await? {
            if let Some(m) = self.store.message(room.id, seq).await? {
                out.push(Pin { message: self.decorated(m).await?, pinned_by, at });
            }
        }
        Ok((room.id, out))
    }
}
