//! The `recovery` scenario: a client disconnects, N messages are sent to its room, and the client
//! reconnects and catches up with `history` pages (`after` = its last seq). Reports the time from
//! starting to reconnect until every missed message has been fetched, over several runs.

use crate::BenchArgs;
use crate::client::{Api, Target, Ws, WsOpts, open_ws, send_text, truncate};
use crate::load::{random_prefix, setup};
use crate::payload::{Frame, Stamp, classify, send_frame};
use crate::report::{Recovery, RecoveryRun, Report, Setup};
use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

#[derive(Deserialize)]
struct Hello {
    rooms: Vec<HelloRoom>,
}

#[derive(Deserialize)]
struct HelloRoom {
    id: u64,
    last_seq: u64,
}

#[derive(Deserialize)]
struct HistoryReply {
    #[serde(default)]
    req: Option<String>,
    messages: Vec<HistoryMessage>,
    has_more: bool,
}

#[derive(Deserialize)]
struct HistoryMessage {
    seq: u64,
}

fn last_seq_from_hello(hello: &str, room: u64) -> Result<u64> {
    let h: Hello = serde_json::from_str(hello).context("parsing hello")?;
    h.rooms.iter().find(|r| r.id == room).map(|r| r.last_seq).ok_or_else(|| anyhow!("hello does not list room {room}"))
}

/// Fetches every message after `after` with `history` pages; returns (pages, seqs fetched).
async fn catch_up(ws: &mut Ws, room: u64, after: u64, page: usize) -> Result<(usize, Vec<u64>)> {
    let mut last = after;
    let mut pages = 0;
    let mut seqs = Vec::new();
    loop {
        pages += 1;
        let req = format!("h{pages}");
        send_text(ws, format!(r#"{{"type":"history","room":{room},"after":{last},"limit":{page},"req":"{req}"}}"#))
            .await?;
        let reply: HistoryReply = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => match classify(t.as_bytes()) {
                    Frame::History => {
                        let r: HistoryReply = serde_json::from_str(&t).context("parsing history reply")?;
                        if r.req.as_deref().is_none_or(|r| r == req) {
                            break r;
                        }
                    }
                    Frame::Error => bail!("history failed: {}", truncate(&t, 300)),
                    _ => {}
                },
                Some(Ok(Message::Close(f))) => bail!("closed during catch-up: {f:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("connection ended during catch-up"),
            }
        };
        for m in &reply.messages {
            seqs.push(m.seq);
            last = last.max(m.seq);
        }
        if !reply.has_more || reply.messages.is_empty() {
            return Ok((pages, seqs));
        }
    }
}

pub async fn run_recovery(args: &BenchArgs) -> Result<Report> {
    let target = Target::parse(&args.url).await?;
    let quiet = args.quiet;
    let prefix = args.prefix.clone().unwrap_or_else(random_prefix);
    let n_msgs = args.recovery_messages.max(1);
    let runs = args.recovery_runs.max(1);
    let page = args.history_page.clamp(1, 200);
    let t_setup = Instant::now();
    let api = Api::new(target.clone(), 4)?;
    let pop = setup(&api, &prefix, 1, 2, 2).await?;
    let setup_s = t_setup.elapsed().as_secs_f64();
    let room = pop.room_ids[0];
    let opts = WsOpts {
        subprotocol: args.subprotocol.clone(),
        read_buffer: args.read_buffer.unwrap_or(64 * 1024),
        timeout: Duration::from_secs_f64(args.connect_timeout.max(0.1)),
    };

    // The sender stays connected; a reader task counts its acks.
    let (sender_ws, _) = open_ws(&target, &pop.tokens[0], None, &opts).await?;
    let (mut sink, mut stream) = sender_ws.split();
    let acks = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let notify = Arc::new(Notify::new());
    let reader = {
        let (acks, errors, notify) = (acks.clone(), errors.clone(), notify.clone());
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Text(t) = m {
                    match classify(t.as_bytes()) {
                        Frame::Ack { .. } => {
                            acks.fetch_add(1, Ordering::Relaxed);
                            notify.notify_one();
                        }
                        Frame::Error => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            notify.notify_one();
                        }
                        _ => {}
                    }
                }
            }
            notify.notify_one();
        })
    };

    let (first, hello) = open_ws(&target, &pop.tokens[1], None, &opts).await?;
    let mut last_seq = last_seq_from_hello(&hello, room)?;
    let mut client = Some(first);
    let mut results = Vec::new();
    let base = Instant::now();
    let mut n_sent: u64 = 0;
    let mut buf = String::new();
    for run in 0..runs {
        // Disconnect cleanly.
        if let Some(mut ws) = client.take() {
            let _ = ws.close(None).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = ws.next().await {} })
                .await;
        }
        // Send the messages it misses and wait for every ack.
        let target_acks = acks.load(Ordering::Relaxed) + n_msgs as u64;
        for _ in 0..n_msgs {
            n_sent += 1;
            let st = Stamp { sender: 0, n: n_sent, sent_ns: base.elapsed().as_nanos() as u64 };
            send_frame(&mut buf, room, &st, args.body_bytes);
            sink.feed(Message::Text(buf.as_str().into())).await?;
        }
        sink.flush().await?;
        let wait = async {
            loop {
                let done = notify.notified();
                if acks.load(Ordering::Relaxed) >= target_acks {
                    return Ok(());
                }
                if errors.load(Ordering::Relaxed) > 0 {
                    bail!("the server refused sends");
                }
                if reader.is_finished() {
                    bail!("sender connection closed");
                }
                done.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .map_err(|_| anyhow!("timed out waiting for acks"))??;

        // Reconnect and catch up.
        let t0 = Instant::now();
        let (mut ws, hello) = open_ws(&target, &pop.tokens[1], None, &opts).await?;
        let reconnect = t0.elapsed();
        let (pages, seqs) = catch_up(&mut ws, room, last_seq, page).await?;
        let total = t0.elapsed();
        let server_last = last_seq_from_hello(&hello, room).unwrap_or(0);
        let contiguous = seqs.iter().enumerate().all(|(k, &s)| s == last_seq + 1 + k as u64);
        if seqs.len() != n_msgs || !contiguous {
            bail!(
                "run {}: recovered {} messages (expected {n_msgs}, contiguous: {contiguous}) after seq {last_seq}; hello said last_seq {server_last}",
                run + 1,
                seqs.len()
            );
        }
        let r = RecoveryRun {
            reconnect_ms: reconnect.as_secs_f64() * 1e3,
            total_ms: total.as_secs_f64() * 1e3,
            pages,
            recovered: seqs.len(),
            first_seq: seqs.first().copied().unwrap_or(0),
            last_seq: seqs.last().copied().unwrap_or(last_seq),
        };
        if !quiet {
            eprintln!(
                "[run {}/{runs}] recovered {} messages in {} pages: {:.1}ms (reconnect {:.1}ms)",
                run + 1,
                r.recovered,
                r.pages,
                r.total_ms,
                r.reconnect_ms
            );
        }
        last_seq = r.last_seq;
        results.push(r);
        client = Some(ws);
    }
    drop(client);
    let _ = sink.close().await;
    reader.abort();

    let mut totals: Vec<f64> = results.iter().map(|r| r.total_ms).collect();
    totals.sort_by(f64::total_cmp);
    Ok(Report {
        scenario: "recovery".into(),
        url: args.url.clone(),
        transport: "ws".into(),
        prefix,
        threads: args.threads.max(1),
        setup: Setup { users: 2, rooms: 1, users_per_room: 2, seconds: setup_s },
        recovery: Some(Recovery {
            messages: n_msgs,
            page_limit: page,
            median_ms: median(&totals),
            min_ms: totals.first().copied().unwrap_or(0.0),
            max_ms: totals.last().copied().unwrap_or(0.0),
            runs: results,
        }),
        ..Default::default()
    })
}

/// Median of sorted values (mean of the middle two for an even count).
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_runs() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0]), 3.0);
        assert_eq!(median(&[1.0, 2.0, 10.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 10.0]), 3.0);
    }

    #[test]
    fn hello_last_seq() {
        let h =
            r#"{"type":"hello","v":1,"user":{"id":1},"rooms":[{"id":3,"name":"x","last_seq":17,"member_count":2}]}"#;
        assert_eq!(last_seq_from_hello(h, 3).unwrap(), 17);
        assert!(last_seq_from_hello(h, 4).is_err());
    }
}
