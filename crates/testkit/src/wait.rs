//! Waiting on a condition, with a bound: a test fails with what it waited for instead of hanging.
//!
//! These poll. Use them only where there is no event to await (a server's state seen through its
//! API, a file on disk, a child process exiting, a port starting to accept); where there is one (a
//! channel, a socket, a stream), await it under `tokio::time::timeout` instead. Polling is every
//! [`POLL`], so a condition that holds is seen within that, and the loop never sleeps past the bound.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the helpers look again.
pub const POLL: Duration = Duration::from_millis(10);

/// Waits until `probe` answers `Ok`, returning it; after `within`, panics naming `what` and the last
/// `Err` (what was seen instead).
pub async fn until_ok<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        let seen = match probe().await {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out after {within:?} waiting for {what}{}{seen}",
            if seen.is_empty() { "" } else { "; seen: " }
        );
        tokio::time::sleep(POLL.min(left)).await;
    }
}

/// Waits until `probe` answers `Some`, returning it; panics naming `what` after `within`.
pub async fn until_some<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    until_ok(what, within, || {
        let next = probe();
        async move { next.await.ok_or_else(String::new) }
    })
    .await
}

/// Waits until `cond` holds; panics naming `what` after `within`.
pub async fn until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    until_some(what, within, || std::future::ready(cond().then_some(()))).await
}

/// [`until`] for a test without a runtime (blocks the calling thread).
pub fn until_blocking(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out after {within:?} waiting for {what}");
        std::thread::sleep(POLL.min(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_what_the_probe_finds() {
        let n = AtomicU32::new(0);
        let got = until_some("three looks", Duration::from_secs(5), || {
            let k = n.fetch_add(1, Ordering::SeqCst);
            async move { (k == 2).then_some(k) }
        })
        .await;
        assert_eq!(got, 2);
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 30ms waiting for nothing")]
    async fn fails_at_the_bound() {
        until("nothing", Duration::from_millis(30), || false).await;
    }

    #[test]
    #[should_panic(expected = "waiting for never")]
    fn the_blocking_form_fails_at_the_bound_too() {
        until_blocking("never", Duration::from_millis(30), || false);
    }
}
