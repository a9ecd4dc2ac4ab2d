//! The blob collector: every node, every `--blob-gc-secs`, drops unsent uploads older than a day and
//! deletes blobs no file names any more (deleted and purged messages' files, dropped uploads) once they
//! are older than the grace period. Passes are idempotent, so nodes need no coordination.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::core::chat::files::Files;
use crate::core::ports::clock::DynClock;

/// Runs a pass every `every` until `stop`, each pass at `clock`'s now.
pub async fn run(files: Arc<Files>, every: Duration, grace: Duration, clock: DynClock, stop: CancellationToken) {
    super::every(every, stop, || async {
        match files.collect(clock.now_millis(), grace).await {
            Ok(c) if c.blobs > 0 || c.unsent_files > 0 => {
                metrics::counter!("parley_blobs_collected_total").increment(c.blobs);
                info!(blobs = c.blobs, unsent_files = c.unsent_files, "blob collector removed unreferenced data");
            }
            Ok(_) => {}
            Err(e) => warn!(error = format!("{:#}", anyhow::Error::new(e)), "blob collector pass failed"),
        }
    })
    .await
}
