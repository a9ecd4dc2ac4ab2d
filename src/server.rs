//! Assembling and running a Parley node, and the shutdown protocol.
//!
//! [`run`] takes already bound listeners (tests bind port 0) and a shutdown future. When that future
//! completes:
//! 1. the TCP listener stops; new messages are refused; every connection stops reading, waits for the
//!    answers to the messages it already accepted and writes them and what is queued for it, then
//!    closes (WebSocket 1001, a last line on TCP, a `close` event on SSE) — see `core::conn`;
//! 2. the HTTP server stops accepting and lets running requests finish; live connections are given
//!    the grace period to drain;
//! 3. the ingest writer stores what was queued — every acknowledged message was already on disk,
//!    since acknowledgements follow the commit — and its last webhook deliveries are queued;
//! 4. the job workers finish the job in hand and stop, and with them every other task the node spawned
//!    (the retention sweep, the webhook catch-up, the blob collector, the metrics listener), all awaited
//!    through one tracker (see `Node`); jobs not run stay queued (Redis) or are lost with the process
//!    (in-process queue);
//! 5. the store closes. Steps 2–5 are bounded by [`SHUTDOWN_GRACE`] each.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::auth::{LoginThrottle, Passwords, Tokens};
use crate::broker::local::LocalBroker;
use crate::broker::redis::RedisBroker;
use crate::broker::{BrokerSink, DynBroker};
use crate::config::Config;
use crate::core::chat::files::{FileLimits, Files};
use crate::core::chat::{AuthServices, Chat, ChatLimits};
use crate::core::domain::NodeId;
use crate::core::hub::Hub;
use crate::core::ingest::{Ingest, IngestOptions};
use crate::core::limits::Rate;
use crate::http::deadline::Deadline;
use crate::http::{AppState, ClientAddr, HttpConfig, NoDelayListener};
use crate::jobs::runner::{Runner, RunnerConfig};
use crate::jobs::{DynQueue, memory::MemoryQueue, redis::RedisQueue};
use crate::store::DynStore;
use crate::store::memory::MemoryStore;
use crate::store::pg::PgStore;
use crate::store::sql::SqlStore;
use crate::tcp::TcpConfig;

pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Opens the store the configuration names.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    Ok(match config.database_url.as_deref() {
        None => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
            let path = config.data_dir.join("parley.db");
            Arc::new(SqlStore::open_sqlite(&path).await.with_context(|| format!("opening {}", path.display()))?)
        }
        Some("memory:") => Arc::new(MemoryStore::new()),
        Some(url) if url.starts_with("sqlite:") => {
            Arc::new(SqlStore::open_sqlite_url(url).await.with_context(|| format!("opening {url}"))?)
        }
        // The URL may hold a password: it stays out of the error message.
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            probe_postgres(url).await?;
            Arc::new(PgStore::connect(url).await.context("connecting to PostgreSQL")?)
        }
        Some(other) => {
            let scheme = other.split(':').next().unwrap_or("");
            anyhow::bail!("unsupported database URL scheme {scheme:?}: use sqlite:PATH, postgres://… or memory:")
        }
    })
}

/// Opens the blob store the configuration names (see `--blob-store`).
pub async fn open_blobs(config: &Config) -> anyhow::Result<crate::core::blobs::DynBlobStore> {
    let pg_url =
        config.database_url.as_deref().filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    Ok(match (config.blob_store.as_str(), pg_url) {
        ("postgres", Some(url)) | ("auto", Some(url)) => {
            let blobs =
                crate::blobs::pg::PgBlobs::connect(url).await.context("connecting the PostgreSQL blob store")?;
            Arc::new(blobs.with_clock(config.clock.0.clone()))
        }
        ("postgres", None) => anyhow::bail!("--blob-store postgres needs a postgres:// --database-url"),
        ("disk", _) | ("auto", None) => {
            let dir = config.data_dir.join("blobs");
            let blobs =
                crate::blobs::disk::DiskBlobs::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
            Arc::new(blobs.with_clock(config.clock.0.clone()))
        }
        (other, _) => anyhow::bail!("unknown --blob-store {other:?}: use auto, disk or postgres"),
    })
}

/// One connection attempt before the pool is built, so that a server that cannot be reached (refused,
/// unknown host, bad password) is reported at once with its cause, not as the pool's timeout after
/// retrying for seconds.
async fn probe_postgres(url: &str) -> anyhow::Result<()> {
    use sqlx::ConnectOptions;
    let options: sqlx::postgres::PgConnectOptions = url.parse().context("parsing the PostgreSQL URL")?;
    let conn = tokio::time::timeout(Duration::from_secs(10), options.connect())
        .await
        .map_err(|_| anyhow::anyhow!("connecting to PostgreSQL: no answer within 10 s"))?
        .context("connecting to PostgreSQL")?;
    let _ = sqlx::Connection::close(conn).await;
    Ok(())
}

/// How often webhooks are checked for messages no dispatcher queued (after a crash, a failure).
const WEBHOOK_CATCH_UP: Duration = Duration::from_secs(30);

/// In-process queue bound: jobs queued, delayed and running together.
const MEMORY_QUEUE_CAPACITY: usize = 100_000;

/// The job queue the configuration names: Redis when `--redis-url` is set, else in-process.
pub async fn open_queue(config: &Config) -> anyhow::Result<DynQueue> {
    Ok(match config.redis_url.as_deref() {
        // The URL may hold a password: it stays out of the error message.
        Some(url) => Arc::new(
            RedisQueue::connect(url, &format!("{}:jobs", config.redis_prefix))
                .await
                .context("opening the Redis job queue")?,
        ),
        None => Arc::new(MemoryQueue::new(MEMORY_QUEUE_CAPACITY)),
    })
}

/// The token secret: from the configuration, else the one kept in the data directory, else a new one
/// written there (readable by the owner only).
pub fn load_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &config.jwt_secret {
        anyhow::ensure!(s.len() >= 16, "the token secret must be at least 16 bytes");
        return Ok(s.as_bytes().to_vec());
    }
    let path = config.data_dir.join("token-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!("{} is too short; delete it to generate a new one", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    info!(path = %path.display(), "generated a new token secret");
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}

/// The sockets a node serves, bound by the caller (tests bind port 0).
pub struct Listeners {
    pub http: TcpListener,
    /// The TCP line protocol, if enabled.
    pub tcp: Option<TcpListener>,
}

impl Listeners {
    /// Binds what `config` asks for.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let http = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let tcp = match config.tcp_listen.as_str() {
            "off" | "" => None,
            addr => Some(TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?),
        };
        Ok(Listeners { http, tcp })
    }
}

/// What a node serves, told once it is ready (see [`run_with`]).
#[derive(Debug, Clone)]
pub struct Ready {
    pub http: SocketAddr,
    /// The TCP line protocol, if enabled.
    pub tcp: Option<SocketAddr>,
    /// The metrics and profiling listener (`--metrics-listen`), if any.
    pub metrics: Option<SocketAddr>,
    /// HTTPS/WSS and TLS on the line protocol.
    pub tls: bool,
}

/// Runs a node on `listeners` until `shutdown` completes, then shuts down as described above.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(config, listeners, shutdown, |_| {}).await
}

/// [`run`], calling `on_ready` once the store, Redis, the job queue, TLS and the metrics listener are
/// set up, just before serving; a start-up that fails returns its error without calling it.
pub async fn run_with(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&Ready),
) -> anyhow::Result<()> {
    let node = Node::build(config, listeners).await?;
    on_ready(&node.ready);
    node.run(shutdown).await
}

/// A node built and not yet serving HTTP: its background tasks already run on `tasks`.
///
/// Every task the node spawns is on one [`TaskTracker`] and stops on one token tree: `root` (the node's
/// life: job workers, sweeps, the blob collector, the metrics listener, metrics upkeep) and its child
/// `stopping` (cancelled when shutdown begins: the TCP accept loop, presence, resync, the HTTP server).
/// Dropping the node (a start-up error, or the caller dropping [`run`]) cancels `root`, so nothing it
/// started outlives it; a clean shutdown waits for the tracker within [`SHUTDOWN_GRACE`].
struct Node {
    ready: Ready,
    chat: Arc<Chat>,
    store: DynStore,
    http: HttpServing,
    tasks: TaskTracker,
    root: CancellationToken,
    stopping: CancellationToken,
    /// The ingest writer and the webhook dispatcher (on `tasks`), awaited in that order at shutdown.
    writer: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    _cancel_on_drop: DropGuard,
}

/// What the HTTP server needs once the node runs.
struct HttpServing {
    listener: TcpListener,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Below the connections' own write timeout (`core::conn`), a backstop on every socket.
    socket_deadline: Duration,
}

/// Runs `task` until it ends or `stop` is cancelled, whichever comes first.
async fn until(stop: CancellationToken, task: impl Future<Output = ()>) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = task => {}
    }
}

impl Node {
    /// Opens everything `config` names, spawns the background tasks and binds the metrics listener.
    async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Node> {
        let Listeners { http: listener, tcp } = listeners;
        config.validate()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            (None, None) => None,
            _ => anyhow::bail!("--tls-cert and --tls-key go together"),
        };
        let root = CancellationToken::new();
        let cancel_on_drop = root.clone().drop_guard();
        let stopping = root.child_token();
        let tasks = TaskTracker::new();
        // Installs the process-wide recorder before anything records.
        crate::observe::handle();
        tasks.spawn(until(root.clone(), crate::observe::upkeep()));
        let store = open_store(&config).await?;
        let blobs = open_blobs(&config).await?;
        let secret = load_secret(&config)?;
        let node = NodeId::generate();
        let broker = open_broker(&config, node).await?;
        let hub = Hub::with_bounds(config.send_queue, config.send_queue_bytes, node);
        broker.attach(hub.clone() as Arc<dyn BrokerSink>);
        if let Some(interest) = broker.interest() {
            hub.set_interest(interest);
        }
        let jobs = open_queue(&config).await?;
        let (hook_tx, hook_rx) = tokio::sync::mpsc::channel(256);
        let (ingest, writer) = Ingest::start_with(
            store.clone(),
            broker.clone(),
            IngestOptions {
                queue: config.max_batch * 4,
                max_batch: config.max_batch,
                send_timeout: config.send_timeout(),
                hook: Some(hook_tx),
                batches: config.batches_started.clone(),
            },
        );
        let writer = tasks.spawn(async move {
            let _ = writer.await;
        });
        let dispatcher = tasks.spawn(crate::jobs::webhook::dispatch(hook_rx, store.clone(), jobs.clone()));
        start_jobs(&config, &store, &jobs, &tasks, &root)?;
        let chat = Arc::new(
            Chat::new(
                store.clone(),
                broker.clone(),
                hub,
                ingest,
                auth_services(&config, &secret)?,
                chat_limits(&config),
            )
            .with_clock(config.clock.0.clone()),
        );
        if broker.distributed() {
            tasks.spawn(chat.clone().run_presence(config.node_ttl(), stopping.clone()));
        }
        if let Some(reconnects) = broker.reconnects() {
            tasks.spawn(chat.clone().run_resync(reconnects, broker.catch_up(), stopping.clone()));
        }
        let files = Arc::new(Files::new(
            chat.clone(),
            blobs,
            FileLimits {
                max_upload_bytes: config.max_upload_bytes,
                quota_bytes: config.upload_quota_bytes,
                idle_timeout: Duration::from_secs(config.upload_idle_secs.max(1)),
                ..FileLimits::default()
            },
        ));
        tasks.spawn(crate::jobs::blob_gc::run(
            files.clone(),
            Duration::from_secs(config.blob_gc_secs.max(1)),
            Duration::from_secs(config.blob_gc_grace_secs),
            config.clock.0.clone(),
            root.clone(),
        ));
        let state = Arc::new(AppState { chat: chat.clone(), jobs, files, config: http_config(&config) });
        let app = crate::http::router(state);
        // Metrics and profiles on their own port, if asked; it closes with the node.
        let metrics_addr = match config.metrics_listen {
            Some(addr) => {
                let l =
                    TcpListener::bind(addr).await.with_context(|| format!("binding the metrics listener {addr}"))?;
                let bound = l.local_addr()?;
                let serve = axum::serve(l, crate::http::ops::router()).into_future();
                tasks.spawn(until(root.clone(), async move {
                    let _ = serve.await;
                }));
                Some(bound)
            }
            None => None,
        };
        let ready = Ready {
            http: listener.local_addr()?,
            tcp: tcp.as_ref().map(|t| t.local_addr()).transpose()?,
            metrics: metrics_addr,
            tls: tls.is_some(),
        };
        if let Some(tcp) = tcp {
            let cfg = TcpConfig {
                keepalive: config.keepalive(),
                max_line: config.max_message_bytes + 512,
                write_timeout: config.write_timeout(),
                lines_per_sec: config.tcp_lines_per_sec,
                burst: config.tcp_lines_per_sec * 5.0,
                tls: tls.clone(),
            };
            tasks.spawn(crate::tcp::serve(tcp, chat.clone(), cfg, stopping.clone()));
        }
        let http = HttpServing { listener, app, tls, socket_deadline: config.write_timeout() * 2 };
        Ok(Node {
            ready,
            chat,
            store,
            http,
            tasks,
            root,
            stopping,
            writer,
            dispatcher,
            _cancel_on_drop: cancel_on_drop,
        })
    }

    /// Serves until `shutdown` completes, then runs the shutdown protocol (module docs).
    async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Node { ready: _, chat, store, http, tasks, root, stopping, writer, dispatcher, _cancel_on_drop } = self;
        let (closer, stop) = (chat.clone(), stopping.clone());
        let graceful = async move {
            shutdown.await;
            info!("shutting down");
            // The TCP accept loop, presence and resync stop; new messages are refused.
            stop.cancel();
            closer.close();
        };
        let HttpServing { listener, app, tls, socket_deadline } = http;
        // Both listeners give the same boxed server future.
        let server = match tls {
            Some(acceptor) => axum::serve(
                Deadline::new(crate::tls::TlsListener::new(listener, acceptor)?, socket_deadline),
                app.into_make_service_with_connect_info::<ClientAddr>(),
            )
            .with_graceful_shutdown(graceful)
            .into_future(),
            None => axum::serve(
                Deadline::new(NoDelayListener(listener), socket_deadline),
                app.into_make_service_with_connect_info::<ClientAddr>(),
            )
            .with_graceful_shutdown(graceful)
            .into_future(),
        };
        {
            // Once shutdown begins, requests still running get the grace period, not forever.
            let mut server = std::pin::pin!(server);
            tokio::select! {
                r = &mut server => r.context("http server")?,
                _ = async { stopping.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                    warn!("requests still running after the grace period; stopping anyway");
                }
            }
        }
        // Connections drain by themselves (they stop reading, write the answers to what they accepted
        // and what is queued, then close: `core::conn`); the writer keeps storing meanwhile.
        let drained = async {
            while chat.hub().connection_count() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
            warn!(open = chat.hub().connection_count(), "connections still draining after the grace period");
        }
        drop(chat);
        if tokio::time::timeout(SHUTDOWN_GRACE, writer).await.is_err() {
            warn!("the message writer did not finish in time");
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, dispatcher).await.is_err() {
            warn!("queueing the last webhook deliveries did not finish in time");
        }
        // Job workers finish the job in hand; sweeps, the collector and the metrics listener stop.
        root.cancel();
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait()).await.is_err() {
            warn!(running = tasks.len(), "background tasks did not stop in time");
        }
        store.close().await;
        info!("stopped");
        Ok(())
    }
}

/// The broker the configuration names: Redis (the cluster) when `--redis-url` is set, else in-process.
async fn open_broker(config: &Config, node: NodeId) -> anyhow::Result<DynBroker> {
    Ok(match &config.redis_url {
        None => Arc::new(LocalBroker::new()),
        Some(url) => {
            // A token from one node must be good on every other.
            anyhow::ensure!(
                config.jwt_secret.is_some(),
                "with --redis-url every node needs the same --jwt-secret (PARLEY_JWT_SECRET)"
            );
            let broker = RedisBroker::connect(url, &config.redis_prefix, node).await?;
            info!(%node, "joined the cluster through Redis");
            Arc::new(broker)
        }
    })
}

/// Spawns the job runner (retention purges, webhook deliveries), the webhook catch-up and the retention
/// sweep on `tasks`, all stopping with `stop`.
fn start_jobs(
    config: &Config,
    store: &DynStore,
    jobs: &DynQueue,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let runner = Runner::new(
        jobs.clone(),
        RunnerConfig {
            workers: config.job_workers,
            max_attempts: config.job_max_attempts,
            backoff_base: Duration::from_millis(config.job_backoff_ms),
            backoff_max: Duration::from_secs(600),
            job_timeout: Duration::from_millis(config.webhook_timeout_ms).max(Duration::from_secs(30)),
            maintenance_every: Duration::from_secs(5),
            node_stale_after: Duration::from_secs(30),
        },
    )
    .handle(crate::jobs::retention::KIND, Arc::new(crate::jobs::retention::Purge { store: store.clone() }))
    .handle(
        crate::jobs::webhook::KIND,
        Arc::new(crate::jobs::webhook::Deliver::new(
            store.clone(),
            Duration::from_millis(config.webhook_timeout_ms.max(1)),
            config.webhook_allow_private,
            config.webhook_ca_file.as_deref(),
        )?),
    )
    .spawn(stop.clone());
    tasks.spawn(async move {
        if runner.await.is_err() {
            warn!("the job runner panicked");
        }
    });
    tasks.spawn(crate::jobs::webhook::catch_up_every(store.clone(), jobs.clone(), WEBHOOK_CATCH_UP, stop.clone()));
    tasks.spawn(crate::jobs::retention::sweep(
        store.clone(),
        jobs.clone(),
        Duration::from_secs(config.retention_sweep_secs.max(1)),
        config.clock.0.clone(),
        stop.clone(),
    ));
    Ok(())
}

fn auth_services(config: &Config, secret: &[u8]) -> anyhow::Result<AuthServices> {
    Ok(AuthServices {
        passwords: Arc::new(Passwords::with_pool(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.password_hash_threads,
            config.password_hash_queue,
        )?),
        tokens: Arc::new(Tokens::new(secret, config.token_ttl())),
        throttle: LoginThrottle::new(config.login_free_failures),
    })
}

fn chat_limits(config: &Config) -> ChatLimits {
    ChatLimits {
        max_message_bytes: config.max_message_bytes,
        messages: Rate { per_sec: config.messages_per_sec, burst: config.message_burst },
        auth: Rate { per_sec: config.auth_per_minute / 60.0, burst: config.auth_burst },
        connections_per_user: config.max_connections_per_user,
        connections_total: config.max_connections,
    }
}

fn http_config(config: &Config) -> HttpConfig {
    HttpConfig {
        allowed_origins: config.allowed_origins.iter().map(|o| o.trim().to_ascii_lowercase()).collect(),
        max_frame_bytes: config.max_frame_bytes,
        max_body_bytes: config.max_body_bytes,
        keepalive: config.keepalive(),
        write_timeout: config.write_timeout(),
        write_coalesce: Duration::from_millis(config.write_coalesce_ms),
        metrics_on_public_port: config.metrics_listen.is_none(),
        trusted_proxies: config.trusted_proxies.clone(),
    }
}
