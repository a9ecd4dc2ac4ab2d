//! Receiving connections over Server-Sent Events and the TCP line protocol.
//!
//! Both are line streams: SSE is a raw HTTP/1.1 `GET /api/v1/events?token=…` whose body (chunked
//! or not) is read line by line (`data:` lines carry the same JSON frames as the WebSocket, so
//! [`crate::payload::classify`] applies unchanged); the TCP protocol is `/login user pass` and then
//! one line per event, `[#room] user: body` for messages ([`classify_tcp_line`]). [`LineConn`] keeps
//! two reusable buffers per connection and hands out lines as ranges into them: no allocation per
//! message.

use crate::client::{Target, connect_tcp, truncate};
use crate::payload::{Frame, Stamp, classify};
use anyhow::{Result, anyhow, bail};
use memchr::memmem;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest line accepted before the connection is treated as broken.
const MAX_LINE: usize = 1 << 20;

/// `Transfer-Encoding: chunked` decoding state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a `hex-size[;ext]\r\n` line.
    Size,
    /// Bytes left in the current chunk.
    Data(usize),
    /// The `\r\n` after a chunk's data.
    Crlf,
}

/// A connection read line by line.
pub struct LineConn {
    stream: TcpStream,
    /// Undecoded bytes (chunked bodies only).
    raw: Vec<u8>,
    /// Decoded bytes; lines are cut from `pos`.
    buf: Vec<u8>,
    pos: usize,
    chunk: Option<Chunk>,
    eof: bool,
}

impl LineConn {
    fn new(stream: TcpStream, chunked: bool, leftover: &[u8]) -> Result<LineConn> {
        let mut c = LineConn {
            stream,
            raw: Vec::with_capacity(if chunked { 16 * 1024 } else { 0 }),
            buf: Vec::with_capacity(16 * 1024),
            pos: 0,
            chunk: chunked.then_some(Chunk::Size),
            eof: false,
        };
        if chunked {
            c.raw.extend_from_slice(leftover);
            c.dechunk()?;
        } else {
            c.buf.extend_from_slice(leftover);
        }
        Ok(c)
    }

    /// The next line (without its `\n` or `\r\n`) as a range for [`LineConn::line`]; `None` once
    /// the peer closed (a last line without a newline is dropped).
    pub async fn next_line(&mut self) -> std::io::Result<Option<Range<usize>>> {
        let mut scanned = 0;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos + scanned..]) {
                let start = self.pos;
                let mut end = start + scanned + i;
                self.pos = end + 1;
                if end > start && self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                return Ok(Some(start..end));
            }
            if self.eof {
                return Ok(None);
            }
            scanned = self.buf.len() - self.pos;
            if scanned > MAX_LINE {
                return Err(std::io::Error::other("line too long"));
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            self.fill().await?;
        }
    }

    pub fn line(&self, r: Range<usize>) -> &[u8] {
        &self.buf[r]
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let dst = if self.chunk.is_some() { &mut self.raw } else { &mut self.buf };
        if dst.capacity() - dst.len() < 4096 {
            dst.reserve(16 * 1024);
        }
        if self.stream.read_buf(dst).await? == 0 {
            self.eof = true;
            return Ok(());
        }
        if self.chunk.is_some() {
            self.dechunk().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        }
        Ok(())
    }

    /// Moves the data of complete (or partial) chunks from `raw` to `buf`.
    fn dechunk(&mut self) -> Result<()> {
        let raw = &self.raw;
        let mut state = self.chunk.unwrap_or(Chunk::Size);
        let mut i = 0;
        loop {
            match state {
                Chunk::Size => {
                    let Some(nl) = memchr::memchr(b'\n', &raw[i..]) else { break };
                    let line = &raw[i..i + nl];
                    let hex = line.split(|&b| b == b';' || b == b'\r').next().unwrap_or_default();
                    let hex = std::str::from_utf8(hex).map_err(|_| anyhow!("bad chunk size"))?.trim();
                    let size = usize::from_str_radix(hex, 16).map_err(|_| anyhow!("bad chunk size {hex:?}"))?;
                    i += nl + 1;
                    if size == 0 {
                        self.eof = true;
                        break;
                    }
                    state = Chunk::Data(size);
                }
                Chunk::Data(n) => {
                    let take = n.min(raw.len() - i);
                    if take == 0 {
                        break;
                    }
                    self.buf.extend_from_slice(&raw[i..i + take]);
                    i += take;
                    state = if take == n { Chunk::Crlf } else { Chunk::Data(n - take) };
                }
                Chunk::Crlf => {
                    let Some(nl) = memchr::memchr(b'\n', &raw[i..]) else { break };
                    i += nl + 1;
                    state = Chunk::Size;
                }
            }
        }
        self.chunk = Some(state);
        self.raw.drain(..i);
        Ok(())
    }

    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(b).await
    }
}

/// Which transport the receiving (non-sender) connections use.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// WebSocket (`/ws?token=`), like the senders.
    #[default]
    Ws,
    /// Server-Sent Events (`GET /api/v1/events?token=`).
    Sse,
    /// The TCP line protocol on `--tcp-addr` (`/login user pass`).
    Tcp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
            Transport::Tcp => "tcp",
        }
    }
}

/// Opens `GET /api/v1/events?token=` and waits for the `hello` event.
pub async fn open_sse(target: &Target, token: &str, source: Option<IpAddr>, timeout: Duration) -> Result<LineConn> {
    let fut = async {
        let mut tcp = connect_tcp(target.addr, source).await?;
        let req = format!(
            "GET {}/api/v1/events?token={token} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            target.prefix, target.authority
        );
        tcp.write_all(req.as_bytes()).await?;
        let mut head = Vec::with_capacity(1024);
        let (chunked, body_at) = loop {
            if tcp.read_buf(&mut head).await? == 0 {
                bail!("connection closed during the SSE response headers");
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&head)? {
                httparse::Status::Partial if head.len() > 64 * 1024 => bail!("SSE response headers too long"),
                httparse::Status::Partial => continue,
                httparse::Status::Complete(n) => {
                    let code = resp.code.unwrap_or(0);
                    if code != 200 {
                        let body = String::from_utf8_lossy(&head[n..]);
                        bail!("GET /api/v1/events: HTTP {code}: {}", truncate(&body, 200));
                    }
                    let chunked = resp.headers.iter().any(|h| {
                        h.name.eq_ignore_ascii_case("transfer-encoding")
                            && String::from_utf8_lossy(h.value).to_ascii_lowercase().contains("chunked")
                    });
                    break (chunked, n);
                }
            }
        };
        let mut conn = LineConn::new(tcp, chunked, &head[body_at..])?;
        while let Some(r) = conn.next_line().await? {
            if let Some(data) = sse_data(conn.line(r)) {
                match classify(data) {
                    Frame::Hello => return Ok(conn),
                    _ => bail!("first SSE event was not hello: {}", String::from_utf8_lossy(data)),
                }
            }
        }
        bail!("SSE stream ended before hello")
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| anyhow!("timed out after {timeout:?} opening SSE"))?
}

/// The payload of an SSE `data:` line (`None` for `event:`, `id:`, comments and blank lines).
pub fn sse_data(line: &[u8]) -> Option<&[u8]> {
    let d = line.strip_prefix(b"data:")?;
    Some(d.strip_prefix(b" ").unwrap_or(d))
}

/// Connects to the TCP line port, logs in and waits for the `* Hello, …` line.
pub async fn open_tcp(
    addr: SocketAddr,
    user: &str,
    password: &str,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<LineConn> {
    let fut = async {
        let tcp = connect_tcp(addr, source).await?;
        let mut conn = LineConn::new(tcp, false, &[])?;
        conn.write_all(format!("/login {user} {password}\n").as_bytes()).await?;
        while let Some(r) = conn.next_line().await? {
            let l = conn.line(r);
            if l.starts_with(b"* Hello,") {
                return Ok(conn);
            }
            if l.starts_with(b"ERR ") {
                bail!("TCP login: {}", String::from_utf8_lossy(l));
            }
        }
        bail!("TCP connection ended before login completed")
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| anyhow!("timed out after {timeout:?} logging in over TCP"))?
}

/// Classifies a TCP protocol line: `[label] user: body` is a message (with our stamp when the body
/// is one), `[label] * …` a system message, `[label] (update #n) …` an edit, `ERR …` an error.
pub fn classify_tcp_line(line: &[u8]) -> Frame {
    if line.starts_with(b"ERR ") {
        return Frame::Error;
    }
    if line.first() != Some(&b'[') {
        return Frame::Other;
    }
    let Some(close) = memmem::find(line, b"] ") else { return Frame::Unparsable };
    let tail = &line[close + 2..];
    if tail.starts_with(b"* ") {
        return Frame::Message(None);
    }
    if tail.starts_with(b"(update #") {
        return Frame::Other;
    }
    match memmem::find(tail, b": ") {
        Some(c) => Frame::Message(Stamp::parse(&tail[c + 2..])),
        None => Frame::Unparsable,
    }
}

/// Whether an SSE `close` event or a TCP `ERR` line says the server dropped us as too slow.
pub fn too_slow(line: &[u8]) -> bool {
    memmem::find(line, b"too_slow").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_lines() {
        let s = Stamp { sender: 3, n: 7, sent_ns: 99 };
        assert_eq!(classify_tcp_line(b"[#bxr0] bxu1: b|3|7|99"), Frame::Message(Some(s)));
        assert_eq!(classify_tcp_line(b"[#bxr0] bxu1: b|3|7|99|xxxx"), Frame::Message(Some(s)));
        assert_eq!(classify_tcp_line(b"[#bxr0] bxu1: hello"), Frame::Message(None));
        assert_eq!(classify_tcp_line(b"[#bxr0] * bxu1 joined"), Frame::Message(None));
        assert_eq!(classify_tcp_line(b"[#bxr0] (update #4) bxu1: b|3|7|99 (edited)"), Frame::Other);
        assert_eq!(classify_tcp_line(b"* carol is online"), Frame::Other);
        assert_eq!(classify_tcp_line(b"ERR too_slow you were not reading fast enough"), Frame::Error);
    }

    #[test]
    fn sse_data_lines() {
        assert_eq!(sse_data(b"data: {\"type\":\"hello\"}"), Some(&b"{\"type\":\"hello\"}"[..]));
        assert_eq!(sse_data(b"data:x"), Some(&b"x"[..]));
        assert_eq!(sse_data(b"event: message"), None);
        assert_eq!(sse_data(b": keepalive"), None);
    }

    #[tokio::test]
    async fn chunked_bodies_are_decoded_across_reads() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            // "event: a\ndata: 1\n\ndata: 22\r\n" in three chunks, split across writes.
            let parts: [&[u8]; 5] =
                [b"9\r\nevent", b": a\n\r", b"\n9;x=1\r\nda", b"ta: 1\n\n\r\nA\r", b"\ndata: 22\r\n\r\n0\r\n\r\n"];
            for part in parts {
                s.write_all(part).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut c = LineConn::new(tcp, true, b"").unwrap();
        let mut lines = Vec::new();
        while let Some(r) = c.next_line().await.unwrap() {
            lines.push(String::from_utf8(c.line(r).to_vec()).unwrap());
        }
        assert_eq!(lines, ["event: a", "data: 1", "", "data: 22"]);
        server.await.unwrap();
    }
}
