//! Where file bytes live: a content-addressed blob store behind one trait, so the core never sees a disk
//! path or a SQL table. Blobs are named by the SHA-256 of their bytes (lower-case hex), which the core
//! computes while the upload streams in; a store only writes what it is handed and renames it at the end.
//!
//! Implementations (adapters) live in `src/blobs/`: the data directory on one node, PostgreSQL for
//! several; `src/blobs/contract.rs` is the suite each passes.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use super::domain::Millis;
use super::error::Result;

/// Bytes read back from a store, in order.
pub type BlobStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// An upload in progress: bytes go in as they arrive; nothing is visible until [`BlobWriter::finish`].
#[async_trait]
pub trait BlobWriter: Send {
    async fn write(&mut self, chunk: &[u8]) -> Result<()>;
    /// Makes the bytes written the blob `hash` (their SHA-256, hex). Storing a blob that already exists
    /// keeps the one stored (same address, same bytes).
    async fn finish(self: Box<Self>, hash: &str) -> Result<()>;
    /// Drops what was written (a refused or broken upload).
    async fn abort(self: Box<Self>);
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    async fn begin(&self) -> Result<Box<dyn BlobWriter>>;
    /// The blob's size, or `None` when there is no such blob.
    async fn size(&self, hash: &str) -> Result<Option<u64>>;
    /// Bytes `start..end` of the blob (`end` past its size is clamped); `None` when there is no such blob.
    async fn read(&self, hash: &str, start: u64, end: u64) -> Result<Option<BlobStream>>;
    /// Removes a blob; false when there was none.
    async fn delete(&self, hash: &str) -> Result<bool>;
    /// Every blob stored before `before` (for the collector, which leaves newer ones to uploads in
    /// flight).
    async fn stored_before(&self, before: Millis) -> Result<Vec<String>>;
}

pub type DynBlobStore = Arc<dyn BlobStore>;

/// Whether `s` is a blob address (64 lower-case hex digits): anything else is refused before it reaches
/// a store, so no name can become a path.
pub fn is_blob_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
