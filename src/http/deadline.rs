//! A write deadline on every HTTP connection's socket (plain or TLS): a write that makes no progress
//! for the deadline fails, and the connection is dropped. The connection life cycle (`core::conn`)
//! bounds its own writes by `--write-timeout-secs` and then tries to send its close reason; this is the
//! backstop below it, set longer, so that a client that stopped reading cannot pin a connection (and
//! its socket buffer) after the server gave up on it — an SSE stream ended as too slow, a response
//! nobody reads.
//!
//! The timer exists only while a write waits (the socket's buffer is full): an idle connection holds
//! a duration and an empty slot, not a timer (`tokio-io-timeout`'s wrapper held two, ~0.5 KiB per
//! connection; issue 18, memory per connection).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Sleep, sleep};

/// A listener whose connections carry a write deadline.
pub struct Deadline<L> {
    inner: L,
    write: Duration,
}

impl<L> Deadline<L> {
    pub fn new(inner: L, write: Duration) -> Self {
        Deadline { inner, write }
    }
}

impl<L: Listener> Listener for Deadline<L> {
    type Io = WriteDeadline<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        (WriteDeadline::new(io, self.write), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A stream whose writes (and flushes, and shutdown) fail with `TimedOut` after waiting `limit`
/// without progress. Reads are untouched.
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Armed when a write first waits; dropped as soon as one completes.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        WriteDeadline { inner, limit, timer: None }
    }

    /// Passes a write's outcome through: a completed one disarms the timer, a waiting one arms it
    /// (once) and fails when it fires.
    fn guard<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self.timer.get_or_insert_with(|| Box::pin(sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.timer = None;
                        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "write deadline passed")))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A write the peer does not take fails after the deadline; one it takes goes through, and the
    /// timer is gone once writes complete.
    #[tokio::test(start_paused = true)]
    async fn a_write_that_waits_past_the_deadline_fails() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = WriteDeadline::new(a, Duration::from_secs(5));
        a.write_all(b"hello").await.unwrap();
        assert!(a.timer.is_none(), "no timer once writes complete");
        let mut got = [0u8; 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        // Nobody reads b: the pipe fills and the write waits until the deadline.
        let err = a.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
