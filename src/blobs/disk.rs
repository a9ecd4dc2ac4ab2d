//! Blobs as files under a directory (by default `<data dir>/blobs`): `ab/cdef…` by hash, written to
//! `tmp/` first and renamed into place once complete and synced, so a reader never sees half a blob. A
//! blob's modification time is when it was stored by the store's clock (the node's `Clock`), which is
//! what [`BlobStore::stored_before`] compares.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::{file_time, io_err, random_name};
use crate::core::blobs::{BlobStore, BlobStream, BlobWriter, is_blob_hash};
use crate::core::domain::Millis;
use crate::core::error::{Error, Result};
use crate::core::ports::clock::{DynClock, SystemClock};

pub struct DiskBlobs {
    root: PathBuf,
    clock: DynClock,
}

impl DiskBlobs {
    pub fn open(root: &Path) -> anyhow::Result<DiskBlobs> {
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(DiskBlobs { root: root.to_owned(), clock: Arc::new(SystemClock) })
    }

    /// The same store stamping blobs by `clock` (the node's), so the collector's grace is measured on it.
    pub fn with_clock(mut self, clock: DynClock) -> Self {
        self.clock = clock;
        self
    }

    fn path(&self, hash: &str) -> Result<PathBuf> {
        blob_path(&self.root, hash)
    }
}

fn blob_path(root: &Path, hash: &str) -> Result<PathBuf> {
    if !is_blob_hash(hash) {
        return Err(Error::internal(anyhow::anyhow!("not a blob address: {hash:?}")));
    }
    Ok(root.join(&hash[..2]).join(&hash[2..]))
}

/// Sets the blob's modification time to `at` (the store's clock): the collector's grace is measured on it.
async fn stamp(blob: &Path, at: Millis) -> std::io::Result<()> {
    let (blob, at) = (blob.to_owned(), file_time(at));
    tokio::task::spawn_blocking(move || std::fs::File::options().append(true).open(&blob)?.set_modified(at))
        .await
        .map_err(std::io::Error::other)?
}

struct DiskWriter {
    file: tokio::fs::File,
    tmp: PathBuf,
    root: PathBuf,
    clock: DynClock,
}

#[async_trait]
impl BlobWriter for DiskWriter {
    async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.file.write_all(chunk).await.map_err(|e| io_err(e, "writing a blob"))
    }

    async fn finish(mut self: Box<Self>, hash: &str) -> Result<()> {
        let target = blob_path(&self.root, hash)?;
        let done = async {
            self.file.flush().await?;
            self.file.sync_all().await?;
            let now = self.clock.now_millis();
            if tokio::fs::try_exists(&target).await? {
                // Stored already: keep it, and make it new again so the collector leaves it to this upload.
                stamp(&target, now).await?;
                tokio::fs::remove_file(&self.tmp).await
            } else {
                tokio::fs::create_dir_all(target.parent().expect("blob paths have a parent")).await?;
                tokio::fs::rename(&self.tmp, &target).await?;
                stamp(&target, now).await
            }
        }
        .await;
        if done.is_err() {
            let _ = tokio::fs::remove_file(&self.tmp).await;
        }
        done.map_err(|e| io_err(e, "storing a blob"))
    }

    async fn abort(self: Box<Self>) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

#[async_trait]
impl BlobStore for DiskBlobs {
    async fn begin(&self) -> Result<Box<dyn BlobWriter>> {
        let tmp = self.root.join("tmp").join(random_name());
        let file = tokio::fs::File::create(&tmp).await.map_err(|e| io_err(e, "creating a blob"))?;
        Ok(Box::new(DiskWriter { file, tmp, root: self.root.clone(), clock: self.clock.clone() }))
    }

    async fn size(&self, hash: &str) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.path(hash)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e, "reading a blob")),
        }
    }

    async fn read(&self, hash: &str, start: u64, end: u64) -> Result<Option<BlobStream>> {
        let mut file = match tokio::fs::File::open(self.path(hash)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e, "reading a blob")),
        };
        file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| io_err(e, "reading a blob"))?;
        let reader = file.take(end.saturating_sub(start));
        Ok(Some(Box::pin(ReaderStream::with_capacity(reader, 64 * 1024))))
    }

    async fn delete(&self, hash: &str) -> Result<bool> {
        match tokio::fs::remove_file(self.path(hash)?).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(e, "deleting a blob")),
        }
    }

    async fn stored_before(&self, before: Millis) -> Result<Vec<String>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
            let mut out = Vec::new();
            for dir in std::fs::read_dir(&root)? {
                let dir = dir?;
                let prefix = dir.file_name().to_string_lossy().into_owned();
                if prefix.len() != 2 || !dir.file_type()?.is_dir() {
                    continue;
                }
                for f in std::fs::read_dir(dir.path())? {
                    let f = f?;
                    let hash = format!("{prefix}{}", f.file_name().to_string_lossy());
                    let modified = f.metadata()?.modified()?;
                    let ms = modified.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
                    if is_blob_hash(&hash) && ms < before {
                        out.push(hash);
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::internal(anyhow::Error::new(e)))?
        .map_err(|e| io_err(e, "listing blobs"))
    }
}
