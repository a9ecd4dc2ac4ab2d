//! The shared `Store` statements for messages (append, history, edits, deletion), search, retention and files: a link of [`impl_sql_store!`](super::impl_sql_store)'s
//! chain, which appends these methods to the `impl Store` it is building and hands on to the next link.

/// Appends the messages (append, history, edits, deletion), search, retention and files methods to `$acc` (the `impl Store` body so far) and calls the next link.
macro_rules! sql_messages {
    ($store:ty; $($acc:tt)*) => {
        $crate::store::shared::webhooks::sql_webhooks! { $store;
            $($acc)*

            async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
                <Self as Dialect>::append(self, batch).await
            }

            async fn history(&self, room: RoomId, query: HistoryQuery) -> Result<HistoryPage> {
                self.page(room, None, query).await
            }

            async fn message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
                self.message_by_seq(room, seq).await
            }

            async fn edit_message(
                &self,
                room: RoomId,
                seq: Seq,
                body: &str,
                mentions: &[UserId],
                at: Millis,
            ) -> Result<Option<Arc<Message>>> {
                let mut tx = <Self as Dialect>::begin(self).await?;
                let res = sqlx::query(
                    "UPDATE messages SET body = $1, mentions = $2, edited_at = $3 \
                     WHERE room_id = $4 AND seq = $5 AND kind = 'text' AND NOT deleted",
                )
                .bind(body)
                .bind(mentions_to_text(mentions))
                .bind(at)
                .bind(room.0)
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                if res.rows_affected() == 0 {
                    return Ok(None); // dropping the transaction rolls it back
                }
                sqlx::query("DELETE FROM mentions WHERE room_id = $1 AND seq = $2")
                    .bind(room.0)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                for u in mentions {
                    sqlx::query("INSERT INTO mentions (room_id, seq, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                        .bind(room.0)
                        .bind(seq)
                        .bind(u.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)?;
                self.message_by_seq(room, seq).await
            }

            async fn delete_message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>> {
                let mut tx = <Self as Dialect>::begin(self).await?;
                // The tombstone, then what the text and its files left behind; the first says whether
                // there was such a message.
                let mut changed = Vec::with_capacity(3);
                for sql in [
                    "UPDATE messages SET body = '', mentions = '', deleted = TRUE WHERE room_id = $1 AND seq = $2",
                    "DELETE FROM mentions WHERE room_id = $1 AND seq = $2",
                    "DELETE FROM files WHERE room_id = $1 AND seq = $2",
                ] {
                    let res = sqlx::query(sql).bind(room.0).bind(seq).execute(&mut *tx).await.map_err(db_err)?;
                    changed.push(res.rows_affected());
                }
                tx.commit().await.map_err(db_err)?;
                if changed[0] == 0 {
                    return Ok(None);
                }
                self.message_by_seq(room, seq).await
            }

            async fn search(&self, user: UserId, query: &$crate::core::search::SearchQuery) -> Result<$crate::core::search::SearchHits> {
                <Self as Dialect>::search(self, user, query).await
            }

            async fn set_retention(&self, room: RoomId, secs: Option<i64>) -> Result<Room> {
                let res = sqlx::query("UPDATE rooms SET retention_secs = $1 WHERE id = $2")
                    .bind(secs)
                    .bind(room.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if res.rows_affected() == 0 {
                    return Err(Error::RoomNotFound);
                }
                self.room(room).await?.ok_or(Error::RoomNotFound)
            }

            async fn retention_rooms(&self) -> Result<Vec<(RoomId, i64)>> {
                let rows = sqlx::query(
                    "SELECT id, retention_secs FROM rooms WHERE retention_secs IS NOT NULL ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| Ok((RoomId(r.try_get(0).map_err(db_err)?), r.try_get(1).map_err(db_err)?)))
                    .collect()
            }

            async fn purge_before(&self, room: RoomId, cutoff: Millis) -> Result<u64> {
                let mut tx = <Self as Dialect>::begin(self).await?;
                // Mentions, files, reactions and pins go with their messages.
                for table in [
                    "DELETE FROM mentions WHERE room_id = $1 AND seq IN \
                     (SELECT seq FROM messages m WHERE m.room_id = $2 AND m.created_at < $3)",
                    "DELETE FROM files WHERE room_id = $1 AND seq IN \
                     (SELECT seq FROM messages m WHERE m.room_id = $2 AND m.created_at < $3)",
                    "DELETE FROM reactions WHERE room_id = $1 AND seq IN \
                     (SELECT seq FROM messages m WHERE m.room_id = $2 AND m.created_at < $3)",
                    "DELETE FROM pins WHERE room_id = $1 AND seq IN \
                     (SELECT seq FROM messages m WHERE m.room_id = $2 AND m.created_at < $3)",
                ] {
                    sqlx::query(table)
                        .bind(room.0)
                        .bind(room.0)
                        .bind(cutoff)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                let res = sqlx::query("DELETE FROM messages WHERE room_id = $1 AND created_at < $2")
                    .bind(room.0)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                Ok(res.rows_affected())
            }

            async fn create_file(&self, f: &FileMeta) -> Result<()> {
                sqlx::query(
                    "INSERT INTO files (id, room_id, uploader_id, seq, blob, name, size, content_type, width, height, created_at, \
                     thumb_blob, thumb_type, thumb_width, thumb_height, thumb_size) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                )
                .bind(&f.id)
                .bind(f.room.0)
                .bind(f.uploader.0)
                .bind(f.seq)
                .bind(&f.blob)
                .bind(&f.name)
                .bind(f.size)
                .bind(&f.content_type)
                .bind(f.width)
                .bind(f.height)
                .bind(f.created_at)
                .bind(f.thumbnail.as_ref().map(|t| t.blob.as_str()))
                .bind(f.thumbnail.as_ref().map(|t| t.content_type.as_str()))
                .bind(f.thumbnail.as_ref().map(|t| t.width))
                .bind(f.thumbnail.as_ref().map(|t| t.height))
                .bind(f.thumbnail.as_ref().map(|t| t.size))
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn file(&self, id: &str) -> Result<Option<FileMeta>> {
                let sql = sqlx::AssertSqlSafe(format!("SELECT {FILE_COLS} FROM files WHERE id = $1"));
                let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
                row.as_ref().map(file_from).transpose()
            }

            async fn uploaded_bytes(&self, user: UserId) -> Result<i64> {
                let row = sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE uploader_id = $1")
                    .bind(user.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.try_get(0).map_err(db_err)
            }

            async fn blob_in_use(&self, blob: &str) -> Result<bool> {
                let row = sqlx::query("SELECT 1 FROM files WHERE blob = $1 OR thumb_blob = $1 LIMIT 1")
                    .bind(blob)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(row.is_some())
            }

            async fn drop_unsent_files(&self, before: Millis) -> Result<u64> {
                let res = sqlx::query("DELETE FROM files WHERE seq IS NULL AND created_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(res.rows_affected())
            }
        }
    };
}

pub(in crate::store) use sql_messages;
