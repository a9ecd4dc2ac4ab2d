//! Shared run state: sharded recorders (histograms and counters), the measurement window, and
//! `/proc` sampling of the server and of the generator itself.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Highest value a histogram keeps (µs): one hour.
const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Plain counters, summed over shards.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub sends: u64,
    pub sends_late: u64,
    pub send_errors: u64,
    pub acks: u64,
    pub duplicate_acks: u64,
    /// Text deliveries carrying our stamp, as received (duplicates included).
    pub deliveries: u64,
    pub unique: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Deliveries from a sender that is not in the connection's room.
    pub foreign: u64,
    /// `message` frames that were not ours (system messages, other bodies).
    pub other_messages: u64,
    pub error_frames: u64,
    pub unparsable_frames: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.sends += o.sends;
        self.sends_late += o.sends_late;
        self.send_errors += o.send_errors;
        self.acks += o.acks;
        self.duplicate_acks += o.duplicate_acks;
        self.deliveries += o.deliveries;
        self.unique += o.unique;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.foreign += o.foreign;
        self.other_messages += o.other_messages;
        self.error_frames += o.error_frames;
        self.unparsable_frames += o.unparsable_frames;
    }
}

/// One shard of recorded data. Connections are assigned to shards round-robin, so with several
/// runtime threads locks are rarely contended.
pub struct Recorder {
    /// End-to-end latency (µs) of deliveries sent inside the measured window.
    pub e2e: Histogram<u64>,
    /// End-to-end latency since the last progress line (any time).
    pub e2e_interval: Histogram<u64>,
    /// Send → ack latency (µs), measured window.
    pub ack: Histogram<u64>,
    /// How far behind schedule sends went out (µs), measured window.
    pub lag: Histogram<u64>,
    pub c: Counters,
}

impl Recorder {
    fn new() -> Self {
        Recorder { e2e: new_hist(), e2e_interval: new_hist(), ack: new_hist(), lag: new_hist(), c: Counters::default() }
    }
}

pub struct Shared {
    pub base: Instant,
    window_start: AtomicU64,
    window_end: AtomicU64,
    shards: Box<[Mutex<Recorder>]>,
    /// Acknowledged (non-duplicate) sends per room.
    pub acks_per_room: Box<[AtomicU64]>,
}

impl Shared {
    pub fn new(shards: usize, rooms: usize) -> Self {
        Shared {
            base: Instant::now(),
            window_start: AtomicU64::new(u64::MAX),
            window_end: AtomicU64::new(u64::MAX),
            shards: (0..shards.max(1)).map(|_| Mutex::new(Recorder::new())).collect(),
            acks_per_room: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    pub fn set_window(&self, start_ns: u64, end_ns: u64) {
        self.window_start.store(start_ns, Ordering::Release);
        self.window_end.store(end_ns, Ordering::Release);
    }

    /// Whether a message scheduled at `sent_ns` belongs to the measured window.
    #[inline]
    pub fn in_window(&self, sent_ns: u64) -> bool {
        sent_ns >= self.window_start.load(Ordering::Relaxed) && sent_ns < self.window_end.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn shard(&self, i: usize) -> &Mutex<Recorder> {
        &self.shards[i % self.shards.len()]
    }

    pub fn totals(&self) -> Counters {
        let mut c = Counters::default();
        for s in self.shards.iter() {
            c.add(&s.lock().c);
        }
        c
    }

    /// Merges and resets the per-interval latency histograms.
    pub fn take_interval(&self) -> Histogram<u64> {
        let mut h = new_hist();
        for s in self.shards.iter() {
            let mut r = s.lock();
            let _ = h.add(&r.e2e_interval);
            r.e2e_interval.reset();
        }
        h
    }

    /// Merged window histograms: (e2e, ack, lag).
    pub fn merged(&self) -> (Histogram<u64>, Histogram<u64>, Histogram<u64>) {
        let (mut e, mut a, mut l) = (new_hist(), new_hist(), new_hist());
        for s in self.shards.iter() {
            let r = s.lock();
            let _ = e.add(&r.e2e);
            let _ = a.add(&r.ack);
            let _ = l.add(&r.lag);
        }
        (e, a, l)
    }

    pub fn acks_per_room(&self) -> Vec<u64> {
        self.acks_per_room.iter().map(|a| a.load(Ordering::Relaxed)).collect()
    }
}

/// Percentiles of a histogram, in its unit (µs here).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Pct {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Pct {
    pub fn of(h: &Histogram<u64>) -> Pct {
        if h.is_empty() {
            return Pct::default();
        }
        Pct {
            count: h.len(),
            min: h.min(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }

    /// `p50 1.2ms p90 … max …` for the human summary.
    pub fn human(&self) -> String {
        if self.count == 0 {
            return "(no samples)".into();
        }
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})",
            fmt_us(self.p50),
            fmt_us(self.p90),
            fmt_us(self.p99),
            fmt_us(self.p999),
            fmt_us(self.max),
            self.count
        )
    }
}

/// The delayed-ACK signature in a latency histogram: a peer that waits for Nagle's algorithm and the
/// other side's delayed ACK answers small writes ~40 ms late, so latencies pile up in a band around
/// 40 ms while the bands beside it stay thin. `flagged` when the 35–45 ms band holds at least 1% of the
/// samples and at least three times as many as either neighbouring 10 ms band.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DelayedAckBand {
    /// Share of samples in 25–35 ms, 35–45 ms and 45–55 ms.
    pub below: f64,
    pub band: f64,
    pub above: f64,
    pub flagged: bool,
}

impl DelayedAckBand {
    pub fn of(h: &Histogram<u64>) -> DelayedAckBand {
        if h.is_empty() {
            return DelayedAckBand::default();
        }
        let n = h.len() as f64;
        let share = |lo: u64, hi: u64| h.count_between(lo, hi - 1) as f64 / n;
        let (below, band, above) = (share(25_000, 35_000), share(35_000, 45_000), share(45_000, 55_000));
        let flagged = band >= 0.01 && band >= 3.0 * below.max(above);
        DelayedAckBand { below, band, above, flagged }
    }
}

pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// CPU time and memory of a process, from `/proc/PID/stat` and `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcSample {
    /// User + system CPU time, µs.
    pub cpu_us: u64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
}

#[allow(unsafe_code)] // the crate's one unsafe call (see `[lints]` in its Cargo.toml)
fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// `pid` is a number or `self`.
pub fn sample_proc(pid: &str) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_proc(&stat, &status, clock_ticks_per_sec())
}

pub fn parse_proc(stat: &str, status: &str, ticks: u64) -> anyhow::Result<ProcSample> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| anyhow::anyhow!("malformed /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        cpu_us: (utime + stime) * 1_000_000 / ticks.max(1),
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        threads: kib("Threads:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_40ms_pile_up_is_flagged_and_a_smooth_tail_is_not() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for _ in 0..900 {
            h.record(800).unwrap();
        }
        for _ in 0..100 {
            h.record(40_500).unwrap();
        }
        let b = DelayedAckBand::of(&h);
        assert!(b.flagged, "{b:?}");
        assert!((b.band - 0.1).abs() < 1e-9);
        let mut smooth = Histogram::<u64>::new(3).unwrap();
        for us in (1_000..100_000).step_by(100) {
            smooth.record(us).unwrap();
        }
        assert!(!DelayedAckBand::of(&smooth).flagged);
        assert!(!DelayedAckBand::of(&Histogram::<u64>::new(3).unwrap()).flagged);
    }

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 4 0 100 1000000 300 18446744073709551615";
        let status = "Name:\tparley\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t4\n";
        let s = parse_proc(stat, status, 100).unwrap();
        assert_eq!(s.cpu_us, 3_000_000);
        assert_eq!(s.rss_kib, 10240);
        assert_eq!(s.hwm_kib, 20480);
        assert_eq!(s.threads, 4);
    }

    #[test]
    fn samples_self() {
        let s = sample_proc("self").unwrap();
        assert!(s.rss_kib > 0);
    }

    #[test]
    fn shards_sum_and_window() {
        let sh = Shared::new(3, 2);
        sh.shard(0).lock().c.deliveries += 2;
        sh.shard(4).lock().c.deliveries += 3;
        assert_eq!(sh.totals().deliveries, 5);
        assert!(!sh.in_window(10));
        sh.set_window(10, 20);
        assert!(sh.in_window(10) && sh.in_window(19) && !sh.in_window(20) && !sh.in_window(9));
        sh.shard(1).lock().e2e_interval.record(5).unwrap();
        assert_eq!(sh.take_interval().len(), 1);
        assert_eq!(sh.take_interval().len(), 0);
    }
}
