//! Test support: a real Redis Cluster of private `redis-server` processes (the unit tests of the
//! broker and the job queue, and `tests/it`, run against it). Not used by the server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long starting, a failover or a restart may take before the helper gives up.
const WAIT: Duration = Duration::from_secs(60);

/// `masters` masters with `replicas` replicas each, on ports below the ephemeral range (cluster bus
/// ports too), in a temporary directory; every process is killed (by its own pid) on drop.
pub struct RedisCluster {
    dir: PathBuf,
    ports: Vec<u16>,
    bus: u16,
    masters: usize,
    procs: Vec<Option<Child>>,
}

fn free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out =
        Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "Redis Cluster: timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl RedisCluster {
    /// Starts the servers, creates the cluster and waits until every node reports `cluster_state:ok`
    /// (and every replica is linked to its master). Panics when `redis-server` or `redis-cli` is
    /// missing (Debian package `redis-server`).
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        let n = masters * (1 + replicas);
        let (base, bus) = (0..50)
            .map(|_| {
                let base = 20_000 + rand::random::<u16>() % 10_000;
                (base, base + 1_000)
            })
            .find(|(base, bus)| (0..n as u16).all(|i| free(base + i) && free(bus + i)))
            .expect("free ports for a private Redis Cluster");
        let dir = std::env::temp_dir().join(format!("parley-redis-cluster-{}", hex::encode(rand::random::<[u8; 6]>())));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut c = RedisCluster {
            dir,
            ports: (0..n as u16).map(|i| base + i).collect(),
            bus: bus - base,
            masters,
            procs: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            c.spawn(i);
        }
        for &p in &c.ports {
            until("the servers to answer", || cli(p, &["PING"]).is_some_and(|o| o.contains("PONG")));
        }
        let addrs: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli (Debian package redis-server)");
        assert!(status.success(), "redis-cli --cluster create failed");
        c.wait_ok();
        c
    }

    fn spawn(&mut self, i: usize) {
        let port = self.ports[i];
        let log = std::fs::File::create(self.dir.join(format!("{port}.log"))).expect("a log file");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-port", &(port + self.bus).to_string()])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        self.procs[i] = Some(child);
    }

    /// Waits until every running node says `cluster_state:ok` and every running replica's link to
    /// its master is up.
    pub fn wait_ok(&self) {
        for (i, &p) in self.ports.iter().enumerate() {
            if self.procs[i].is_none() {
                continue;
            }
            until("cluster_state:ok", || cli(p, &["CLUSTER", "INFO"]).is_some_and(|o| o.contains("cluster_state:ok")));
            until("replicas linked", || {
                cli(p, &["INFO", "replication"])
                    .is_some_and(|o| o.contains("role:master") || o.contains("master_link_status:up"))
            });
        }
    }

    /// The seed URLs, comma-separated: `--redis-url` for a node.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.ports[..self.masters].iter().map(|p| format!("redis://127.0.0.1:{p}")).collect();
        seeds.join(",")
    }

    /// Any running node's port.
    fn live_port(&self) -> u16 {
        let i = self.procs.iter().position(Option::is_some).expect("a running node");
        self.ports[i]
    }

    /// The index of the node now serving as master of `key`'s slot.
    pub fn master_of(&self, key: &str) -> usize {
        self.find_master(key).unwrap_or_else(|| panic!("no master owns the slot of {key}"))
    }

    fn find_master(&self, key: &str) -> Option<usize> {
        let port = self.live_port();
        let slot: u16 = cli(port, &["CLUSTER", "KEYSLOT", key]).and_then(|o| o.trim().parse().ok())?;
        let nodes = cli(port, &["CLUSTER", "NODES"])?;
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let owns = f[8..].iter().any(|r| match r.split_once('-') {
                Some((a, b)) => a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b),
                None => r.parse::<u16>().is_ok_and(|s| s == slot),
            });
            if owns {
                let port: u16 = f[1].split(['@', ':']).nth(1).and_then(|p| p.parse().ok())?;
                return self.ports.iter().position(|p| *p == port);
            }
        }
        None
    }

    /// Kills node `i` (SIGKILL, by its pid).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.procs[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again (it rejoins with its saved cluster configuration).
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        let p = self.ports[i];
        until("the restarted server to answer", || cli(p, &["PING"]).is_some_and(|o| o.contains("PONG")));
    }

    /// Waits until `key`'s slot has a live master again (after a failover) and the cluster is ok.
    pub fn wait_failover(&self, key: &str) {
        until("a new master", || self.find_master(key).is_some_and(|i| self.procs[i].is_some()));
        self.wait_ok();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
