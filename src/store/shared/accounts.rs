//! The shared `Store` statements for users, their credentials and sessions: a link of [`impl_sql_store!`](super::impl_sql_store)'s
//! chain, which appends these methods to the `impl Store` it is building and hands on to the next link.

/// Appends the users, their credentials and sessions methods to `$acc` (the `impl Store` body so far) and calls the next link.
macro_rules! sql_accounts {
    ($store:ty; $($acc:tt)*) => {
        $crate::store::shared::rooms::sql_rooms! { $store;
            $($acc)*

            async fn create_user(
                &self,
                username: &Username,
                display_name: &DisplayName,
                password_hash: &str,
                at: Millis,
            ) -> Result<User> {
                let res = sqlx::query(
                    "INSERT INTO users (username, username_key, display_name, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(username.as_str())
                .bind(username.key())
                .bind(display_name.as_str())
                .bind(password_hash)
                .bind(at)
                .fetch_one(&self.pool)
                .await;
                match res {
                    Ok(row) => Ok(User {
                        id: UserId(row.try_get(0).map_err(db_err)?),
                        username: username.as_str().to_owned(),
                        display_name: display_name.as_str().to_owned(),
                    }),
                    Err(e) if is_unique_violation(&e) => Err(Error::UsernameTaken),
                    Err(e) => Err(db_err(e)),
                }
            }

            async fn credentials(&self, username_key: &str) -> Result<Option<Credentials>> {
                let row = sqlx::query(
                    "SELECT id, username, display_name, password_hash FROM users WHERE username_key = $1",
                )
                .bind(username_key)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                row.map(|r| {
                    Ok(Credentials {
                        user: user_from(&r)?,
                        password_hash: r.try_get("password_hash").map_err(db_err)?,
                    })
                })
                .transpose()
            }

            async fn user(&self, id: UserId) -> Result<Option<User>> {
                <Self as Dialect>::read_user(self, id).await
            }

            async fn user_by_name(&self, username_key: &str) -> Result<Option<User>> {
                let row = sqlx::query("SELECT id, username, display_name FROM users WHERE username_key = $1")
                    .bind(username_key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(user_from).transpose()
            }

            async fn set_display_name(&self, id: UserId, name: &DisplayName) -> Result<User> {
                let row = sqlx::query(
                    "UPDATE users SET display_name = $1 WHERE id = $2 RETURNING id, username, display_name",
                )
                .bind(name.as_str())
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                row.as_ref().map(user_from).transpose()?.ok_or(Error::UserNotFound)
            }

            async fn create_session(&self, s: &Session, at: Millis) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, created_at, expires_at, revoked) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&s.id.0)
                .bind(s.user.0)
                .bind(at)
                .bind(s.expires_at)
                .bind(s.revoked)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn session(&self, id: &SessionId) -> Result<Option<Session>> {
                <Self as Dialect>::read_session(self, id).await
            }

            async fn session_user(&self, id: &SessionId) -> Result<Option<(Session, User)>> {
                <Self as Dialect>::read_session_user(self, id).await
            }

            async fn revoke_session(&self, id: &SessionId) -> Result<bool> {
                let res = sqlx::query("UPDATE sessions SET revoked = TRUE WHERE id = $1 AND NOT revoked")
                    .bind(&id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(res.rows_affected() > 0)
            }
        }
    };
}

pub(in crate::store) use sql_accounts;
