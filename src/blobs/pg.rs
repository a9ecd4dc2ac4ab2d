//! Blobs in PostgreSQL, which every node of a cluster reaches: `blobs` (one row per blob) and
//! `blob_chunks` (its bytes in 256 KiB `bytea` rows). An upload writes its chunks under a temporary key
//! and renames them to the hash in the transaction that adds the `blobs` row, so a reader never sees
//! half a blob. Reads fetch one chunk at a time, so serving a large file holds one chunk in memory.
//! Chunks of an upload cut short by a crash stay under their temporary key until
//! [`PgBlobs::stored_before`] lists them (then the collector deletes them).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::random_name;
use crate::core::blobs::{BlobStore, BlobStream, BlobWriter, is_blob_hash};
use crate::core::domain::Millis;
use crate::core::error::{Error, Result};
use crate::core::ports::clock::{DynClock, SystemClock};

const CHUNK: usize = 256 * 1024;

fn db_err(e: sqlx::Error) -> Error {
    Error::Internal(anyhow::Error::new(e).context("blob store (postgres)"))
}

#[derive(Clone)]
pub struct PgBlobs {
    pool: PgPool,
    /// Stamps blobs and chunks (`created_at`), which [`BlobStore::stored_before`] compares.
    clock: DynClock,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY, size BIGINT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS blob_chunks (hash TEXT NOT NULL, n INTEGER NOT NULL, created_at BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (hash, n));";

impl PgBlobs {
    pub async fn connect(url: &str) -> anyhow::Result<PgBlobs> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects (e.g. with a `search_path`) and creates the two tables when missing.
    pub async fn connect_with(options: PgConnectOptions) -> anyhow::Result<PgBlobs> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let mut conn = pool.acquire().await?;
        // Two nodes starting together may race on CREATE TABLE IF NOT EXISTS: serialise on a lock.
        sqlx::query("SELECT pg_advisory_lock(7461341)").execute(&mut *conn).await?;
        let made = sqlx::raw_sql(SCHEMA).execute(&mut *conn).await;
        sqlx::query("SELECT pg_advisory_unlock(7461341)").execute(&mut *conn).await?;
        made?;
        drop(conn);
        Ok(PgBlobs { pool, clock: Arc::new(SystemClock) })
    }

    /// The same store stamping blobs by `clock` (the node's), so the collector's grace is measured on it.
    pub fn with_clock(mut self, clock: DynClock) -> Self {
        self.clock = clock;
        self
    }
}

struct PgWriter {
    pool: PgPool,
    clock: DynClock,
    key: String,
    buf: Vec<u8>,
    n: i32,
    size: i64,
}

impl PgWriter {
    async fn flush_chunk(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        sqlx::query("INSERT INTO blob_chunks (hash, n, created_at, data) VALUES ($1, $2, $3, $4)")
            .bind(&self.key)
            .bind(self.n)
            .bind(self.clock.now_millis())
            .bind(&self.buf)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        self.n += 1;
        self.buf.clear();
        Ok(())
    }
}

#[async_trait]
impl BlobWriter for PgWriter {
    async fn write(&mut self, mut chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as i64;
        while !chunk.is_empty() {
            let take = (CHUNK - self.buf.len()).min(chunk.len());
            self.buf.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.buf.len() == CHUNK {
                self.flush_chunk().await?;
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>, hash: &str) -> Result<()> {
        if !is_blob_hash(hash) {
            return Err(Error::internal(anyhow::anyhow!("not a blob address: {hash:?}")));
        }
        let done = async {
            self.flush_chunk().await?;
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            let inserted = sqlx::query(
                "INSERT INTO blobs (hash, size, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (hash) DO UPDATE SET created_at = EXCLUDED.created_at RETURNING (xmax = 0) AS fresh",
            )
            .bind(hash)
            .bind(self.size)
            .bind(self.clock.now_millis())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?
            .try_get::<bool, _>("fresh")
            .map_err(db_err)?;
            if inserted {
                sqlx::query("UPDATE blob_chunks SET hash = $1 WHERE hash = $2")
                    .bind(hash)
                    .bind(&self.key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            } else {
                sqlx::query("DELETE FROM blob_chunks WHERE hash = $1")
                    .bind(&self.key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)
        }
        .await;
        if done.is_err() {
            let (pool, clock, key) = (self.pool.clone(), self.clock.clone(), self.key.clone());
            Box::new(PgWriter { pool, clock, key, buf: Vec::new(), n: 0, size: 0 }).abort().await;
        }
        done
    }

    async fn abort(self: Box<Self>) {
        if let Err(e) = sqlx::query("DELETE FROM blob_chunks WHERE hash = $1").bind(&self.key).execute(&self.pool).await
        {
            tracing::warn!(error = %e, "dropping an aborted upload's chunks failed; the collector will");
        }
    }
}

#[async_trait]
impl BlobStore for PgBlobs {
    async fn begin(&self) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(PgWriter {
            pool: self.pool.clone(),
            clock: self.clock.clone(),
            key: format!("tmp-{}", random_name()),
            buf: Vec::with_capacity(CHUNK),
            n: 0,
            size: 0,
        }))
    }

    async fn size(&self, hash: &str) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT size FROM blobs WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get::<i64, _>(0).map(|s| s as u64).map_err(db_err)).transpose()
    }

    async fn read(&self, hash: &str, start: u64, end: u64) -> Result<Option<BlobStream>> {
        let Some(size) = self.size(hash).await? else { return Ok(None) };
        let end = end.min(size);
        let pool = self.pool.clone();
        let hash = hash.to_owned();
        let chunk = CHUNK as u64;
        let first = (start / chunk) as i32;
        // One chunk per step: (next chunk number, next byte offset).
        let stream = futures_util::stream::try_unfold((first, start), move |(n, pos)| {
            let pool = pool.clone();
            let hash = hash.clone();
            async move {
                if pos >= end {
                    return Ok(None);
                }
                let row = sqlx::query("SELECT data FROM blob_chunks WHERE hash = $1 AND n = $2")
                    .bind(&hash)
                    .bind(n)
                    .fetch_optional(&pool)
                    .await
                    .map_err(std::io::Error::other)?
                    .ok_or_else(|| std::io::Error::other(format!("blob {hash} lacks chunk {n}")))?;
                let data: Vec<u8> = row.try_get(0).map_err(std::io::Error::other)?;
                let base = n as u64 * chunk;
                let from = (pos - base) as usize;
                let to = ((end - base) as usize).min(data.len());
                if from >= to {
                    return Ok(None);
                }
                let bytes = Bytes::from(data).slice(from..to);
                Ok(Some((bytes, (n + 1, base + to as u64))))
            }
        });
        Ok(Some(Box::pin(stream)))
    }

    async fn delete(&self, hash: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let gone =
            sqlx::query("DELETE FROM blobs WHERE hash = $1").bind(hash).execute(&mut *tx).await.map_err(db_err)?;
        let chunks = sqlx::query("DELETE FROM blob_chunks WHERE hash = $1")
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(gone.rows_affected() > 0 || chunks.rows_affected() > 0)
    }

    async fn stored_before(&self, before: Millis) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT hash FROM blobs WHERE created_at < $1 \
             UNION SELECT DISTINCT hash FROM blob_chunks WHERE hash LIKE 'tmp-%' AND created_at < $1",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(db_err)).collect()
    }
}
