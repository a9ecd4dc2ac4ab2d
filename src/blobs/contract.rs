//! The suite every blob store passes (compiled only for tests): [`run_all`] is called by each backend's tests.

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};

use crate::core::blobs::BlobStore;
use crate::core::domain::now_millis;
use crate::core::ports::clock::{Clock, ManualClock};

fn hash(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn put(store: &dyn BlobStore, data: &[u8], piece: usize) -> String {
    let mut w = store.begin().await.unwrap();
    for c in data.chunks(piece.max(1)) {
        w.write(c).await.unwrap();
    }
    let h = hash(data);
    w.finish(&h).await.unwrap();
    h
}

async fn read(store: &dyn BlobStore, h: &str, start: u64, end: u64) -> Option<Vec<u8>> {
    let s = store.read(h, start, end).await.unwrap()?;
    let chunks: Vec<bytes::Bytes> = s.try_collect().await.unwrap();
    Some(chunks.concat())
}

async fn run_all(store: &dyn BlobStore) {
    // Larger than one PostgreSQL chunk, written in odd pieces.
    let big: Vec<u8> = (0..700_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let h = put(store, &big, 10_007).await;
    assert_eq!(store.size(&h).await.unwrap(), Some(big.len() as u64));
    assert_eq!(read(store, &h, 0, u64::MAX).await.unwrap(), big, "whole blob");
    // Ranges: inside one chunk, across chunk boundaries, past the end, empty.
    for (a, b) in [(0u64, 1u64), (5, 300_000), (262_143, 262_145), (524_000, 700_000), (699_999, 800_000), (10, 10)] {
        let want = &big[a as usize..(b as usize).min(big.len())];
        assert_eq!(read(store, &h, a, b).await.unwrap(), want, "range {a}..{b}");
    }

    // The same bytes again: one blob, still whole.
    let again = put(store, &big, 65_536).await;
    assert_eq!(again, h);
    assert_eq!(read(store, &h, 0, u64::MAX).await.unwrap(), big);

    // An aborted upload leaves nothing behind under its would-be address.
    let small = b"never finished".to_vec();
    let mut w = store.begin().await.unwrap();
    w.write(&small).await.unwrap();
    w.abort().await;
    assert_eq!(store.size(&hash(&small)).await.unwrap(), None);
    assert!(store.read(&hash(&small), 0, 10).await.unwrap().is_none());

    // An empty blob is a blob.
    let empty = put(store, b"", 1).await;
    assert_eq!(store.size(&empty).await.unwrap(), Some(0));
    assert_eq!(read(store, &empty, 0, 10).await.unwrap(), Vec::<u8>::new());

    // Listing by age, then deleting.
    let listed = store.stored_before(now_millis() + 60_000).await.unwrap();
    assert!(listed.contains(&h) && listed.contains(&empty), "{listed:?}");
    assert!(!store.stored_before(now_millis() - 3_600_000).await.unwrap().contains(&h));
    assert!(store.delete(&h).await.unwrap());
    assert!(!store.delete(&h).await.unwrap());
    assert_eq!(store.size(&h).await.unwrap(), None);
    assert!(store.read(&h, 0, 1).await.unwrap().is_none());
    assert!(store.delete(&empty).await.unwrap());
}

/// Blobs are stamped by the store's clock (the node's), so their age moves with it: a blob is not
/// stored before the moment it was stored, is once that clock moves on, and storing the same bytes again
/// makes it new again.
async fn stamps_by_its_clock(store: &dyn BlobStore, clock: &ManualClock) {
    let h = put(store, b"stamped by the store's clock", 7).await;
    let stored_at = clock.now_millis();
    assert!(!store.stored_before(stored_at).await.unwrap().contains(&h));
    clock.advance(3_600_000);
    assert!(store.stored_before(clock.now_millis()).await.unwrap().contains(&h), "an hour later by the clock");
    assert!(!store.stored_before(stored_at).await.unwrap().contains(&h));
    assert_eq!(put(store, b"stamped by the store's clock", 3).await, h);
    assert!(!store.stored_before(clock.now_millis()).await.unwrap().contains(&h), "stored again: new again");
    assert!(store.delete(&h).await.unwrap());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::disk::DiskBlobs;
    use crate::blobs::pg::PgBlobs;

    #[tokio::test]
    async fn disk_blob_store_passes_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskBlobs::open(&dir.path().join("blobs")).unwrap();
        run_all(&store).await;
        // Nothing left in tmp/.
        assert_eq!(std::fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn disk_blob_store_stamps_by_its_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = std::sync::Arc::new(ManualClock::at(1_700_000_000_000));
        let store = DiskBlobs::open(&dir.path().join("blobs")).unwrap().with_clock(clock.clone());
        stamps_by_its_clock(&store, &clock).await;
    }

    #[tokio::test]
    async fn postgres_blob_store_passes_the_contract() {
        let Ok(url) = std::env::var("PARLEY_TEST_POSTGRES_URL") else {
            eprintln!("PARLEY_TEST_POSTGRES_URL unset: skipping");
            return;
        };
        let schema = format!("blobs_{}", crate::blobs::random_name());
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
        let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let store = PgBlobs::connect_with(opts.options([("search_path", schema.as_str())])).await.unwrap();
        run_all(&store).await;
        let clock = std::sync::Arc::new(ManualClock::at(1_700_000_000_000));
        stamps_by_its_clock(&store.with_clock(clock.clone()), &clock).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&admin).await.unwrap();
    }
}
