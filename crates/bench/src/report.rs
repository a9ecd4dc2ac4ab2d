//! The result of a run: one JSON object (`--json`) or a human summary.

use crate::stats::{Counters, DelayedAckBand, Pct, ProcSample, fmt_us};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub url: String,
    /// How the receiving (non-sender) connections connect: `ws`, `sse` or `tcp`.
    pub transport: String,
    pub prefix: String,
    pub threads: usize,
    pub setup: Setup,
    pub connections: Connections,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow: Option<Slow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logins: Option<Logins>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
    pub generator: Generator,
    pub errors: Errors,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Setup {
    pub users: usize,
    pub rooms: usize,
    pub users_per_room: usize,
    pub seconds: f64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Connections {
    pub requested: usize,
    pub opened: usize,
    pub failed: usize,
    /// From the first connect attempt to the last `hello`.
    pub connect_seconds: f64,
    pub connect_rate_per_s: f64,
    /// Connect + upgrade + `hello`, per connection (µs).
    pub connect_latency_us: Pct,
    /// Opened connections still open when the run ended (not counting deliberately slow ones).
    pub open_at_end: usize,
    pub source_addrs: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Load {
    pub senders: usize,
    pub rate_per_sender: f64,
    pub target_total_rate: f64,
    pub body_bytes: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub counters: Counters,
    /// Sends more than `late_threshold_ms` behind their scheduled instant.
    pub late_threshold_ms: f64,
    /// How far behind schedule sends left (µs), measured window.
    pub send_lag_us: Pct,
    pub acked_per_s: f64,
    /// Deliveries received during the measured window, per second.
    pub deliveries_per_s: f64,
    pub expected_deliveries: u64,
    pub lost_deliveries: u64,
    /// Unique deliveries beyond the expected ones (sends delivered but never acknowledged).
    pub surplus_deliveries: u64,
    pub duplicated_deliveries: u64,
    pub reordered_deliveries: u64,
    /// End-to-end latency (scheduled send → received) of messages sent in the measured window,
    /// at the receivers that kept reading (µs).
    pub latency_us: Pct,
    /// Send → ack latency (µs).
    pub ack_latency_us: Pct,
    /// Whether the ack latencies show the delayed-ACK signature (a band around 40 ms).
    pub ack_40ms_band: DelayedAckBand,
    /// Seconds spent after the last send waiting for acks and deliveries.
    pub drain_s: f64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Slow {
    pub fraction: f64,
    pub connections: usize,
    pub disconnected_by_server: usize,
    /// Close codes seen on slow connections (code → count; 0 = no close frame).
    pub close_codes: Vec<(u16, usize)>,
}

/// The `logins` scenario: concurrent logins and what they cost the server.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Logins {
    pub concurrent: usize,
    pub ok: usize,
    /// Refused with 429 (the server's password hashing queue was full).
    pub rate_limited: usize,
    pub other_status: usize,
    /// Requests that got no HTTP answer.
    pub failed: usize,
    /// From the first request to the last answer.
    pub seconds: f64,
    /// Request → answer, per login (µs).
    pub latency_us: Pct,
    pub rss_before_kib: u64,
    /// Largest RSS sampled (every 20 ms) during the storm.
    pub rss_peak_seen_kib: u64,
    /// The server's VmHWM after the storm (peak RSS since it started).
    pub rss_hwm_kib: u64,
    /// RSS one second after the last answer.
    pub rss_after_kib: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Recovery {
    pub messages: usize,
    pub page_limit: usize,
    pub runs: Vec<RecoveryRun>,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct RecoveryRun {
    /// Reconnect start → `hello`.
    pub reconnect_ms: f64,
    /// Reconnect start → every missed message fetched.
    pub total_ms: f64,
    pub pages: usize,
    pub recovered: usize,
    pub first_seq: u64,
    pub last_seq: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Server {
    pub pid: u32,
    pub before_connect: ProcSample,
    pub after_connect: ProcSample,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start: Option<ProcSample>,
    pub end: ProcSample,
    /// (RSS after connecting − RSS before) / connections opened.
    pub rss_bytes_per_connection: f64,
    /// Server CPU time over the measured window.
    pub cpu_us_window: u64,
    /// Server CPU time (µs) / deliveries received in the window.
    pub cpu_us_per_delivery: f64,
    /// Server CPU use in cores over the window.
    pub cpu_cores: f64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Generator {
    pub cpu_us_window: u64,
    pub cpu_cores: f64,
    pub cpu_us_per_delivery: f64,
    /// Deliveries per second one core of the generator handles at this load
    /// (deliveries_per_s / cpu_cores): its ceiling when it is the bottleneck.
    pub deliveries_per_core_s: f64,
    pub rss_kib: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Errors {
    pub connect_failures: usize,
    /// First few distinct connect errors.
    pub connect_error_samples: Vec<String>,
    /// Non-slow connections that ended before the run did.
    pub unexpected_disconnects: usize,
    pub unexpected_close_codes: Vec<(u16, usize)>,
    pub error_frames: u64,
    pub send_errors: u64,
    pub unparsable_frames: u64,
    pub foreign_deliveries: u64,
}

impl Report {
    pub fn human(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "parley bench — scenario {} against {}, receivers over {} (prefix {}, {} thread{})",
            self.scenario,
            self.url,
            self.transport,
            self.prefix,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        );
        let s = &self.setup;
        let _ = writeln!(
            o,
            "setup:        {} users, {} rooms ({} users/room) in {:.1}s",
            s.users, s.rooms, s.users_per_room, s.seconds
        );
        if let Some(l) = &self.logins {
            let _ = writeln!(
                o,
                "logins:       {} at once: {} ok, {} rate limited (429), {} other, {} failed, in {:.2}s; latency {}",
                l.concurrent,
                l.ok,
                l.rate_limited,
                l.other_status,
                l.failed,
                l.seconds,
                l.latency_us.human()
            );
            let _ = writeln!(
                o,
                "server RSS:   {:.1} MiB before, {:.1} MiB peak sampled, {:.1} MiB VmHWM, {:.1} MiB 1 s after",
                l.rss_before_kib as f64 / 1024.0,
                l.rss_peak_seen_kib as f64 / 1024.0,
                l.rss_hwm_kib as f64 / 1024.0,
                l.rss_after_kib as f64 / 1024.0
            );
            return o;
        }
        let c = &self.connections;
        let _ = (self.recovery.is_none()).then(|| {
            writeln!(
                o,
                "connections:  {}/{} opened ({} failed) in {:.2}s = {:.0}/s; connect {}",
                c.opened,
                c.requested,
                c.failed,
                c.connect_seconds,
                c.connect_rate_per_s,
                c.connect_latency_us.human()
            )
        });
        if self.load.is_some() || self.scenario == "idle" {
            let _ = writeln!(o, "              {} still open at the end", c.open_at_end);
        }
        if let Some(l) = &self.load {
            let k = &l.counters;
            let _ = writeln!(
                o,
                "load:         {} senders × {:.1} msg/s (total {:.0}/s), {:.0}s warmup + {:.0}s measured, body {} B",
                l.senders, l.rate_per_sender, l.target_total_rate, l.warmup_s, l.duration_s, l.body_bytes
            );
            let _ = writeln!(
                o,
                "sends:        {} sent, {} acked ({:.0}/s in window), {} duplicate acks, {} late > {}ms (lag {})",
                k.sends,
                k.acks,
                l.acked_per_s,
                k.duplicate_acks,
                k.sends_late,
                l.late_threshold_ms,
                l.send_lag_us.human()
            );
            let _ = writeln!(
                o,
                "deliveries:   {} received, {:.0}/s in window; expected {}, lost {}, duplicated {}, reordered {}, surplus {}",
                k.deliveries,
                l.deliveries_per_s,
                l.expected_deliveries,
                l.lost_deliveries,
                l.duplicated_deliveries,
                l.reordered_deliveries,
                l.surplus_deliveries
            );
            let _ = writeln!(o, "latency e2e:  {}", l.latency_us.human());
            let _ = writeln!(o, "latency ack:  {}", l.ack_latency_us.human());
            if l.ack_40ms_band.flagged {
                let _ = writeln!(
                    o,
                    "WARNING:      {:.1}% of acks took 35-45 ms (25-35: {:.1}%, 45-55: {:.1}%): the delayed-ACK \
                     signature; is TCP_NODELAY set on the server's sockets?",
                    l.ack_40ms_band.band * 100.0,
                    l.ack_40ms_band.below * 100.0,
                    l.ack_40ms_band.above * 100.0
                );
            }
        }
        if let Some(sl) = &self.slow {
            let _ = writeln!(
                o,
                "slow:         {} connections stopped reading ({:.1}%); {} disconnected by the server; close codes {:?}",
                sl.connections,
                sl.fraction * 100.0,
                sl.disconnected_by_server,
                sl.close_codes
            );
        }
        if let Some(r) = &self.recovery {
            let _ = writeln!(
                o,
                "recovery:     {} missed messages, pages of {}: median {:.1}ms (min {:.1}, max {:.1}) over {} runs",
                r.messages,
                r.page_limit,
                r.median_ms,
                r.min_ms,
                r.max_ms,
                r.runs.len()
            );
            for (i, run) in r.runs.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "  run {}: reconnect {:.1}ms, recovered {} (seq {}..{}) in {} pages, total {:.1}ms",
                    i + 1,
                    run.reconnect_ms,
                    run.recovered,
                    run.first_seq,
                    run.last_seq,
                    run.pages,
                    run.total_ms
                );
            }
        }
        if let Some(sv) = &self.server {
            let _ = writeln!(
                o,
                "server {}:   RSS {} MiB before connect → {} MiB connected → {} MiB end (HWM {} MiB); {:.0} B per connection",
                sv.pid,
                sv.before_connect.rss_kib / 1024,
                sv.after_connect.rss_kib / 1024,
                sv.end.rss_kib / 1024,
                sv.end.hwm_kib / 1024,
                sv.rss_bytes_per_connection
            );
            if self.load.is_some() {
                let _ = writeln!(
                    o,
                    "              CPU {} in window = {:.2} cores, {:.2} µs per delivered message",
                    fmt_us(sv.cpu_us_window),
                    sv.cpu_cores,
                    sv.cpu_us_per_delivery
                );
            }
        }
        let g = &self.generator;
        if self.load.is_some() {
            let _ = writeln!(
                o,
                "generator:    {:.2} cores in window, {:.2} µs per delivery ⇒ ~{:.0} deliveries/s per core; RSS {} MiB",
                g.cpu_cores,
                g.cpu_us_per_delivery,
                g.deliveries_per_core_s,
                g.rss_kib / 1024
            );
        }
        if self.scenario == "idle" {
            let _ = writeln!(o, "generator:    RSS {} MiB", g.rss_kib / 1024);
        }
        let e = &self.errors;
        let _ = writeln!(
            o,
            "errors:       {} connect failures, {} unexpected disconnects {:?}, {} error frames, {} send errors, {} unparsable frames",
            e.connect_failures,
            e.unexpected_disconnects,
            e.unexpected_close_codes,
            e.error_frames,
            e.send_errors,
            e.unparsable_frames
        );
        for s in &e.connect_error_samples {
            let _ = writeln!(o, "  connect error: {s}");
        }
        o
    }
}

/// Counts occurrences, sorted by key.
pub fn tally(codes: impl IntoIterator<Item = u16>) -> Vec<(u16, usize)> {
    let mut m = std::collections::BTreeMap::new();
    for c in codes {
        *m.entry(c).or_insert(0usize) += 1;
    }
    m.into_iter().collect()
}
