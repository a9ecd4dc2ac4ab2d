//! A client of the TCP line protocol, every read bounded by [`DEADLINE`].

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::DEADLINE;

pub struct Lines {
    pub r: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    pub w: OwnedWriteHalf,
}

impl Lines {
    /// Connects, without reading anything.
    pub async fn connect_raw(addr: SocketAddr) -> Lines {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        Lines { r: BufReader::new(r).lines(), w }
    }

    /// Connects and reads the welcome line.
    pub async fn connect(addr: SocketAddr) -> Lines {
        let mut t = Lines::connect_raw(addr).await;
        let welcome = t.expect_line().await;
        assert!(welcome.starts_with("* Welcome to Parley"), "{welcome}");
        t
    }

    /// Connects, checks the welcome, logs `name` in (password "password-{name}"); the session, or the
    /// error code the server answered.
    pub async fn login(addr: SocketAddr, name: &str) -> Result<Lines, String> {
        let mut t = Lines::connect(addr).await;
        t.send(&format!("/login {name} password-{name}")).await;
        loop {
            let l = t.line().await.expect("an answer to /login");
            if l.starts_with("* Hello") {
                return Ok(t);
            }
            if let Some(e) = l.strip_prefix("ERR ") {
                return Err(e.split(' ').next().unwrap().to_owned());
            }
        }
    }

    /// Writes `line` and a newline; a closed connection shows on the next read.
    pub async fn send(&mut self, line: &str) {
        let _ = self.w.write_all(format!("{line}\n").as_bytes()).await;
    }

    /// Writes `bytes` as they are.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.unwrap();
    }

    /// The next line; panics if the server closed.
    pub async fn expect_line(&mut self) -> String {
        self.line().await.expect("connection open")
    }

    /// The next line; `None` when the server closed.
    pub async fn line(&mut self) -> Option<String> {
        tokio::time::timeout(DEADLINE, self.r.next_line()).await.expect("a line in time").ok().flatten()
    }

    /// Lines until one starts with `prefix`; returns it. Panics if the server closes first.
    pub async fn until(&mut self, prefix: &str) -> String {
        loop {
            let l = self.expect_line().await;
            if l.starts_with(prefix) {
                return l;
            }
        }
    }
}
