//! End to end against the real server binary: two users, the client's network and state layers (no
//! terminal), and two forced reconnects — the WebSocket cut by a proxy, then the server restarted on the
//! same data directory and port — after which the client must hold exactly the server's full sequence.
//!
//! The server binary is found through `PARLEY_BIN` (for example `PARLEY_BIN=target/debug/parley`); without
//! it the test prints why and passes without doing anything.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use parley_testkit::binary::{self, Process};
use parley_testkit::{flags, wait};
use parley_tui::net::{self, Api, Credentials, NetConfig, Network};
use parley_tui::proto::{Message, ServerFrame};
use parley_tui::state::{ChatState, Connection, NetEvent};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const DEADLINE: Duration = Duration::from_secs(30);

struct Server {
    child: Process,
    addr: SocketAddr,
}

/// `parley serve` on `listen` with the test flags (its TCP line port off), killed on drop.
async fn start_server(bin: &Path, data_dir: &Path, listen: &str) -> Server {
    let mut args = flags::base(data_dir);
    flags::set(&mut args, "--listen", listen);
    flags::set(&mut args, "--tcp-listen", "off");
    let bin = bin.to_owned();
    let (child, addr) = tokio::task::spawn_blocking(move || binary::serve(bin, &args)).await.unwrap();
    Server { child, addr }
}

/// A TCP proxy that can cut every connection through it (and refuse new ones) on demand.
struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (cut2, conns2) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Proxy { addr, cut, conns, accept }
    }

    /// Drops every proxied connection and refuses new ones until [`Proxy::restore`].
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The client under test: state + network, pumped by the test instead of a terminal.
struct Client {
    state: ChatState,
    net: Network,
    events: UnboundedReceiver<NetEvent>,
    hellos: usize,
    history_pages: usize,
}

impl Client {
    /// Applies network events until `cond` holds (panics after [`DEADLINE`]).
    async fn pump_until(&mut self, what: &str, cond: impl Fn(&ChatState) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !cond(&self.state) {
            let ev = match timeout(deadline.saturating_duration_since(Instant::now()), self.events.recv()).await {
                Ok(Some(ev)) => ev,
                Ok(None) => panic!("network task ended while waiting for {what}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; connection {:?}, pending {:?}, status {:?}",
                    self.state.connection, self.state.pending, self.state.status
                ),
            };
            match &ev {
                NetEvent::Frame(ServerFrame::Hello { .. }) => self.hellos += 1,
                NetEvent::Frame(ServerFrame::History { .. }) => self.history_pages += 1,
                _ => {}
            }
            let actions = self.state.on_net(ev);
            self.net.dispatch(actions);
        }
    }

    fn type_line(&mut self, text: &str) {
        for c in text.chars() {
            let a = self.state.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
            self.net.dispatch(a);
        }
        let a = self.state.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        self.net.dispatch(a);
    }

    fn messages(&self, room: &str) -> Vec<Message> {
        self.state.room_by_name(room).map(|r| r.messages.values().cloned().collect()).unwrap_or_default()
    }
}

async fn post_message(http: &reqwest::Client, base: &str, token: &str, room: &str, body: &str) {
    let resp = http
        .post(format!("{base}/api/v1/rooms/{room}/messages"))
        .bearer_auth(token)
        .json(&json!({ "body": body }))
        .send()
        .await
        .expect("posting a message");
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().await.unwrap_or_default());
}

/// The room's whole history as the server holds it (`parley_testkit::node::history`), as the client reads it.
async fn server_history(http: &reqwest::Client, base: &str, token: &str, room: &str) -> Vec<Message> {
    let history = parley_testkit::node::history(http, base, token, room).await;
    history.into_iter().map(|m| serde_json::from_value(m).unwrap()).collect()
}

/// Alice holds exactly the server's sequence: 1..=N, no gap, no duplicate, the same bodies.
fn assert_same_sequence(held: &[Message], server: &[Message]) {
    let held_seqs: Vec<i64> = held.iter().map(|m| m.seq).collect();
    let expected: Vec<i64> = (1..=server.len() as i64).collect();
    assert_eq!(server.iter().map(|m| m.seq).collect::<Vec<_>>(), expected, "the server's own sequence has gaps");
    assert_eq!(held_seqs, expected, "the client's sequence differs from the server's");
    for (h, s) in held.iter().zip(server) {
        assert_eq!((h.seq, &h.kind, &h.body), (s.seq, &s.kind, &s.body));
    }
}

fn parley_bin() -> Option<PathBuf> {
    let path = binary::from_env()?;
    assert!(path.is_file(), "PARLEY_BIN={} is not a file", path.display());
    Some(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_join_send_receive_and_recover_after_reconnects() {
    let Some(bin) = parley_bin() else {
        eprintln!(
            "SKIPPED login_join_send_receive_and_recover_after_reconnects: set PARLEY_BIN to the parley server \
             binary (e.g. PARLEY_BIN=target/debug/parley after `cargo build --bin parley`) to run it"
        );
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut server = start_server(&bin, data.path(), "127.0.0.1:0").await;
    let server_addr = server.addr;
    let direct = format!("http://{server_addr}");
    let proxy = Proxy::start(server_addr).await;

    // Two accounts; bob talks over REST, alice through the client under test (behind the proxy).
    let direct_api = Api::new(&direct).unwrap();
    let alice = Credentials { username: "alice".into(), password: "alice-password".into() };
    let bob = Credentials { username: "bob".into(), password: "bob-password".into() };
    direct_api.register(&alice).await.unwrap();
    direct_api.register(&bob).await.unwrap();
    let bob_token = direct_api.login(&bob).await.unwrap().token;
    direct_api.create_room(&bob_token, "lobby", false).await.unwrap();

    let api = Api::new(&format!("http://{}", proxy.addr)).unwrap();
    let login = api.login(&alice).await.unwrap();
    let config = NetConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..NetConfig::default()
    };
    let (network, events) = net::spawn(api, alice.clone(), login.token, config);
    let mut c = Client { state: ChatState::new("e2e", None), net: network, events, hellos: 0, history_pages: 0 };
    c.pump_until("hello", |s| s.is_settled()).await;
    assert_eq!(c.state.me.as_ref().unwrap().username, "alice");
    assert!(c.state.rooms.is_empty());

    // Join, send, receive.
    c.type_line("/join lobby");
    c.pump_until("joining lobby", |s| s.current_room().is_some_and(|r| r.room.name == "lobby") && s.is_settled()).await;
    c.type_line("hello from alice");
    c.pump_until("the ack", |s| s.is_settled()).await;
    post_message(&reqwest::Client::new(), &direct, &bob_token, "lobby", "hello from bob").await;
    c.pump_until("bob's message", |s| {
        s.current_room().is_some_and(|r| r.messages.values().any(|m| m.body == "hello from bob"))
    })
    .await;
    let http = reqwest::Client::new();
    assert_same_sequence(&c.messages("lobby"), &server_history(&http, &direct, &bob_token, "lobby").await);

    // Reconnect 1: the WebSocket is cut. Meanwhile bob writes more than one recovery page and alice types.
    proxy.cut();
    c.pump_until("the drop", |s| s.connection == Connection::Offline).await;
    for i in 0..250 {
        post_message(&http, &direct, &bob_token, "lobby", &format!("bob {i}")).await;
    }
    c.type_line("alice offline 1");
    c.type_line("alice offline 2");
    assert_eq!(c.state.pending.len(), 2);
    let pages_before = c.history_pages;
    proxy.restore();
    c.pump_until("recovery after the cut", |s| s.is_settled()).await;
    assert_eq!(c.hellos, 2);
    assert!(c.history_pages - pages_before >= 2, "250 missed messages take two pages of 200");
    let server_msgs = server_history(&http, &direct, &bob_token, "lobby").await;
    assert!(server_msgs.len() > 250);
    assert_same_sequence(&c.messages("lobby"), &server_msgs);

    // Reconnect 2: the server is killed and started again on the same data directory and port.
    server.child.kill();
    c.pump_until("the drop", |s| s.connection == Connection::Offline).await;
    c.type_line("alice while the server is down");
    server = start_server(&bin, data.path(), &server_addr.to_string()).await;
    let bob_token = match direct_api.login(&bob).await {
        Ok(l) => l.token,
        Err(e) => panic!("bob cannot log in after the restart: {e}"),
    };
    for i in 0..5 {
        post_message(&http, &direct, &bob_token, "lobby", &format!("bob after restart {i}")).await;
    }
    c.pump_until("recovery after the restart", |s| {
        s.is_settled()
            && s.room_by_name("lobby").is_some_and(|r| r.messages.values().any(|m| m.body == "bob after restart 4"))
    })
    .await;
    assert_eq!(c.hellos, 3);
    let server_msgs = server_history(&http, &direct, &bob_token, "lobby").await;
    assert_same_sequence(&c.messages("lobby"), &server_msgs);

    // Every line alice typed is stored exactly once, although some were sent twice.
    let alice_bodies: Vec<&str> = server_msgs
        .iter()
        .filter(|m| m.kind == "text" && m.sender.as_ref().is_some_and(|u| u.username == "alice"))
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(
        alice_bodies,
        vec!["hello from alice", "alice offline 1", "alice offline 2", "alice while the server is down"]
    );
    let ids: HashSet<&str> = server_msgs.iter().filter_map(|m| m.client_id.as_deref()).collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(server_msgs.iter().filter(|m| m.body.starts_with("bob ")).count(), 255);

    c.net.shutdown().await;
    server.child.kill();
}

/// The real `parley chat` in a pseudo-terminal, its screen read back through a terminal emulator.
struct Pty {
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn std::io::Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Pty {
    fn spawn(bin: &Path, args: &[&str], rows: u16, cols: u16) -> Pty {
        use portable_pty::{CommandBuilder, PtySize, native_pty_system};
        let pair = native_pty_system()
            .openpty(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 })
            .expect("opening a pseudo-terminal");
        let mut cmd = CommandBuilder::new(bin);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(cmd).expect("starting parley chat");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(rows).unwrap(),
            std::num::NonZeroU16::new(cols).unwrap(),
            0,
        )));
        let feed = screen.clone();
        std::thread::spawn(move || {
            let _master = pair.master; // kept open while the client runs
            let mut buf = [0u8; 8192];
            while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
                if n == 0 {
                    break;
                }
                feed.lock().unwrap().process(&buf[..n]);
            }
        });
        Pty { screen, writer, child }
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen satisfies `cond` (panics with the screen after [`DEADLINE`]).
    /// The screen is all there is to watch: a bounded poll.
    async fn wait_for(&self, what: &str, cond: impl Fn(&str) -> bool) {
        wait::until_ok(what, DEADLINE, || {
            let text = self.contents();
            std::future::ready(if cond(&text) { Ok(()) } else { Err(format!("the screen:\n{text}")) })
        })
        .await
    }

    fn type_keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_terminal_kick_and_msg_work_end_to_end() {
    let Some(bin) = parley_bin() else {
        eprintln!("SKIPPED in_a_terminal_kick_and_msg_work_end_to_end: set PARLEY_BIN (see the test above)");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut server = start_server(&bin, data.path(), "127.0.0.1:0").await;
    let base = format!("http://{}", server.addr);
    let api = Api::new(&base).unwrap();
    let alice = Credentials { username: "alice".into(), password: "alice-password".into() };
    let bob = Credentials { username: "bob".into(), password: "bob-password".into() };
    api.register(&alice).await.unwrap();
    api.register(&bob).await.unwrap();
    let alice_token = api.login(&alice).await.unwrap().token;
    let bob_token = api.login(&bob).await.unwrap().token;
    api.create_room(&alice_token, "lobby", false).await.unwrap();
    let http = reqwest::Client::new();
    let joined = http.post(format!("{base}/api/v1/rooms/lobby/join")).bearer_auth(&bob_token).send().await.unwrap();
    assert_eq!(joined.status().as_u16(), 200);
    post_message(&http, &base, &bob_token, "lobby", "two lines:\nsecond line").await;

    let mut pty = Pty::spawn(
        &bin,
        &["chat", &base, "--username", "alice", "--password", "alice-password", "--room", "lobby"],
        30,
        100,
    );
    pty.wait_for("the chat screen", |s| s.contains("● online") && s.contains("bob: two lines:")).await;
    assert!(pty.contents().contains("second line"), "a newline is a new line:\n{}", pty.contents());

    // A moderation command: alice (the owner) removes bob.
    pty.type_keys("/kick bob\r");
    pty.wait_for("the kick", |s| s.contains("removed bob from #lobby") && s.contains("— alice removed bob")).await;
    let members: Value = http
        .get(format!("{base}/api/v1/rooms/lobby/members"))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> =
        members["members"].as_array().unwrap().iter().filter_map(|m| m["username"].as_str()).collect();
    assert_eq!(names, vec!["alice"], "bob is no longer a member");

    // A direct conversation, named by the peer, with a first message.
    pty.type_keys("/msg bob hello bob\r");
    // Acknowledged: shown without "(sending…)".
    pty.wait_for("the conversation", |s| {
        s.contains(" @bob ") && s.contains("alice: hello bob") && !s.contains("sending…")
    })
    .await;
    wait::until_some("bob's conversation to show alice's message", DEADLINE, || async {
        let dms: Value =
            http.get(format!("{base}/api/v1/dms")).bearer_auth(&bob_token).send().await.unwrap().json().await.unwrap();
        assert_eq!(dms["conversations"][0]["peer"]["username"], "alice", "{dms}");
        (dms["conversations"][0]["last_message"]["body"] == "hello bob").then_some(())
    })
    .await;

    pty.type_keys("\x03"); // Ctrl-C
    wait::until("parley chat to quit on Ctrl-C", DEADLINE, || pty.child.try_wait().unwrap().is_some()).await;
    server.child.kill();
}
