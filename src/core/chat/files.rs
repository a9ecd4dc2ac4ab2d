//! Attachments: uploads streamed into the blob store, who may see a file, and the collector that
//! removes what nothing refers to any more.
//!
//! A file is uploaded into a room by a member ([`Files::upload`]): its bytes stream through here into a
//! [`BlobStore`](crate::core::blobs::BlobStore) writer — hashed (SHA-256, the blob's address) and
//! counted on the way, never held whole — and its type is sniffed from its first bytes, never taken from
//! the client. It is then shared by one message (named in its [`SendRequest`](super::SendRequest)'s
//! `files`), in the transaction that stores the message. From then on exactly those who may read that
//! message may read the file (for anyone else a private room's file answers as a room that does not
//! exist); deleting or purging the message deletes the file's row, and [`Files::collect`] later removes
//! bytes no row names.
//!
//! An inline image also gets a thumbnail at upload time ([`Files::thumbnail_of`]): decoded with limits
//! (`core::thumbnail`) on a blocking thread, at most [`THUMBNAIL_WORKERS`] at once, and stored as its
//! own blob. An image that cannot or may not be decoded is kept without one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::{Chat, Identity};
use crate::core::blobs::{BlobStream, BlobWriter, DynBlobStore};
use crate::core::domain::*;
use crate::core::error::{Error, Result};

/// Files one message may share.
pub const MAX_FILES_PER_MESSAGE: usize = 10;

/// Bytes kept from the start of an upload to sniff its type and read image dimensions.
const HEAD: usize = 64 * 1024;

/// Thumbnails decoded at once (each may hold the image's bytes and its decoded pixels).
pub const THUMBNAIL_WORKERS: usize = 2;
/// How long an upload waits for a thumbnail worker, and then for its thumbnail, before going on without.
pub const THUMBNAIL_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct FileLimits {
    /// Largest file accepted (`--max-upload-bytes`).
    pub max_upload_bytes: u64,
    /// Bytes each user may keep uploaded (`--upload-quota-bytes`); `None`: unlimited.
    pub quota_bytes: Option<u64>,
    /// An upload that sends nothing for this long is refused (`upload_stalled`).
    pub idle_timeout: Duration,
    /// Unsent uploads older than this are dropped by the collector.
    pub unsent_ttl: Duration,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_upload_bytes: 25 * 1024 * 1024,
            quota_bytes: None,
            idle_timeout: Duration::from_secs(30),
            unsent_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

pub struct Files {
    chat: Arc<Chat>,
    blobs: DynBlobStore,
    pub limits: FileLimits,
    thumbnailers: Arc<tokio::sync::Semaphore>,
}

/// What one collector pass removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    pub unsent_files: u64,
    pub blobs: u64,
}

impl Files {
    pub fn new(chat: Arc<Chat>, blobs: DynBlobStore, limits: FileLimits) -> Self {
        Files { chat, blobs, limits, thumbnailers: Arc::new(tokio::sync::Semaphore::new(THUMBNAIL_WORKERS)) }
    }

    /// Streams an upload into the blob store and records it, unsent, in room `r`. `declared` is the
    /// length the client announced, if any (refused at once when over the limit).
    pub async fn upload<S, E>(
        &self,
        who: &Identity,
        r: &RoomRef,
        name: &str,
        declared: Option<u64>,
        body: S,
    ) -> Result<FileMeta>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (room, _) = self.chat.member_room(who, r).await?;
        let max = self.limits.max_upload_bytes;
        if declared.is_some_and(|n| n > max) {
            return Err(Error::FileTooLarge { max_bytes: max });
        }
        let allowance = match self.limits.quota_bytes {
            Some(quota) => {
                let used = u64::try_from(self.chat.store().uploaded_bytes(who.user.id).await?).unwrap_or(0);
                let left = quota.saturating_sub(used);
                if left == 0 || declared.is_some_and(|n| n > left) {
                    return Err(Error::QuotaExceeded { quota_bytes: quota });
                }
                Some((quota, left))
            }
            None => None,
        };
        let mut writer = self.blobs.begin().await?;
        match self.stream_into(&mut writer, body, max, allowance).await {
            Ok((hash, size, head)) => {
                writer.finish(&hash).await?;
                let content_type = sniff(&head);
                let (width, height) = dimensions(&content_type, &head);
                let thumbnail = if INLINE_TYPES.contains(&content_type.as_str()) {
                    self.thumbnail_of(&hash, size).await
                } else {
                    None
                };
                let file = FileMeta {
                    id: new_file_id(),
                    room: room.id,
                    uploader: who.user.id,
                    seq: None,
                    blob: hash,
                    name: sanitize_file_name(name),
                    size: size as i64,
                    content_type,
                    width,
                    height,
                    created_at: self.chat.now(),
                    thumbnail,
                };
                self.chat.store().create_file(&file).await?;
                metrics::counter!("parley_upload_bytes_total").increment(size);
                Ok(file)
            }
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        }
    }

    /// Makes and stores the thumbnail of the image stored as `hash`; `None` (logged) when the image
    /// cannot or may not be decoded, or when no worker is free within [`THUMBNAIL_WAIT`].
    pub async fn thumbnail_of(&self, hash: &str, size: u64) -> Option<Thumbnail> {
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(THUMBNAIL_WAIT, self.make_thumbnail(hash, size)).await;
        let result = match outcome {
            Ok(Ok(t)) => Some(t),
            Ok(Err(why)) => {
                tracing::info!(blob = hash, %why, "no thumbnail");
                None
            }
            Err(_) => {
                tracing::warn!(blob = hash, "no thumbnail: timed out");
                None
            }
        };
        let outcome = if result.is_some() { "made" } else { "refused" };
        metrics::histogram!("parley_thumbnail_seconds", "outcome" => outcome).record(started.elapsed().as_secs_f64());
        result
    }

    async fn make_thumbnail(&self, hash: &str, size: u64) -> std::result::Result<Thumbnail, String> {
        let _permit = self.thumbnailers.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        let mut stream =
            self.blobs.read(hash, 0, size).await.map_err(|e| e.to_string())?.ok_or("the blob is missing")?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        }
        // A panic in a decoder ends this blocking task only: it is a refusal like any other.
        let made = tokio::task::spawn_blocking(move || crate::core::thumbnail::make(&bytes))
            .await
            .map_err(|e| format!("the decoder failed: {e}"))?
            .map_err(|e| e.to_string())?;
        let thumb_hash = hex::encode(Sha256::digest(&made.bytes));
        let mut writer = self.blobs.begin().await.map_err(|e| e.to_string())?;
        if let Err(e) = writer.write(&made.bytes).await {
            writer.abort().await;
            return Err(e.to_string());
        }
        writer.finish(&thumb_hash).await.map_err(|e| e.to_string())?;
        Ok(Thumbnail {
            blob: thumb_hash,
            content_type: made.content_type.to_owned(),
            width: i64::from(made.width),
            height: i64::from(made.height),
            size: made.bytes.len() as i64,
        })
    }

    /// The thumbnail's bytes of a file `who` may read (see [`Files::file`]).
    pub async fn read_thumbnail(&self, file: &FileMeta) -> Result<(Thumbnail, BlobStream)> {
        let t = file.thumbnail.clone().ok_or(Error::ThumbnailNotFound)?;
        let stream = self.blobs.read(&t.blob, 0, u64::try_from(t.size).unwrap_or(0)).await?.ok_or_else(|| {
            Error::internal(anyhow::anyhow!("file {} names thumbnail blob {}, which is missing", file.id, t.blob))
        })?;
        Ok((t, stream))
    }

    /// Reads the whole body into `writer`: (SHA-256 hex, size, the first bytes).
    async fn stream_into<S, E>(
        &self,
        writer: &mut Box<dyn BlobWriter>,
        mut body: S,
        max: u64,
        allowance: Option<(u64, u64)>,
    ) -> Result<(String, u64, Vec<u8>)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let idle = self.limits.idle_timeout;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head = Vec::new();
        loop {
            let chunk = match tokio::time::timeout(idle, body.next()).await {
                Err(_) => return Err(Error::UploadStalled { idle }),
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "upload body broke off");
                    return Err(Error::UploadIncomplete);
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            size += chunk.len() as u64;
            if size > max {
                return Err(Error::FileTooLarge { max_bytes: max });
            }
            if let Some((quota, left)) = allowance
                && size > left
            {
                return Err(Error::QuotaExceeded { quota_bytes: quota });
            }
            if head.len() < HEAD {
                let take = (HEAD - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            writer.write(&chunk).await?;
        }
        if size == 0 {
            return Err(Error::EmptyFile);
        }
        Ok((hex::encode(hasher.finalize()), size, head))
    }

    /// File `id`, if `who` may read it: an unsent upload only by its uploader, a shared file by whoever
    /// may read its message's room (a private room's files answer `room_not_found` to outsiders).
    pub async fn file(&self, who: &Identity, id: &str) -> Result<FileMeta> {
        let file = self.chat.store().file(id).await?.ok_or(Error::FileNotFound)?;
        match file.seq {
            None if file.uploader == who.user.id => Ok(file),
            None => Err(Error::FileNotFound),
            Some(_) => {
                self.chat.visible_room(who, &RoomRef::Id(file.room)).await?;
                Ok(file)
            }
        }
    }

    /// Bytes `start..end` of a file `who` may read (see [`Files::file`]).
    pub async fn read(&self, file: &FileMeta, start: u64, end: u64) -> Result<BlobStream> {
        self.blobs.read(&file.blob, start, end).await?.ok_or_else(|| {
            Error::internal(anyhow::anyhow!("file {} names blob {}, which is missing", file.id, file.blob))
        })
    }

    /// One collector pass at time `now` (the node's clock, which stamps file rows and blobs): drops
    /// unsent uploads older than the TTL, then deletes blobs at least `grace` old that no file names
    /// (newer ones may belong to uploads still being recorded; with no grace, every blob stored by now).
    pub async fn collect(&self, now: Millis, grace: Duration) -> Result<Collected> {
        let unsent_files = self.chat.store().drop_unsent_files(now - self.limits.unsent_ttl.as_millis() as i64).await?;
        let mut blobs = 0;
        // `stored_before` is strict: + 1 takes the blobs exactly `grace` old, so a zero grace on a clock
        // that has not moved since the blob was stored still takes it.
        for hash in self.blobs.stored_before(now - grace.as_millis() as i64 + 1).await? {
            if !self.chat.store().blob_in_use(&hash).await? && self.blobs.delete(&hash).await? {
                blobs += 1;
            }
        }
        Ok(Collected { unsent_files, blobs })
    }
}

impl Chat {
    /// The files a send shares (none when `file_ids` is empty; then `r` is kept as it is): each must be an
    /// unsent upload of `who` into the same room, which is then named by its id.
    pub(super) async fn shared_files(
        &self,
        who: &Identity,
        r: RoomRef,
        file_ids: &[String],
    ) -> Result<(RoomRef, Vec<FileMeta>)> {
        if file_ids.is_empty() {
            return Ok((r, Vec::new()));
        }
        if file_ids.len() > MAX_FILES_PER_MESSAGE {
            return Err(Error::TooManyFiles { max: MAX_FILES_PER_MESSAGE });
        }
        let room = self.visible_room(who, &r).await?.0.id;
        let mut files = Vec::with_capacity(file_ids.len());
        for id in file_ids {
            match self.store.file(id).await? {
                Some(f) if f.uploader == who.user.id && f.room == room && f.seq.is_none() => {
                    if !files.iter().any(|x: &FileMeta| x.id == f.id) {
                        files.push(f)
                    }
                }
                _ => return Err(Error::FileNotFound),
            }
        }
        Ok((RoomRef::Id(room), files))
    }
}

/// The content type, from the bytes: a known binary signature, else UTF-8 text, else opaque bytes.
pub fn sniff(head: &[u8]) -> String {
    if let Some(t) = infer::get(head) {
        return t.mime_type().to_owned();
    }
    // The head may end inside a character: valid up to its last 3 bytes is text enough.
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(),
    };
    if text && !head.contains(&0) {
        "text/plain; charset=utf-8".to_owned()
    } else {
        "application/octet-stream".to_owned()
    }
}

/// Width and height of an inline image, read from its header (never decoded here).
fn dimensions(content_type: &str, head: &[u8]) -> (Option<i64>, Option<i64>) {
    if !INLINE_TYPES.contains(&content_type) {
        return (None, None);
    }
    match imagesize::blob_size(head) {
        Ok(s) => (Some(s.width as i64), Some(s.height as i64)),
        Err(_) => (None, None),
    }
}

fn new_file_id() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x08\x08\x02\0\0\0";
        assert_eq!(sniff(png), "image/png");
        assert_eq!(dimensions("image/png", png), (Some(16), Some(8)));
        assert_eq!(
            sniff(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff(b"<html><script>x</script>"), "text/html");
        assert_eq!(sniff(b"\x00\x01\x02binary"), "application/octet-stream");
        assert_eq!(sniff("héllo".as_bytes()), "text/plain; charset=utf-8");
        assert_eq!(sniff(&"é".as_bytes()[..1]), "text/plain; charset=utf-8");
    }

    #[test]
    fn file_names_are_sanitized() {
        for (raw, want) in [
            ("../../etc/passwd", "passwd"),
            ("C:\\Windows\\evil.exe", "evil.exe"),
            ("report\u{202e}fdp.exe", "reportfdp.exe"),
            ("a\nb\rc\0d.txt", "abcd.txt"),
            ("..", "file"),
            ("", "file"),
            (".hidden", "hidden"),
            ("quote\"d.txt", "quoted.txt"),
            ("cat.png", "cat.png"),
        ] {
            assert_eq!(sanitize_file_name(raw), want, "{raw:?}");
        }
        assert!(sanitize_file_name(&"x".repeat(500)).len() <= 200);
    }
}
