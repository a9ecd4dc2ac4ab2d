//! The `logins` scenario: a login storm. One account is registered, then `--connections` logins are
//! sent at once, each over its own connection, and answered one by one by the server's password
//! hashing. Reports how many were served (200) or refused (429 `rate_limited`), the login latency,
//! and the server's memory before, at its peak (VmHWM) and after.

use crate::BenchArgs;
use crate::client::{Api, Target};
use crate::load::random_prefix;
use crate::report::{Logins, Report, Setup};
use crate::stats::{Pct, new_hist, sample_proc};
use anyhow::Result;
use std::time::{Duration, Instant};

pub async fn run_logins(args: &BenchArgs) -> Result<Report> {
    let target = Target::parse(&args.url).await?;
    let prefix = args.prefix.clone().unwrap_or_else(random_prefix);
    let username = format!("{prefix}storm");
    let setup_started = Instant::now();
    Api::new(target.clone(), 1)?.register(&username).await?;
    let setup_s = setup_started.elapsed().as_secs_f64();
    let sample = |pid: Option<u32>| pid.and_then(|p| sample_proc(&p.to_string()).ok());
    let before = sample(args.server_pid);

    let n = args.connections.max(1);
    let url = target.api("/login");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (url, username) = (url.clone(), username.clone());
        tasks.spawn(async move {
            // A client (and connection) per login, as a crowd of browsers would.
            let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build()?;
            let t = Instant::now();
            let resp = http.post(url).json(&crate::client::credentials(&username)).send().await?;
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            anyhow::Ok((status, t.elapsed()))
        });
    }
    let (mut ok, mut rate_limited, mut other, mut failed) = (0usize, 0usize, 0usize, 0usize);
    let mut latency = new_hist();
    let mut peak_rss_seen = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                None => break,
                Some(Ok(Ok((status, took)))) => {
                    let _ = latency.record((took.as_micros() as u64).max(1));
                    match status {
                        200 => ok += 1,
                        429 => rate_limited += 1,
                        _ => other += 1,
                    }
                }
                Some(_) => failed += 1,
            },
            _ = ticker.tick() => {
                if let Some(s) = sample(args.server_pid) {
                    peak_rss_seen = peak_rss_seen.max(s.rss_kib);
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // What stays resident once the storm is over.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = sample(args.server_pid);
    let mut report = Report {
        scenario: "logins".into(),
        url: args.url.clone(),
        transport: "http".into(),
        prefix,
        threads: args.threads,
        setup: Setup { users: 1, rooms: 0, users_per_room: 0, seconds: setup_s },
        ..Report::default()
    };
    report.logins = Some(Logins {
        concurrent: n,
        ok,
        rate_limited,
        other_status: other,
        failed,
        seconds,
        latency_us: Pct::of(&latency),
        rss_before_kib: before.as_ref().map_or(0, |s| s.rss_kib),
        rss_peak_seen_kib: peak_rss_seen,
        rss_hwm_kib: after.as_ref().map_or(0, |s| s.hwm_kib),
        rss_after_kib: after.as_ref().map_or(0, |s| s.rss_kib),
    });
    Ok(report)
}
