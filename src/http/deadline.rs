//! A write deadline on every HTTP connection's socket (plain or TLS): a write that makes no progress
//! for the deadline fails, and the connection is dropped. The connection life cycle (`core::conn`)
//! bounds its own writes by `--write-timeout-secs` and then tries to send its close reason; this is the
//! backstop below it, set longer, so that a client that stopped reading cannot pin a connection (and
//! its socket buffer) after the server gave up on it — an SSE stream ended as too slow, a response
//! nobody reads.

use std::pin::Pin;
use std::time::Duration;

use axum::serve::Listener;
use tokio_io_timeout::TimeoutStream;

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
    type Io = Pin<Box<TimeoutStream<L::Io>>>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        let mut io = TimeoutStream::new(io);
        io.set_write_timeout(Some(self.write));
        (Box::pin(io), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
