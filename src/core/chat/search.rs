//! Search, as every transport offers it: the query language parsed (`core::search`), its room and
//! sender names resolved with the usual access rules, the store asked for the caller's hits (members
//! only, checked in the store's query), and each hit given its snippet and its room.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Chat, Identity};
use crate::core::domain::*;
use crate::core::error::Result;
use crate::core::search::{self, SearchQuery, Snippet};

/// One hit: the message (room, seq, sender, time: enough to open the room there), the room's name,
/// and the snippet with its highlight ranges.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub message: Arc<Message>,
    pub room: Room,
    pub snippet: Snippet,
}

#[derive(Debug, Clone)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl Chat {
    /// Searches what `who` may read now. `q` is the query language of `core::search`; `cursor` the
    /// previous page's `next_cursor`.
    pub async fn search(
        &self,
        who: &Identity,
        q: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<SearchResults> {
        let parsed = search::parse(q)?;
        let offset = search::parse_cursor(cursor)?;
        let limit = search::parse_limit(limit)?;
        let room = match &parsed.room {
            Some(r) => Some(self.visible_room(who, &RoomRef::parse(r)).await?.0.id),
            None => None,
        };
        let sender = match &parsed.sender {
            Some(name) => Some(self.user_named(name).await?.id),
            None => None,
        };
        let query = SearchQuery {
            terms: parsed.terms,
            room,
            sender,
            from: parsed.from,
            before: parsed.before,
            has_link: parsed.has_link,
            has_file: parsed.has_file,
            offset,
            limit,
        };
        let started = std::time::Instant::now();
        let found = self.store.search(who.user.id, &query).await?;
        metrics::histogram!("parley_search_seconds").record(started.elapsed().as_secs_f64());
        let mut rooms: HashMap<RoomId, Room> = HashMap::new();
        let mut hits = Vec::with_capacity(found.messages.len());
        for message in found.messages {
            let room = match rooms.get(&message.room) {
                Some(r) => r.clone(),
                None => {
                    let Some(r) = self.store.room(message.room).await? else { continue };
                    rooms.insert(r.id, r.clone());
                    r
                }
            };
            let snippet = search::snippet(&message.body, &query.terms);
            hits.push(SearchHit { message, room, snippet });
        }
        let next_cursor = found.has_more.then(|| search::cursor_at(offset + limit));
        Ok(SearchResults { hits, next_cursor })
    }
}
