//! The `parley` binary as a child process: started with arguments, its first stdout line (the banner)
//! read, the rest of its stdout drained so it never writes into a closed pipe, killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::DEADLINE;

/// The server binary named by `PARLEY_BIN` (for crates that cannot build it themselves; a test of the
/// server crate passes `env!("CARGO_BIN_EXE_parley")`).
pub fn from_env() -> Option<PathBuf> {
    std::env::var_os("PARLEY_BIN").map(PathBuf::from)
}

/// A server process, killed when dropped so that a failing test leaves nothing running.
pub struct Process(pub Child);

impl Process {
    /// Kills the process and waits for it (SIGKILL: no shutdown protocol).
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `bin` with `args` (stderr discarded) and returns it with its first stdout line.
pub fn start(
    bin: impl Into<PathBuf>,
    args: impl IntoIterator<Item = impl AsRef<std::ffi::OsStr>>,
) -> (Process, String) {
    let mut child = Command::new(bin.into())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the parley binary");
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let process = Process(child);
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the first line, then keeps reading so the server never writes into a closed pipe; ends
    // with the process.
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let _ = tx.send(line);
        for _ in out.lines().map_while(Result::ok) {}
    });
    let line = rx.recv_timeout(2 * DEADLINE).expect("the server printed its first line in time");
    (process, line)
}

/// The base URL in a banner ("Parley is running: open http://127.0.0.1:PORT/ in a browser …"),
/// without the trailing slash.
pub fn banner_url(line: &str) -> Option<String> {
    let start = line.find("http://").or_else(|| line.find("https://"))?;
    Some(line[start..].split_whitespace().next()?.trim_end_matches('/').to_owned())
}

/// The address in a banner.
pub fn banner_addr(line: &str) -> Option<SocketAddr> {
    banner_url(line)?.split("://").nth(1)?.parse().ok()
}

/// Starts `parley serve` with `flags` and returns the process and the address it serves HTTP on.
pub fn serve(bin: impl Into<PathBuf>, flags: &[String]) -> (Process, SocketAddr) {
    let (process, line) = start(bin, std::iter::once("serve").chain(flags.iter().map(String::as_str)));
    let addr = banner_addr(&line).unwrap_or_else(|| panic!("the server prints its URL, got {line:?}"));
    (process, addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_banner() {
        let line = "Parley is running: open http://127.0.0.1:4242/ in a browser (WebSocket: ws://127.0.0.1:4242/ws)\n";
        assert_eq!(banner_url(line).as_deref(), Some("http://127.0.0.1:4242"));
        assert_eq!(banner_addr(line), Some("127.0.0.1:4242".parse().unwrap()));
        assert_eq!(
            banner_url("Parley is running: open https://127.0.0.1:1/ …").as_deref(),
            Some("https://127.0.0.1:1")
        );
        assert_eq!(banner_addr("nothing here"), None);
    }
}
