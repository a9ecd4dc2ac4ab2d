//! The shared `Store` statements for rooms, members, invites, bans, read markers: a link of [`impl_sql_store!`](super::impl_sql_store)'s
//! chain, which appends these methods to the `impl Store` it is building and hands on to the next link.

/// Appends the rooms, members, invites, bans, read markers methods to `$acc` (the `impl Store` body so far) and calls the next link.
macro_rules! sql_rooms {
    ($store:ty; $($acc:tt)*) => {
        $crate::store::shared::messages::sql_messages! { $store;
            $($acc)*

            async fn create_room(&self, name: &RoomName, visibility: Visibility, creator: UserId, now: Millis) -> Result<Room> {
                let mut tx = <Self as Dialect>::begin(self).await?;
                let res = sqlx::query(
                    "INSERT INTO rooms (name, name_key, visibility, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(name.as_str())
                .bind(name.key())
                .bind(visibility.as_str())
                .bind(creator.0)
                .bind(now)
                .fetch_one(&mut *tx)
                .await;
                let id: i64 = match res {
                    Ok(row) => row.try_get(0).map_err(db_err)?,
                    // Dropping the transaction rolls it back.
                    Err(e) if is_unique_violation(&e) => return Err(Error::RoomNameTaken),
                    Err(e) => return Err(db_err(e)),
                };
                sqlx::query("INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3)")
                    .bind(id)
                    .bind(creator.0)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                self.room(RoomId(id)).await?.ok_or(Error::RoomNotFound)
            }

            async fn open_direct(&self, a: UserId, b: UserId, now: Millis) -> Result<(Room, bool)> {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let key = format!("@dm:{lo}:{hi}");
                if let Some(r) = self.room_by_key(&key).await? {
                    return Ok((r, false));
                }
                let mut tx = <Self as Dialect>::begin(self).await?;
                let res = sqlx::query(<Self as Dialect>::INSERT_DIRECT)
                    .bind(format!("dm-{lo}-{hi}"))
                    .bind(&key)
                    .bind(a.0)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await;
                let id: i64 = match res {
                    Ok(Some(row)) => row.try_get(0).map_err(db_err)?,
                    Err(e) if !is_unique_violation(&e) => return Err(db_err(e)),
                    // Opened concurrently by the other side: theirs is the one (committed, so visible now).
                    Ok(None) | Err(_) => {
                        drop(tx);
                        return Ok((self.room_by_key(&key).await?.ok_or(Error::RoomNotFound)?, false));
                    }
                };
                for u in [lo, hi] {
                    sqlx::query(
                        "INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'member', $3)",
                    )
                    .bind(id)
                    .bind(u.0)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok((self.room(RoomId(id)).await?.ok_or(Error::RoomNotFound)?, true))
            }

            async fn room(&self, id: RoomId) -> Result<Option<Room>> {
                Ok(self.rooms_where("r.id = $1", Some(id.0)).await?.pop())
            }

            async fn room_by_name(&self, name_key: &str) -> Result<Option<Room>> {
                Ok(self.room_by_key(name_key).await?.filter(|r| r.kind == RoomKind::Group))
            }

            async fn public_rooms(&self) -> Result<Vec<Room>> {
                self.rooms_where("r.visibility = 'public' AND r.kind = 'group'", None).await
            }

            async fn user_rooms(&self, user: UserId) -> Result<Vec<Room>> {
                <Self as Dialect>::read_user_rooms(self, user).await
            }

            async fn room_views(&self, user: UserId) -> Result<Vec<RoomView>> {
                <Self as Dialect>::read_room_views(self, user).await
            }

            async fn rename_room(&self, room: RoomId, name: &RoomName) -> Result<Room> {
                let res = sqlx::query("UPDATE rooms SET name = $1, name_key = $2 WHERE id = $3 AND kind = 'group'")
                    .bind(name.as_str())
                    .bind(name.key())
                    .bind(room.0)
                    .execute(&self.pool)
                    .await;
                match res {
                    Ok(_) => self.room(room).await?.ok_or(Error::RoomNotFound),
                    Err(e) if is_unique_violation(&e) => Err(Error::RoomNameTaken),
                    Err(e) => Err(db_err(e)),
                }
            }

            async fn set_topic(&self, room: RoomId, topic: &Topic) -> Result<Room> {
                sqlx::query("UPDATE rooms SET topic = $1 WHERE id = $2")
                    .bind(topic.as_str())
                    .bind(room.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                self.room(room).await?.ok_or(Error::RoomNotFound)
            }

            async fn members(&self, room: RoomId) -> Result<Vec<Member>> {
                let rows = sqlx::query(
                    "SELECT u.id, u.username, u.display_name, m.role \
                     FROM members m JOIN users u ON u.id = m.user_id \
                     WHERE m.room_id = $1 ORDER BY u.id",
                )
                .bind(room.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(|r| Ok(Member { user: user_from(r)?, role: role_from(r)? })).collect()
            }

            async fn role(&self, room: RoomId, user: UserId) -> Result<Option<Role>> {
                let row = sqlx::query("SELECT role FROM members WHERE room_id = $1 AND user_id = $2")
                    .bind(room.0)
                    .bind(user.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(role_from).transpose()
            }

            async fn add_member(&self, room: RoomId, user: UserId, role: Role, at: Millis) -> Result<bool> {
                // Joining uses up an invitation.
                self.pair_changes("DELETE FROM invites WHERE room_id = $1 AND user_id = $2", room, user).await?;
                // The first to join a group room left without members becomes its owner; the room row
                // is locked so that two first joins at once cannot both see the room empty.
                let mut tx = <Self as Dialect>::begin(self).await?;
                sqlx::query(<Self as Dialect>::LOCK_ROOM).bind(room.0).execute(&mut *tx).await.map_err(db_err)?;
                let res = sqlx::query(
                    "INSERT INTO members (room_id, user_id, role, joined_at) \
                     SELECT $1, $2, CASE WHEN EXISTS (SELECT 1 FROM members WHERE room_id = $3) \
                       OR (SELECT kind FROM rooms WHERE id = $4) <> 'group' THEN $5 ELSE 'owner' END, $6 \
                     WHERE TRUE ON CONFLICT DO NOTHING",
                )
                .bind(room.0)
                .bind(user.0)
                .bind(room.0)
                .bind(room.0)
                .bind(role.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                Ok(res.rows_affected() > 0)
            }

            async fn remove_member(&self, room: RoomId, user: UserId) -> Result<bool> {
                self.pair_changes("DELETE FROM members WHERE room_id = $1 AND user_id = $2", room, user).await
            }

            async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> Result<bool> {
                let res = sqlx::query("UPDATE members SET role = $1 WHERE room_id = $2 AND user_id = $3")
                    .bind(role.as_str())
                    .bind(room.0)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(res.rows_affected() > 0)
            }

            async fn add_invite(&self, room: RoomId, user: UserId, by: UserId, at: Millis) -> Result<bool> {
                let sql = "INSERT INTO invites (room_id, user_id, invited_by, created_at) VALUES ($1, $2, $3, $4) \
                           ON CONFLICT DO NOTHING";
                Self::insert_stamped(&self.pool, sql, room, user.0, (by, at)).await
            }

            async fn is_invited(&self, room: RoomId, user: UserId) -> Result<bool> {
                self.pair_exists("SELECT 1 FROM invites WHERE room_id = $1 AND user_id = $2", room, user).await
            }

            async fn invites_of(&self, user: UserId) -> Result<Vec<Invite>> {
                let rows = sqlx::query(
                    "SELECT i.room_id, i.created_at, u.id, u.username, u.display_name \
                     FROM invites i JOIN users u ON u.id = i.invited_by \
                     WHERE i.user_id = $1 ORDER BY i.created_at, i.room_id",
                )
                .bind(user.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let room_id: i64 = row.try_get("room_id").map_err(db_err)?;
                    let Some(room) = self.room(RoomId(room_id)).await? else { continue };
                    out.push(Invite {
                        room,
                        invited_by: user_from(row)?,
                        at: row.try_get("created_at").map_err(db_err)?,
                    });
                }
                Ok(out)
            }

            async fn remove_invite(&self, room: RoomId, user: UserId) -> Result<bool> {
                self.pair_changes("DELETE FROM invites WHERE room_id = $1 AND user_id = $2", room, user).await
            }

            async fn bans(&self, room: RoomId) -> Result<Vec<Ban>> {
                let rows = sqlx::query(
                    "SELECT u.id, u.username, u.display_name, b.created_at \
                     FROM bans b JOIN users u ON u.id = b.user_id \
                     WHERE b.room_id = $1 ORDER BY b.created_at, u.id",
                )
                .bind(room.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| Ok(Ban { user: user_from(r)?, banned_at: r.try_get("created_at").map_err(db_err)? }))
                    .collect()
            }

            async fn transfer_owner(&self, room: RoomId, from: UserId, to: UserId) -> Result<bool> {
                if from == to {
                    return Ok(false);
                }
                let mut tx = <Self as Dialect>::begin(self).await?;
                let demoted = sqlx::query(
                    "UPDATE members SET role = 'admin' WHERE room_id = $1 AND user_id = $2 AND role = 'owner'",
                )
                .bind(room.0)
                .bind(from.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                let promoted = sqlx::query("UPDATE members SET role = 'owner' WHERE room_id = $1 AND user_id = $2")
                    .bind(room.0)
                    .bind(to.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if demoted.rows_affected() == 0 || promoted.rows_affected() == 0 {
                    return Ok(false); // dropping the transaction rolls it back
                }
                tx.commit().await.map_err(db_err)?;
                Ok(true)
            }

            async fn set_visibility(&self, room: RoomId, visibility: Visibility) -> Result<Room> {
                sqlx::query("UPDATE rooms SET visibility = $1 WHERE id = $2 AND kind = 'group'")
                    .bind(visibility.as_str())
                    .bind(room.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                self.room(room).await?.ok_or(Error::RoomNotFound)
            }

            async fn direct_room(&self, a: UserId, b: UserId) -> Result<Option<Room>> {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                self.room_by_key(&format!("@dm:{lo}:{hi}")).await
            }

            async fn ban(&self, room: RoomId, user: UserId, by: UserId, at: Millis) -> Result<bool> {
                let mut tx = <Self as Dialect>::begin(self).await?;
                for sql in [
                    "DELETE FROM members WHERE room_id = $1 AND user_id = $2",
                    "DELETE FROM invites WHERE room_id = $1 AND user_id = $2",
                ] {
                    sqlx::query(sql).bind(room.0).bind(user.0).execute(&mut *tx).await.map_err(db_err)?;
                }
                let sql = "INSERT INTO bans (room_id, user_id, banned_by, created_at) VALUES ($1, $2, $3, $4) \
                           ON CONFLICT DO NOTHING";
                let banned = Self::insert_stamped(&mut *tx, sql, room, user.0, (by, at)).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(banned)
            }

            async fn unban(&self, room: RoomId, user: UserId) -> Result<bool> {
                self.pair_changes("DELETE FROM bans WHERE room_id = $1 AND user_id = $2", room, user).await
            }

            async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool> {
                self.pair_exists("SELECT 1 FROM bans WHERE room_id = $1 AND user_id = $2", room, user).await
            }

            async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> Result<Seq> {
                let row = sqlx::query(<Self as Dialect>::MARK_READ)
                    .bind(seq)
                    .bind(room.0)
                    .bind(user.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.map(|r| r.try_get(0).map_err(db_err)).transpose()?.ok_or(Error::NotAMember)
            }
        }
    };
}

pub(in crate::store) use sql_rooms;
