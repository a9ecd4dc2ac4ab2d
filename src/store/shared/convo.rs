//! The shared `Store` statements for threads, reactions, pins and notification levels: a link of [`impl_sql_store!`](super::impl_sql_store)'s
//! chain, which appends these methods to the `impl Store` it is building and hands on to the next link.

/// Appends the threads, reactions, pins and notification levels methods to `$acc` (the `impl Store` body so far) and calls the next link.
macro_rules! sql_convo {
    ($store:ty; $($acc:tt)*) => {
        $crate::store::shared::sql_store_emit! { $store;
            $($acc)*

            async fn thread(&self, room: RoomId, root: Seq, query: HistoryQuery) -> Result<HistoryPage> {
                self.page(room, Some(root), query).await
            }

            async fn thread_stats(&self, room: RoomId, roots: &[Seq]) -> Result<Vec<(Seq, i64, Millis)>> {
                let (Some(lo), Some(hi)) = (roots.iter().min(), roots.iter().max()) else { return Ok(Vec::new()) };
                // One range read (pages are ranges), filtered to the roots asked for.
                let rows = sqlx::query(
                    "SELECT thread, COUNT(*) AS n, MAX(created_at) AS last_ts FROM messages \
                     WHERE room_id = $1 AND thread >= $2 AND thread <= $3 AND NOT deleted GROUP BY thread",
                )
                .bind(room.0)
                .bind(*lo)
                .bind(*hi)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut out = Vec::new();
                for r in &rows {
                    let root: i64 = r.try_get("thread").map_err(db_err)?;
                    if roots.contains(&root) {
                        out.push((root, r.try_get("n").map_err(db_err)?, r.try_get("last_ts").map_err(db_err)?));
                    }
                }
                Ok(out)
            }

            async fn followed_threads(&self, user: UserId) -> Result<Vec<ThreadSummary>> {
                let rows = sqlx::query(
                    "SELECT r.room_id, r.thread, \
                       SUM(CASE WHEN NOT r.deleted THEN 1 ELSE 0 END) AS n, \
                       MAX(CASE WHEN NOT r.deleted THEN r.created_at END) AS last_ts, \
                       SUM(CASE WHEN NOT r.deleted AND r.sender_id <> $1 AND r.seq > COALESCE(tr.seq, 0) \
                           THEN 1 ELSE 0 END) AS unread \
                     FROM messages r \
                     JOIN members mb ON mb.room_id = r.room_id AND mb.user_id = $2 \
                     LEFT JOIN thread_reads tr ON tr.user_id = $3 AND tr.room_id = r.room_id AND tr.root = r.thread \
                     WHERE r.thread IS NOT NULL AND EXISTS ( \
                       SELECT 1 FROM messages x WHERE x.room_id = r.room_id \
                         AND (x.seq = r.thread OR x.thread = r.thread) \
                         AND (x.sender_id = $4 OR EXISTS (SELECT 1 FROM mentions mm \
                              WHERE mm.user_id = $5 AND mm.room_id = x.room_id AND mm.seq = x.seq))) \
                     GROUP BY r.room_id, r.thread \
                     ORDER BY last_ts DESC",
                )
                .bind(user.0)
                .bind(user.0)
                .bind(user.0)
                .bind(user.0)
                .bind(user.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let n: i64 = r.try_get("n").map_err(db_err)?;
                    if n == 0 {
                        continue;
                    }
                    out.push(ThreadSummary {
                        room: RoomId(r.try_get("room_id").map_err(db_err)?),
                        root: r.try_get("thread").map_err(db_err)?,
                        reply_count: n,
                        last_reply_ts: r.try_get("last_ts").map_err(db_err)?,
                        unread: r.try_get("unread").map_err(db_err)?,
                    });
                }
                Ok(out)
            }

            async fn mark_thread_read(&self, room: RoomId, root: Seq, user: UserId, seq: Seq) -> Result<Seq> {
                let row = sqlx::query(
                    "INSERT INTO thread_reads (room_id, root, user_id, seq) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id, room_id, root) DO UPDATE SET seq = \
                       CASE WHEN excluded.seq > thread_reads.seq THEN excluded.seq ELSE thread_reads.seq END \
                     RETURNING seq",
                )
                .bind(room.0)
                .bind(root)
                .bind(user.0)
                .bind(seq)
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
                row.try_get(0).map_err(db_err)
            }

            async fn add_reaction(&self, room: RoomId, seq: Seq, user: UserId, emoji: &Emoji, at: Millis) -> Result<bool> {
                let mut tx = <Self as Dialect>::begin(self).await?;
                sqlx::query(<Self as Dialect>::LOCK_MESSAGE)
                    .bind(room.0)
                    .bind(seq)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .ok_or(Error::MessageNotFound)?;
                let row = sqlx::query(
                    "SELECT COUNT(DISTINCT emoji) AS n, \
                       SUM(CASE WHEN emoji = $1 THEN 1 ELSE 0 END) AS same, \
                       SUM(CASE WHEN emoji = $2 AND user_id = $3 THEN 1 ELSE 0 END) AS mine \
                     FROM reactions WHERE room_id = $4 AND seq = $5",
                )
                .bind(emoji.as_str())
                .bind(emoji.as_str())
                .bind(user.0)
                .bind(room.0)
                .bind(seq)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                let distinct: i64 = row.try_get("n").map_err(db_err)?;
                let same: Option<i64> = row.try_get("same").map_err(db_err)?;
                let mine: Option<i64> = row.try_get("mine").map_err(db_err)?;
                if mine.unwrap_or(0) > 0 {
                    return Ok(false);
                }
                if same.unwrap_or(0) == 0 && distinct >= Emoji::MAX_PER_MESSAGE as i64 {
                    return Err(Error::TooManyReactions);
                }
                let res = sqlx::query(
                    "INSERT INTO reactions (room_id, seq, emoji, user_id, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(room.0)
                .bind(seq)
                .bind(emoji.as_str())
                .bind(user.0)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                Self::reactions_touched(&mut tx, room, seq, at).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(res.rows_affected() > 0)
            }

            async fn remove_reaction(&self, room: RoomId, seq: Seq, user: UserId, emoji: &Emoji, at: Millis) -> Result<bool> {
                let mut tx = <Self as Dialect>::begin(self).await?;
                let res = sqlx::query(
                    "DELETE FROM reactions WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4",
                )
                .bind(room.0)
                .bind(seq)
                .bind(emoji.as_str())
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                if res.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::reactions_touched(&mut tx, room, seq, at).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(true)
            }

            async fn reactions_changed(
                &self,
                room: RoomId,
                through: Seq,
                since: Millis,
                limit: u32,
            ) -> Result<Vec<(Seq, Vec<Reaction>)>> {
                let rows = sqlx::query(
                    "SELECT seq FROM messages WHERE room_id = $1 AND reactions_at > $2 AND seq <= $3 \
                     ORDER BY seq DESC LIMIT $4",
                )
                .bind(room.0)
                .bind(since)
                .bind(through)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut seqs = rows.iter().map(|r| r.try_get::<i64, _>(0).map_err(db_err)).collect::<Result<Vec<_>>>()?;
                seqs.reverse();
                let mut current: std::collections::HashMap<Seq, Vec<Reaction>> =
                    self.reactions(room, &seqs).await?.into_iter().collect();
                Ok(seqs.into_iter().map(|s| (s, current.remove(&s).unwrap_or_default())).collect())
            }

            async fn reactions(&self, room: RoomId, seqs: &[Seq]) -> Result<Vec<(Seq, Vec<Reaction>)>> {
                let (Some(lo), Some(hi)) = (seqs.iter().min(), seqs.iter().max()) else { return Ok(Vec::new()) };
                let rows = sqlx::query(
                    "SELECT seq, emoji, user_id FROM reactions WHERE room_id = $1 AND seq >= $2 AND seq <= $3 \
                     ORDER BY seq, id",
                )
                .bind(room.0)
                .bind(*lo)
                .bind(*hi)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut out: Vec<(Seq, Vec<Reaction>)> = Vec::new();
                for r in &rows {
                    let seq: i64 = r.try_get("seq").map_err(db_err)?;
                    if !seqs.contains(&seq) {
                        continue;
                    }
                    let emoji: String = r.try_get("emoji").map_err(db_err)?;
                    let user = UserId(r.try_get("user_id").map_err(db_err)?);
                    if out.last().is_none_or(|(s, _)| *s != seq) {
                        out.push((seq, Vec::new()));
                    }
                    let list = &mut out.last_mut().expect("pushed").1;
                    match list.iter_mut().find(|x| x.emoji == emoji) {
                        Some(x) => x.users.push(user),
                        None => list.push(Reaction { emoji, users: vec![user] }),
                    }
                }
                Ok(out)
            }

            async fn pin(&self, room: RoomId, seq: Seq, by: UserId, at: Millis) -> Result<bool> {
                let sql = "INSERT INTO pins (room_id, seq, pinned_by, pinned_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
                Self::insert_stamped(&self.pool, sql, room, seq, (by, at)).await
            }

            async fn unpin(&self, room: RoomId, seq: Seq) -> Result<bool> {
                let res = sqlx::query("DELETE FROM pins WHERE room_id = $1 AND seq = $2")
                    .bind(room.0)
                    .bind(seq)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(res.rows_affected() > 0)
            }

            async fn pins(&self, room: RoomId) -> Result<Vec<(Seq, User, Millis)>> {
                let rows = sqlx::query(
                    "SELECT p.seq, p.pinned_at, u.id, u.username, u.display_name FROM pins p \
                     JOIN users u ON u.id = p.pinned_by WHERE p.room_id = $1 ORDER BY p.pinned_at DESC, p.seq DESC",
                )
                .bind(room.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| {
                        Ok((r.try_get("seq").map_err(db_err)?, user_from(r)?, r.try_get("pinned_at").map_err(db_err)?))
                    })
                    .collect()
            }

            async fn set_notify(
                &self,
                room: RoomId,
                user: UserId,
                level: Option<NotifyLevel>,
                muted: Option<bool>,
            ) -> Result<Option<(NotifyLevel, bool)>> {
                let row = sqlx::query(
                    "UPDATE members SET notify = COALESCE($1, notify), muted = COALESCE($2, muted) \
                     WHERE room_id = $3 AND user_id = $4 RETURNING notify, muted",
                )
                .bind(level.map(NotifyLevel::as_str))
                .bind(muted)
                .bind(room.0)
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                let Some(row) = row else { return Ok(None) };
                let level: String = row.try_get("notify").map_err(db_err)?;
                Ok(Some((NotifyLevel::parse(&level).unwrap_or_default(), row.try_get("muted").map_err(db_err)?)))
            }
        }
    };
}

pub(in crate::store) use sql_convo;
