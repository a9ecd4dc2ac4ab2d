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
//!
//! It also gathers small writes until a flush (at most [`COALESCE`] bytes, then they go out): the
//! WebSocket writes each frame as it is formatted (tungstenite's own write buffer is off), so a batch
//! of frames is still one system call per flush, and the buffer is given back once flushed, so a
//! connection that wrote a burst keeps nothing of it (tungstenite's buffer, grown to the largest batch,
//! was kept for the connection's life). Vectored writes (hyper's) and writes of [`COALESCE`] bytes or
//! more go straight to the socket, after what was gathered.

use std::future::Future;
use std::io;
use std::pin::Pin;

use std::task::{Context, Poll, Waker, ready};
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

/// Bytes of small writes gathered before they are written to the socket (a flush writes them at once).
pub const COALESCE: usize = 16 * 1024;

/// A stream whose writes (and flushes, and shutdown) fail with `TimedOut` after waiting `limit`
/// without progress, and which gathers small writes until a flush. Reads are untouched.
pub struct WriteDeadline<S: AsyncWrite + Unpin> {
    inner: S,
    limit: Duration,
    /// Armed when a write first waits; dropped as soon as one completes.
    timer: Option<Pin<Box<Sleep>>>,
    /// Small writes not yet written to `inner`, from `written` on; empty (no allocation) once flushed.
    gathered: Vec<u8>,
    written: usize,
}

impl<S: AsyncWrite + Unpin> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        WriteDeadline { inner, limit, timer: None, gathered: Vec::new(), written: 0 }
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

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> WriteDeadline<S> {
    /// Writes out what was gathered, then gives its buffer back.
    fn poll_gathered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.gathered.len() {
            let polled = Pin::new(&mut self.inner).poll_write(cx, &self.gathered[self.written..]);
            match ready!(self.guard(cx, polled)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.gathered = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.gathered.len() + buf.len() > COALESCE {
            ready!(this.poll_gathered(cx))?;
        }
        if buf.len() >= COALESCE {
            let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
            return this.guard(cx, polled);
        }
        this.gathered.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_gathered(cx))?;
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_gathered(cx))?;
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_gathered(cx))?;
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard(cx, polled)
    }
}

impl<S: AsyncWrite + Unpin> Drop for WriteDeadline<S> {
    /// Like std's `BufWriter`, writes what was gathered when dropped — here only what the socket takes
    /// at once, never waiting. tungstenite writes its reply to a client's close without a flush, just
    /// before the connection ends (RFC 6455's closing handshake).
    fn drop(&mut self) {
        if self.written == self.gathered.len() {
            return;
        }
        let mut cx = Context::from_waker(Waker::noop());
        while self.written < self.gathered.len() {
            match Pin::new(&mut self.inner).poll_write(&mut cx, &self.gathered[self.written..]) {
                Poll::Ready(Ok(n)) if n > 0 => self.written += n,
                _ => return,
            }
        }
        let _ = Pin::new(&mut self.inner).poll_flush(&mut cx);
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
        a.flush().await.unwrap();
        assert!(a.timer.is_none(), "no timer once writes complete");
        let mut got = [0u8; 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        // Nobody reads b: the pipe fills and the write waits until the deadline.
        let err = a.write_all(&[0u8; 1024]).await.and(a.flush().await).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    /// What was gathered and not flushed is written when the layer is dropped, if the peer takes it.
    #[tokio::test]
    async fn what_was_gathered_is_written_when_dropped() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut a = WriteDeadline::new(a, Duration::from_secs(5));
        a.write_all(b"bye").await.unwrap();
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
    }

    /// Counts the writes that reach it.
    #[derive(Default)]
    struct Counting {
        writes: usize,
        bytes: Vec<u8>,
    }

    impl AsyncWrite for Counting {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.writes += 1;
            self.bytes.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Small writes (a WebSocket batch's frames) reach the socket as one write per flush, or per
    /// [`COALESCE`] bytes; after the flush the layer holds no buffer.
    #[tokio::test]
    async fn small_writes_go_out_together_at_the_flush_and_the_buffer_is_given_back() {
        let mut a = WriteDeadline::new(Counting::default(), Duration::from_secs(5));
        for i in 0..64u8 {
            a.write_all(&[i; 200]).await.unwrap();
        }
        assert!(a.inner.writes == 0, "nothing written before the flush");
        a.flush().await.unwrap();
        assert_eq!(a.inner.writes, 1, "64 frames of 200 bytes: one write");
        assert_eq!(a.gathered.capacity(), 0, "the buffer is given back after the flush");
        // A burst larger than the buffer goes out in COALESCE-sized writes; a big write goes straight.
        for _ in 0..100 {
            a.write_all(&[7; 500]).await.unwrap();
        }
        a.write_all(&vec![9; COALESCE]).await.unwrap();
        a.flush().await.unwrap();
        assert!(a.inner.writes <= 1 + 50_000 / COALESCE + 2, "{} writes", a.inner.writes);
        assert_eq!(a.inner.bytes.len(), 64 * 200 + 100 * 500 + COALESCE, "every byte, once");
        assert!(a.inner.bytes[64 * 200..64 * 200 + 50_000].iter().all(|b| *b == 7), "in order");
        assert_eq!(a.gathered.capacity(), 0);
    }
}
