//! Blob store adapters behind [`crate::core::blobs::BlobStore`]: [`disk::DiskBlobs`] (files under the
//! data directory, one node) and [`pg::PgBlobs`] (a chunked `bytea` table every node reads). The
//! [`contract`] suite runs against each.

#[cfg(test)]
mod contract;
pub mod disk;
pub mod pg;

use crate::core::error::Error;

fn io_err(e: std::io::Error, what: &'static str) -> Error {
    Error::Internal(anyhow::Error::new(e).context(what))
}

fn random_name() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}
