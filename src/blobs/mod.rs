//! Blob store adapters behind [`crate::core::blobs::BlobStore`]: [`disk::DiskBlobs`] (files under the
//! data directory, one node) and [`pg::PgBlobs`] (a chunked `bytea` table every node reads). The
//! [`contract`] suite runs against each.

#[cfg(test)]
mod contract;
pub mod disk;
pub mod pg;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::core::domain::Millis;
use crate::core::error::Error;

fn io_err(e: std::io::Error, what: &'static str) -> Error {
    Error::Internal(anyhow::Error::new(e).context(what))
}

/// `ms` since the Unix epoch as a file time (times before the epoch are the epoch).
fn file_time(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn random_name() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}
