//! Configuration: every knob is a flag and a `PARLEY_*` environment variable (`parley serve --help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

use crate::core::ports::clock::{DynClock, SystemClock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The clock a node runs on ([`Config::clock`]); [`SystemClock`] unless a test sets another.
#[derive(Clone)]
pub struct NodeClock(pub DynClock);

impl Default for NodeClock {
    fn default() -> Self {
        NodeClock(Arc::new(SystemClock))
    }
}

impl std::fmt::Debug for NodeClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeClock")
    }
}

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Address for HTTP, WebSocket and the web page.
    #[arg(long, env = "PARLEY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address for the TCP line protocol (`nc HOST PORT`); `off` to disable.
    #[arg(long, env = "PARLEY_TCP_LISTEN", default_value = "127.0.0.1:7070")]
    pub tcp_listen: String,

    /// Lines per second a TCP connection may send (bursts of five times that are allowed).
    #[arg(long, env = "PARLEY_TCP_LINES_PER_SEC", default_value_t = 20.0)]
    pub tcp_lines_per_sec: f64,

    /// Other origins (e.g. `https://chat.example.com`) allowed to open WebSockets and make state-changing
    /// requests from a browser, comma-separated. The server's own origin is always allowed.
    #[arg(long, env = "PARLEY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// A separate address for `/metrics` and the profiling endpoints (`/debug/pprof/…`), e.g.
    /// `127.0.0.1:9090`. When set, `/metrics` is no longer served on `--listen`; without it, `/metrics`
    /// is on `--listen` and profiling is off.
    #[arg(long, env = "PARLEY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Reverse proxies (addresses or CIDR blocks, comma-separated, e.g. `10.0.0.0/8,127.0.0.1`) whose
    /// `X-Forwarded-For` names the client: per-address limits then count the client's address, not the
    /// proxy's. From any other peer the header is ignored.
    #[arg(long, env = "PARLEY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Directory for the SQLite database and the generated token secret.
    #[arg(long, env = "PARLEY_DATA_DIR", default_value = "./parley-data")]
    pub data_dir: PathBuf,

    /// Database: `sqlite:PATH`, `postgres://USER@HOST/DB`, or `memory:` (nothing kept). Default: SQLite in
    /// the data directory.
    #[arg(long, env = "PARLEY_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Redis for running several nodes (`redis://HOST:6379`): events fan out through it, and each node
    /// keeps presence with the others. Several comma-separated URLs (`redis://h1:7000,redis://h2:7001`)
    /// name seed nodes of a Redis Cluster: rooms then use sharded pub/sub. Without it the node runs alone.
    #[arg(long, env = "PARLEY_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of this cluster's Redis keys and channel, so several clusters can share one Redis.
    #[arg(long, env = "PARLEY_REDIS_PREFIX", default_value = "parley")]
    pub redis_prefix: String,

    /// Seconds after which a node that stopped sending heartbeats (it crashed, or lost Redis) is taken
    /// as gone and its users shown offline. Heartbeats go every third of this.
    #[arg(long, env = "PARLEY_NODE_TTL_SECS", default_value_t = 15)]
    pub node_ttl_secs: u64,

    /// Secret that signs tokens. Default: generated on first start and kept in the data directory.
    #[arg(long, env = "PARLEY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// How long a login token (and its session) lasts, in seconds.
    #[arg(long, env = "PARLEY_TOKEN_TTL_SECS", default_value_t = 86_400)]
    pub token_ttl_secs: u64,

    /// Seconds between WebSocket pings (SSE comments; TCP keepalive idle time); a WebSocket silent for
    /// twice this is closed (4002).
    #[arg(long, env = "PARLEY_KEEPALIVE_SECS", default_value_t = 20)]
    pub keepalive_secs: u64,

    /// Slow-client time bound, in seconds: a delivery queued or a write pending longer closes the
    /// connection as too slow (4008); a socket write stalled twice this long drops it.
    #[arg(long, env = "PARLEY_WRITE_TIMEOUT_SECS", default_value_t = 10)]
    pub write_timeout_secs: u64,

    /// Milliseconds a busy WebSocket connection (one that wrote less than this long ago) gathers
    /// deliveries before writing them together: fewer system calls per message in busy rooms, at most
    /// this much added latency there, none for a quiet connection. 0 writes every delivery at once.
    #[arg(long, env = "PARLEY_WRITE_COALESCE_MS", default_value_t = 0)]
    pub write_coalesce_ms: u64,

    /// Largest message body, in bytes of UTF-8.
    #[arg(long, env = "PARLEY_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,

    /// Largest WebSocket frame a client may send, in bytes.
    #[arg(long, env = "PARLEY_MAX_FRAME_BYTES", default_value_t = 65_536)]
    pub max_frame_bytes: usize,

    /// Largest HTTP request body, in bytes.
    #[arg(long, env = "PARLEY_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,

    /// Frames queued per connection before the client is disconnected as too slow (close code 4008).
    #[arg(long, env = "PARLEY_SEND_QUEUE", default_value_t = 1024)]
    pub send_queue: usize,

    /// Bytes queued per connection (each delivery counted by an estimate of its encoded size) before
    /// the client is disconnected as too slow (close code 4008).
    #[arg(long, env = "PARLEY_SEND_QUEUE_BYTES", default_value_t = crate::core::hub::DEFAULT_QUEUE_BYTES)]
    pub send_queue_bytes: usize,

    /// Messages gathered into one store transaction at most (group commit).
    #[arg(long, env = "PARLEY_MAX_BATCH", default_value_t = 2048)]
    pub max_batch: usize,

    /// Milliseconds a send may wait for its outcome (queueing and storing included). Past it the
    /// sender gets `unavailable` and may resend with the same `client_id`.
    #[arg(long, env = "PARLEY_SEND_TIMEOUT_MS", default_value_t = 10_000)]
    pub send_timeout_ms: u64,

    /// Failed logins allowed per username before pauses start (doubling from 1 s, up to 15 min).
    #[arg(long, env = "PARLEY_LOGIN_FREE_FAILURES", default_value_t = 5)]
    pub login_free_failures: u32,

    /// argon2id memory cost in KiB. Lower it only for tests and benchmarks.
    #[arg(long, env = "PARLEY_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,

    /// argon2id iterations. Lower it only for tests and benchmarks.
    #[arg(long, env = "PARLEY_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,

    /// Password hashes (logins, registrations) computed at once; 0 means one per CPU core.
    #[arg(long, env = "PARLEY_PASSWORD_HASH_THREADS", default_value_t = 0)]
    pub password_hash_threads: usize,

    /// Logins and registrations that may wait for a password hash; beyond, `429 rate_limited`.
    #[arg(long, env = "PARLEY_PASSWORD_HASH_QUEUE", default_value_t = 64)]
    pub password_hash_queue: usize,

    /// Messages a user may send per second, across all their connections and transports.
    #[arg(long, env = "PARLEY_MESSAGES_PER_SEC", default_value_t = 100.0)]
    pub messages_per_sec: f64,

    /// Messages a user may send in a burst above `--messages-per-sec`.
    #[arg(long, env = "PARLEY_MESSAGE_BURST", default_value_t = 5000.0)]
    pub message_burst: f64,

    /// Login and registration attempts allowed per client IP address per minute.
    #[arg(long, env = "PARLEY_AUTH_PER_MINUTE", default_value_t = 120.0)]
    pub auth_per_minute: f64,

    /// Login and registration attempts a client IP address may make in a burst.
    #[arg(long, env = "PARLEY_AUTH_BURST", default_value_t = 100.0)]
    pub auth_burst: f64,

    /// Live connections (WebSocket, SSE and TCP together) one user may hold.
    #[arg(long, env = "PARLEY_MAX_CONNECTIONS_PER_USER", default_value_t = 32)]
    pub max_connections_per_user: usize,

    /// Live connections (WebSocket, SSE and TCP together) the server holds at most.
    #[arg(long, env = "PARLEY_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// TLS certificate chain (PEM). With `--tls-key`, HTTP becomes HTTPS/WSS and the TCP line
    /// protocol is TLS.
    #[arg(long, env = "PARLEY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "PARLEY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Runs of a background job before it is moved to the dead-letter list.
    #[arg(long, env = "PARLEY_JOB_MAX_ATTEMPTS", default_value_t = 8)]
    pub job_max_attempts: u32,

    /// First retry delay of a failed job in milliseconds; doubles per attempt (with jitter), up to 10 min.
    #[arg(long, env = "PARLEY_JOB_BACKOFF_MS", default_value_t = 1000)]
    pub job_backoff_ms: u64,

    /// Worker tasks running background jobs on this node.
    #[arg(long, env = "PARLEY_JOB_WORKERS", default_value_t = 4)]
    pub job_workers: usize,

    /// Seconds between retention sweeps (each queues a purge of every room with a retention period).
    #[arg(long, env = "PARLEY_RETENTION_SWEEP_SECS", default_value_t = 60)]
    pub retention_sweep_secs: u64,

    /// Where the node's time-based rules read "now" (message times, sessions, retention cutoffs): the
    /// system clock. Not a flag: a test that runs a node in-process sets a `ManualClock` here.
    #[arg(skip)]
    pub clock: NodeClock,

    /// Counts the batches the node's writer hands to the store. Not a flag: a test that runs a node
    /// in-process keeps a clone to wait for "a batch is in the store's hands" instead of sleeping.
    #[arg(skip)]
    pub batches_started: crate::core::ingest::BatchesStarted,

    /// Largest file accepted by an upload, in bytes (default 25 MiB).
    #[arg(long, env = "PARLEY_MAX_UPLOAD_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Bytes of files each user may keep uploaded (files of deleted or purged messages stop counting).
    /// Default: no quota.
    #[arg(long, env = "PARLEY_UPLOAD_QUOTA_BYTES")]
    pub upload_quota_bytes: Option<u64>,

    /// Seconds an upload may go without sending a byte before it is refused (`upload_stalled`).
    #[arg(long, env = "PARLEY_UPLOAD_IDLE_SECS", default_value_t = 30)]
    pub upload_idle_secs: u64,

    /// Where file bytes are kept: `disk` (the `blobs` directory under the data directory, one node),
    /// `postgres` (the database of `--database-url`, which every node reads), or `auto`: `postgres` when
    /// the database is PostgreSQL, else `disk`.
    #[arg(long, env = "PARLEY_BLOB_STORE", default_value = "auto")]
    pub blob_store: String,

    /// Seconds between passes of the blob collector (drops day-old unsent uploads, then blobs no file names).
    #[arg(long, env = "PARLEY_BLOB_GC_SECS", default_value_t = 600)]
    pub blob_gc_secs: u64,

    /// Blobs younger than this many seconds are left alone by the collector (an upload may be recording them).
    #[arg(long, env = "PARLEY_BLOB_GC_GRACE_SECS", default_value_t = 3600)]
    pub blob_gc_grace_secs: u64,

    /// Milliseconds a webhook receiver has to answer before the delivery counts as failed.
    #[arg(long, env = "PARLEY_WEBHOOK_TIMEOUT_MS", default_value_t = 5000)]
    pub webhook_timeout_ms: u64,

    /// Let webhooks deliver to loopback, private and link-local addresses (refused by default, so that
    /// room admins cannot make the server probe its own network).
    #[arg(long, env = "PARLEY_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// Extra root certificates (PEM) trusted for `https://` webhooks, e.g. a private CA; the Mozilla
    /// roots are always trusted.
    #[arg(long, env = "PARLEY_WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<PathBuf>,

    /// Log output format.
    #[arg(long, env = "PARLEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A CIDR block, or one address (a /32 or /128).
fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is neither an IP address nor a CIDR block (like 10.0.0.0/8)"))
}

impl Config {
    /// Parses a configuration from flags alone (defaults for the rest), as tests and tools need.
    pub fn from_flags<I: IntoIterator<Item = S>, S: Into<std::ffi::OsString> + Clone>(
        flags: I,
    ) -> Result<Self, clap::Error> {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            c: Config,
        }
        let args = std::iter::once(std::ffi::OsString::from("parley")).chain(flags.into_iter().map(Into::into));
        Wrap::try_parse_from(args).map(|w| w.c)
    }

    /// Refuses settings that parse but make no sense (negative or non-finite rates).
    pub fn validate(&self) -> anyhow::Result<()> {
        for (flag, v) in [
            ("--messages-per-sec", self.messages_per_sec),
            ("--message-burst", self.message_burst),
            ("--auth-per-minute", self.auth_per_minute),
            ("--auth-burst", self.auth_burst),
            ("--tcp-lines-per-sec", self.tcp_lines_per_sec),
        ] {
            anyhow::ensure!(v.is_finite() && v >= 0.0, "{flag} must be a finite number ≥ 0 (got {v})");
        }
        anyhow::ensure!(self.max_connections >= 1, "--max-connections must be at least 1");
        anyhow::ensure!(self.send_timeout_ms >= 1, "--send-timeout-ms must be at least 1");
        anyhow::ensure!(self.max_connections_per_user >= 1, "--max-connections-per-user must be at least 1");
        Ok(())
    }

    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_secs.max(1))
    }
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms.max(1))
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs.max(1))
    }
    pub fn node_ttl(&self) -> Duration {
        Duration::from_secs(self.node_ttl_secs.max(1))
    }
    pub fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.token_ttl_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn nonsense_rates_are_refused() {
        assert!(Config::from_flags(["--messages-per-sec", "5"]).unwrap().validate().is_ok());
        for bad in [vec!["--messages-per-sec", "NaN"], vec!["--auth-burst=-1"], vec!["--tcp-lines-per-sec", "inf"]] {
            assert!(Config::from_flags(bad.clone()).unwrap().validate().is_err(), "{bad:?}");
        }
        assert!(Config::from_flags(["--tls-cert", "c.pem"]).is_err(), "a certificate needs its key");
    }

    #[test]
    fn trusted_proxies_take_addresses_and_blocks() {
        let c = Config::from_flags(["--trusted-proxies", "10.0.0.0/8, 127.0.0.1,::1"]).unwrap();
        let shown: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        assert!(Config::from_flags(["--trusted-proxies", "nginx"]).is_err());
    }
}
