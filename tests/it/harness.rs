//! `spawn_app()`: a real server on port 0 with a fresh data directory, and clients that speak to it
//! over real sockets (the clients, flags and waits are `parley-testkit`'s; this file adds only what
//! needs the server crate: a node run in the test's process). Waits are on events, with a generous
//! deadline only to fail instead of hanging.

use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) use parley::core::ingest::BatchesStarted;
use parley::core::ports::clock::ManualClock;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) use parley_testkit::binary::Process;
pub(crate) use parley_testkit::lines::Lines;
pub(crate) use parley_testkit::node::Node;
pub(crate) use parley_testkit::sse::Sse;
pub(crate) use parley_testkit::ws::Ws;
pub(crate) use parley_testkit::{DEADLINE, flags, node, wait};

/// A node under test and a client of it (`app.post(..)`, `app.ws(..)`: see [`Node`]).
pub(crate) struct TestApp {
    pub(crate) node: Node,
    pub(crate) tcp_addr: SocketAddr,
    pub(crate) dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// For a node run as the real binary (see [`spawn_binary`]).
    process: Option<Process>,
}

impl std::ops::Deref for TestApp {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

/// Flags every test server gets: cheap password hashing, a fresh data directory.
pub(crate) fn base_flags(dir: &std::path::Path) -> Vec<String> {
    flags::base(dir)
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub(crate) async fn spawn_app_with(extra: &[&str]) -> TestApp {
    spawn_in(tempfile::tempdir().unwrap(), extra).await
}

/// [`spawn_app_with`] on a clock the test moves: time-based rules (message times, sessions, retention
/// cutoffs) read it, so a test advances it instead of waiting for real time to pass.
pub(crate) async fn spawn_app_clocked(extra: &[&str]) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let node_clock = clock.clone();
    let app =
        spawn_on(tempfile::tempdir().unwrap(), extra, move |c| c.clock = parley::config::NodeClock(node_clock)).await;
    (app, clock)
}

/// [`spawn_app_with`], also handing back the count of batches its writer has handed to the store, to wait
/// for "a batch is in the store's hands".
pub(crate) async fn spawn_app_watched(extra: &[&str]) -> (TestApp, BatchesStarted) {
    let batches = BatchesStarted::default();
    let watched = batches.clone();
    let app = spawn_on(tempfile::tempdir().unwrap(), extra, move |c| c.batches_started = watched).await;
    (app, batches)
}

pub(crate) async fn spawn_in(dir: tempfile::TempDir, extra: &[&str]) -> TestApp {
    spawn_on(dir, extra, |_| {}).await
}

/// Runs a node in-process on the test flags plus `extra`, with `tweak` setting what is not a flag.
async fn spawn_on(dir: tempfile::TempDir, extra: &[&str], tweak: impl FnOnce(&mut parley::config::Config)) -> TestApp {
    let mut flags = base_flags(dir.path());
    flags.extend(extra.iter().map(|s| s.to_string()));
    let mut config = parley::config::Config::from_flags(flags).unwrap();
    tweak(&mut config);
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, tcp_addr) = (http.local_addr().unwrap(), tcp.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let listeners = parley::server::Listeners { http, tcp: Some(tcp) };
    let handle = tokio::spawn(parley::server::run(config, listeners, async move {
        let _ = stopped.await;
    }));
    TestApp { node: Node::new(addr), tcp_addr, dir, stop: Some(stop), handle: Some(handle), process: None }
}

/// Runs the real `parley` binary (so it can be SIGKILLed) with the test flags plus `extra`; its TCP
/// line port is off.
pub(crate) fn spawn_binary(extra: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut flags = base_flags(dir.path());
    flags::set(&mut flags, "--tcp-listen", "off");
    flags.extend(extra.iter().map(|s| s.to_string()));
    let (process, addr) = parley_testkit::binary::serve(env!("CARGO_BIN_EXE_parley"), &flags);
    TestApp { node: Node::new(addr), tcp_addr: addr, dir, stop: None, handle: None, process: Some(process) }
}

impl TestApp {
    /// SIGKILLs a node started with [`spawn_binary`].
    pub(crate) fn kill(&mut self) {
        drop(self.process.take().expect("a node run as a process"));
    }

    /// Runs the shutdown protocol and waits for it to finish.
    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(DEADLINE, self.handle.take().unwrap()).await.expect("shutdown in time").unwrap().unwrap();
        self.dir
    }
}

impl TestApp {
    /// The event stream of `token`'s user (cookie authentication), from `last_event_id` if given;
    /// panics unless it opens.
    pub(crate) async fn sse(&self, token: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = self.http.get(self.url("/api/v1/events")).header("cookie", format!("parley_token={token}"));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        Sse::open(req).await.unwrap_or_else(|(s, b)| panic!("the event stream answered {s}: {b}"))
    }

    /// A TCP line session logged in as `name`; panics if refused.
    pub(crate) async fn tcp(&self, name: &str) -> Lines {
        Lines::login(self.tcp_addr, name).await.unwrap_or_else(|e| panic!("tcp login {name}: {e}"))
    }
}
