//! The shared `Store` statements for outgoing webhooks: a link of [`impl_sql_store!`](super::impl_sql_store)'s
//! chain, which appends these methods to the `impl Store` it is building and hands on to the next link.

/// Appends the outgoing webhooks methods to `$acc` (the `impl Store` body so far) and calls the next link.
macro_rules! sql_webhooks {
    ($store:ty; $($acc:tt)*) => {
        $crate::store::shared::convo::sql_convo! { $store;
            $($acc)*

            async fn create_webhook(&self, new: &NewWebhook<'_>) -> Result<Webhook> {
                let row = sqlx::query(
                    "INSERT INTO webhooks (room_id, url, secret, created_by, created_at, delivered_seq) \
                     SELECT $1, $2, $3, $4, $5, last_seq FROM rooms WHERE id = $6 RETURNING id, delivered_seq",
                )
                .bind(new.room.0)
                .bind(new.url.as_str())
                .bind(new.secret)
                .bind(new.created_by.0)
                .bind(new.created_at)
                .bind(new.room.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .ok_or(Error::RoomNotFound)?;
                Ok(new.stored(row.try_get(0).map_err(db_err)?, row.try_get(1).map_err(db_err)?))
            }

            async fn webhooks(&self, room: RoomId) -> Result<Vec<Webhook>> {
                self.webhooks_for(&[room]).await
            }

            async fn webhooks_for(&self, rooms: &[RoomId]) -> Result<Vec<Webhook>> {
                let mut out = Vec::new();
                // One bound parameter per room: well under either driver's limit.
                for chunk in rooms.chunks(500) {
                    let mut q = sqlx::QueryBuilder::<<Self as Dialect>::Db>::new(
                        "SELECT id, room_id, url, secret, created_by, created_at, delivered_seq \
                         FROM webhooks WHERE room_id IN (",
                    );
                    let mut sep = q.separated(", ");
                    for r in chunk {
                        sep.push_bind(r.0);
                    }
                    q.push(") ORDER BY id");
                    for row in q.build().fetch_all(&self.pool).await.map_err(db_err)? {
                        out.push(webhook_from(&row)?);
                    }
                }
                Ok(out)
            }

            async fn webhook(&self, id: i64) -> Result<Option<Webhook>> {
                let row = sqlx::query(
                    "SELECT id, room_id, url, secret, created_by, created_at, delivered_seq \
                     FROM webhooks WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                row.as_ref().map(webhook_from).transpose()
            }

            async fn all_webhooks(&self) -> Result<Vec<Webhook>> {
                let rows = sqlx::query(
                    "SELECT id, room_id, url, secret, created_by, created_at, delivered_seq \
                     FROM webhooks ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(webhook_from).collect()
            }

            async fn advance_webhook(&self, id: i64, from: Seq, to: Seq) -> Result<bool> {
                let res =
                    sqlx::query("UPDATE webhooks SET delivered_seq = $1 WHERE id = $2 AND delivered_seq = $3")
                        .bind(to)
                        .bind(id)
                        .bind(from)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                Ok(res.rows_affected() > 0)
            }

            async fn delete_webhook(&self, room: RoomId, id: i64) -> Result<bool> {
                let res = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND room_id = $2")
                    .bind(id)
                    .bind(room.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(res.rows_affected() > 0)
            }
        }
    };
}

pub(in crate::store) use sql_webhooks;
