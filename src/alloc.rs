//! The global allocator: jemalloc with sampled heap profiling, when built with the `jemalloc` feature
//! (off by default); the system allocator otherwise.
//!
//! Profiling is on from the start (`prof:true`) and samples one allocation per 512 KiB allocated on
//! average (`lg_prof_sample:19`, jemalloc's default), so a heap profile ([`heap_profile`]) shows what
//! was live at that moment, whenever it is asked for. Its cost: BENCHMARKS.md ("Allocator").
//!
//! Freed memory goes back to the system within about a second (`dirty_decay_ms:1000`,
//! `muzzy_decay_ms:0`, purged by jemalloc's background thread even while the process is idle), not
//! jemalloc's default ten seconds: a reconnect storm's transient buffers (1,000 handshakes in flight)
//! would otherwise stay resident well after it (BENCHMARKS.md, "Memory per connection": the memory per
//! connection it changes, and its CPU cost).

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options, read by it from this symbol (the crate's prefixed name).
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals, unsafe_code)] // the one symbol jemalloc reads its options from
#[used]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] =
    b"prof:true,prof_active:true,lg_prof_sample:19,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Heap statistics: bytes allocated by the program, and bytes of physical memory the allocator holds
/// (`None` without jemalloc).
#[derive(Debug, Clone, Copy)]
pub struct HeapStats {
    pub allocated: u64,
    pub resident: u64,
}

#[cfg(feature = "jemalloc")]
pub fn heap_stats() -> Option<HeapStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    // The statistics are a snapshot taken at each epoch advance.
    epoch::advance().ok()?;
    Some(HeapStats { allocated: stats::allocated::read().ok()? as u64, resident: stats::resident::read().ok()? as u64 })
}

#[cfg(not(feature = "jemalloc"))]
pub fn heap_stats() -> Option<HeapStats> {
    None
}

/// Why a heap profile could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum HeapProfileError {
    #[error("this build has no heap profiler (built without the `jemalloc` feature)")]
    Unavailable,
    #[error("taking the heap profile failed: {0:#}")]
    Failed(anyhow::Error),
}

/// A heap profile of what is live now, in pprof's format (gzip-compressed protobuf, `inuse_space`).
/// Blocking (it writes jemalloc's dump to a temporary file and reads it back): call off the runtime.
#[cfg(feature = "jemalloc")]
pub fn heap_profile() -> Result<Vec<u8>, HeapProfileError> {
    // Keep the options symbol referenced, so the linker keeps it in every binary that profiles.
    std::hint::black_box(malloc_conf.as_ptr());
    let ctl = jemalloc_pprof::PROF_CTL.as_ref().ok_or(HeapProfileError::Unavailable)?;
    let mut ctl = ctl.blocking_lock();
    if !ctl.activated() {
        return Err(HeapProfileError::Unavailable);
    }
    ctl.dump_pprof().map_err(HeapProfileError::Failed)
}

#[cfg(not(feature = "jemalloc"))]
pub fn heap_profile() -> Result<Vec<u8>, HeapProfileError> {
    Err(HeapProfileError::Unavailable)
}
