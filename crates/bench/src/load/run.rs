//! One load or idle run: a [`Plan`] made from the arguments, then its phases — setup (users and
//! rooms), connect, warm-up and the measured window (or, idle, the hold), drain, collect — and the report.

use super::*;

/// What a run opens and who sends what, decided from the arguments before anything is opened.
struct Plan {
    idle: bool,
    target: Target,
    /// The line port, for TCP receivers.
    tcp_addr: Option<SocketAddr>,
    layout: Layout,
    /// Messages per second per sender.
    rate: f64,
    prefix: String,
}

impl Plan {
    /// Checks the arguments and lays the run out.
    async fn new(args: &BenchArgs, scenario: Scenario) -> Result<Plan> {
        let idle = scenario == Scenario::Idle;
        let target = Target::parse(&args.url).await?;
        for ip in &args.source_addrs {
            if !ip.is_loopback() {
                bail!("--source-addrs must be loopback addresses (got {ip})");
            }
        }
        let n = args.connections;
        let rooms = args.rooms.max(1);
        if n == 0 {
            bail!("--connections must be at least 1");
        }
        if rooms > n {
            bail!("--rooms ({rooms}) cannot exceed --connections ({n})");
        }
        let senders = if idle { 0 } else { args.senders };
        if senders > n {
            bail!("--senders ({senders}) cannot exceed --connections ({n})");
        }
        if !idle && senders == 0 {
            bail!("--senders must be at least 1 (use --idle to only hold connections)");
        }
        if !(0.0..1.0).contains(&args.slow_fraction) {
            bail!("--slow-fraction must be in [0, 1)");
        }
        let tcp_addr = match (args.transport, &args.tcp_addr) {
            (Transport::Tcp, None) => bail!("--transport tcp needs --tcp-addr HOST:PORT (the server's --tcp-listen)"),
            (Transport::Tcp, Some(a)) => Some(
                Target::parse(&format!("http://{a}")).await.map_err(|e| anyhow::anyhow!("--tcp-addr: {e:#}"))?.addr,
            ),
            _ => None,
        };
        let per_room = n.div_ceil(rooms);
        let users_per_room = args.users_per_room.unwrap_or(per_room.min(100)).max(1);
        let layout = Layout {
            rooms,
            users_per_room,
            connections: n,
            senders,
            slow_fraction: if idle { 0.0 } else { args.slow_fraction },
        };
        let rate = match args.total_rate {
            Some(t) if senders > 0 => t / senders as f64,
            _ => args.rate,
        };
        let prefix = args.prefix.clone().unwrap_or_else(random_prefix);
        Ok(Plan { idle, target, tcp_addr, layout, rate, prefix })
    }
}

/// What the connect phase leaves: the connection tasks and what their opening showed.
struct Connected {
    tasks: JoinSet<Outcome>,
    latency: hdrhistogram::Histogram<u64>,
    receivers_per_room: Vec<u64>,
    errors_seen: Vec<String>,
    seconds: f64,
    opened: usize,
    failed: usize,
}

/// What the measured window (and the drain after it) found.
struct Measured {
    load: Load,
    /// The server at the window's start.
    window_server: Option<ProcSample>,
    generator: Generator,
    /// The server's CPU over the window: µs, µs per delivery, cores.
    server_window: (u64, f64, f64),
}

pub async fn run_load(args: &BenchArgs, scenario: Scenario) -> Result<Report> {
    let plan = Plan::new(args, scenario).await?;
    let quiet = args.quiet;

    // Setup.
    let t_setup = Instant::now();
    log(
        quiet,
        format!(
            "setup: registering {} users and {} rooms on {} (prefix {})",
            plan.layout.users(),
            plan.layout.rooms,
            args.url,
            plan.prefix
        ),
    );
    let api = Api::new(plan.target.clone(), args.setup_concurrency)?;
    let pop = setup(&api, &plan.prefix, plan.layout.rooms, plan.layout.users_per_room, args.setup_concurrency).await?;
    let setup_s = t_setup.elapsed().as_secs_f64();
    log(quiet, format!("setup: done in {setup_s:.1}s"));

    let server_before = sample(args.server_pid);
    let (start_tx, start_rx) = watch::channel(None);
    let ctx = context(args, &plan, &pop, start_rx).await?;

    // Progress printer.
    let phase = Arc::new(AtomicU8::new(PHASE_CONNECT));
    let progress_stop = CancellationToken::new();
    let progress = if quiet {
        None
    } else {
        Some(tokio::spawn(progress_task(ctx.clone(), phase.clone(), progress_stop.clone(), args.server_pid)))
    };

    let connected = connect(args, &ctx, &pop).await;
    let server_connected = sample(args.server_pid);

    let measured = if plan.idle {
        phase.store(PHASE_HOLD, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.duration.max(0.0))) => {}
            _ = tokio::signal::ctrl_c() => log(quiet, "interrupted"),
        }
        None
    } else {
        Some(measure(args, &plan, &ctx, &connected, &start_tx, &phase).await)
    };
    let server_end = sample(args.server_pid);

    // Stop everything and collect outcomes.
    ctx.cancel.cancel();
    progress_stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    let Connected { tasks, latency, receivers_per_room: _, errors_seen, seconds: connect_s, opened, failed } =
        connected;
    let outcomes = collect(tasks, plan.layout.connections).await;

    let slow: Vec<&Outcome> = outcomes.iter().filter(|o| o.opened && o.role == Role::Slow).collect();
    let unexpected: Vec<u16> = outcomes
        .iter()
        .filter(|o| o.opened && o.role != Role::Slow)
        .filter_map(|o| match o.end {
            End::Closed(c) => Some(c),
            End::Stopped => None,
        })
        .collect();
    let open_at_end =
        outcomes.iter().filter(|o| o.opened && o.role != Role::Slow && matches!(o.end, End::Stopped)).count();
    let slow_report = (!plan.idle && plan.layout.slow_fraction > 0.0).then(|| {
        let codes: Vec<u16> = slow
            .iter()
            .filter_map(|o| match o.end {
                End::Closed(c) => Some(c),
                End::Stopped => None,
            })
            .collect();
        Slow {
            fraction: plan.layout.slow_fraction,
            connections: slow.len(),
            disconnected_by_server: codes.len(),
            close_codes: report::tally(codes),
        }
    });
    let (load_report, window_server, mut gen_report, server_window) = match measured {
        Some(m) => (Some(m.load), m.window_server, m.generator, m.server_window),
        None => (None, None, Generator::default(), (0u64, 0.0f64, 0.0f64)),
    };
    let server = args.server_pid.map(|pid| {
        let before = server_before.unwrap_or_default();
        let after = server_connected.unwrap_or_default();
        let end = server_end.unwrap_or_default();
        Server {
            pid,
            before_connect: before,
            after_connect: after,
            window_start: window_server,
            end,
            rss_bytes_per_connection: (after.rss_kib as f64 - before.rss_kib as f64) * 1024.0 / opened.max(1) as f64,
            cpu_us_window: server_window.0,
            cpu_us_per_delivery: server_window.1,
            cpu_cores: server_window.2,
        }
    });
    if plan.idle {
        gen_report.rss_kib = sample_proc("self").map(|s| s.rss_kib).unwrap_or(0);
    }
    let totals = ctx.shared.totals();
    let layout = &plan.layout;
    Ok(Report {
        scenario: if plan.idle { "idle" } else { "load" }.into(),
        url: args.url.clone(),
        transport: args.transport.name().into(),
        prefix: plan.prefix.clone(),
        threads: args.threads.max(1),
        setup: Setup {
            users: layout.users(),
            rooms: layout.rooms,
            users_per_room: layout.users_per_room,
            seconds: setup_s,
        },
        connections: Connections {
            requested: layout.connections,
            opened,
            failed,
            connect_seconds: connect_s,
            connect_rate_per_s: opened as f64 / connect_s.max(1e-9),
            connect_latency_us: Pct::of(&latency),
            open_at_end,
            source_addrs: args.source_addrs.iter().map(|a| a.to_string()).collect(),
        },
        load: load_report,
        slow: slow_report,
        recovery: None,
        logins: None,
        server,
        generator: gen_report,
        errors: Errors {
            connect_failures: failed,
            connect_error_samples: errors_seen,
            unexpected_disconnects: unexpected.len(),
            unexpected_close_codes: report::tally(unexpected),
            error_frames: totals.error_frames,
            send_errors: totals.send_errors,
            unparsable_frames: totals.unparsable_frames,
            foreign_deliveries: totals.foreign,
        },
    })
}

/// What every connection task shares.
async fn context(
    args: &BenchArgs,
    plan: &Plan,
    pop: &Population,
    start: watch::Receiver<Option<(u64, u64)>>,
) -> Result<Arc<Ctx>> {
    let n = plan.layout.connections;
    let shards = (args.threads.max(1) * 4).min(n.max(1));
    let shared = Arc::new(Shared::new(shards, plan.layout.rooms));
    let opts = WsOpts {
        subprotocol: args.subprotocol.clone(),
        read_buffer: args.read_buffer.unwrap_or(if plan.idle { 4096 } else { 64 * 1024 }),
        timeout: Duration::from_secs_f64(args.connect_timeout.max(0.1)),
    };
    let receiver_target = match &args.receiver_url {
        Some(url) => Target::parse(url).await?,
        None => plan.target.clone(),
    };
    Ok(Arc::new(Ctx {
        shared,
        target: plan.target.clone(),
        receiver_target,
        opts,
        transport: args.transport,
        tcp_addr: plan.tcp_addr,
        names: pop.names.clone(),
        layout: plan.layout.clone(),
        room_ids: pop.room_ids.clone(),
        rate: plan.rate,
        body_bytes: args.body_bytes,
        late_ns: (args.late_ms * 1e6) as u64,
        cancel: CancellationToken::new(),
        start,
        sem: Semaphore::new(args.connect_concurrency.max(1)),
        opened: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        ended_early: AtomicUsize::new(0),
        writers_done: AtomicUsize::new(0),
    }))
}

/// The connect phase: a task per connection, waited on until each has opened or failed.
async fn connect(args: &BenchArgs, ctx: &Arc<Ctx>, pop: &Population) -> Connected {
    let layout = &ctx.layout;
    let n = layout.connections;
    log(
        args.quiet,
        format!(
            "connect: opening {n} connections, receivers over {} ({} at a time{})",
            args.transport.name(),
            args.connect_concurrency,
            if args.source_addrs.is_empty() {
                String::new()
            } else {
                format!(", from {} source addresses", args.source_addrs.len())
            }
        ),
    );
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let t_connect = Instant::now();
    for i in 0..n {
        let source =
            if args.source_addrs.is_empty() { None } else { Some(args.source_addrs[i % args.source_addrs.len()]) };
        let token = pop.tokens[layout.user_of(i)].clone();
        tasks.spawn(conn_task(ctx.clone(), i, token, source, ready_tx.clone()));
    }
    drop(ready_tx);
    let mut latency = new_hist();
    let mut receivers_per_room = vec![0u64; layout.rooms];
    let mut errors_seen: Vec<String> = Vec::new();
    let mut got = 0;
    while got < n {
        let Some(r) = ready_rx.recv().await else {
            break;
        };
        got += 1;
        match r.result {
            Ok(d) => {
                latency.saturating_record((d.as_micros() as u64).max(1));
                if layout.role(r.i) != Role::Slow {
                    receivers_per_room[layout.room_of(r.i)] += 1;
                }
            }
            Err(e) => {
                if errors_seen.len() < 5 && !errors_seen.contains(&e) {
                    errors_seen.push(e);
                }
            }
        }
    }
    let seconds = t_connect.elapsed().as_secs_f64();
    let opened = ctx.opened.load(Ordering::Relaxed);
    let failed = ctx.failed.load(Ordering::Relaxed);
    log(
        args.quiet,
        format!(
            "connect: {opened} opened, {failed} failed in {seconds:.2}s ({:.0}/s)",
            opened as f64 / seconds.max(1e-9)
        ),
    );
    Connected { tasks, latency, receivers_per_room, errors_seen, seconds, opened, failed }
}

/// The load phases: the senders start together, a warm-up, the measured window (counters and CPU
/// sampled at both ends), then the drain.
async fn measure(
    args: &BenchArgs,
    plan: &Plan,
    ctx: &Ctx,
    connected: &Connected,
    start: &watch::Sender<Option<(u64, u64)>>,
    phase: &AtomicU8,
) -> Measured {
    let shared = &*ctx.shared;
    // Start the schedule shortly from now so that every sender sees the same t0.
    let t0 = shared.now_ns() + 50_000_000;
    let ws = t0 + (args.warmup.max(0.0) * 1e9) as u64;
    let we = ws + (args.duration.max(0.0) * 1e9) as u64;
    shared.set_window(ws, we);
    let _ = start.send(Some((t0, we)));
    phase.store(PHASE_RUN, Ordering::Relaxed);
    let at = |ns: u64| tokio::time::Instant::from(shared.base + Duration::from_nanos(ns));
    let mut interrupted = false;
    tokio::select! {
        _ = tokio::time::sleep_until(at(ws)) => {}
        _ = tokio::signal::ctrl_c() => interrupted = true,
    }
    let c0 = shared.totals();
    let s0 = sample(args.server_pid);
    let g0 = sample_proc("self").ok();
    let w0 = Instant::now();
    if !interrupted {
        tokio::select! {
            _ = tokio::time::sleep_until(at(we)) => {}
            _ = tokio::signal::ctrl_c() => interrupted = true,
        }
    }
    let c1 = shared.totals();
    let s1 = sample(args.server_pid);
    let g1 = sample_proc("self").ok();
    let window_s = w0.elapsed().as_secs_f64().max(1e-9);
    if interrupted {
        log(args.quiet, "interrupted: stopping");
        ctx.cancel.cancel();
    }
    let window_deliveries = c1.deliveries - c0.deliveries;
    let per_s = window_deliveries as f64 / window_s;
    let mut server_window = (0u64, 0.0f64, 0.0f64);
    let mut window_server = None;
    if let (Some(a), Some(b)) = (s0, s1) {
        let cpu = b.cpu_us.saturating_sub(a.cpu_us);
        server_window = (cpu, cpu as f64 / window_deliveries.max(1) as f64, cpu as f64 / 1e6 / window_s);
        window_server = Some(a);
    }
    let mut generator = Generator::default();
    if let (Some(a), Some(b)) = (g0, g1) {
        let cpu = b.cpu_us.saturating_sub(a.cpu_us);
        let cores = cpu as f64 / 1e6 / window_s;
        generator = Generator {
            cpu_us_window: cpu,
            cpu_cores: cores,
            cpu_us_per_delivery: cpu as f64 / window_deliveries.max(1) as f64,
            deliveries_per_core_s: if cores > 0.0 { per_s / cores } else { 0.0 },
            rss_kib: b.rss_kib,
        };
    }

    phase.store(PHASE_DRAIN, Ordering::Relaxed);
    let drain_s = drain(args, ctx, connected).await;

    let c = shared.totals();
    let acks_room = shared.acks_per_room();
    let expected = expected_deliveries(&acks_room, &connected.receivers_per_room);
    let (lost, surplus) = loss(expected, c.unique);
    let (e2e, ack, lag) = shared.merged();
    let senders = plan.layout.senders;
    let load = Load {
        senders,
        rate_per_sender: plan.rate,
        target_total_rate: plan.rate * senders as f64,
        body_bytes: args.body_bytes,
        warmup_s: args.warmup,
        duration_s: args.duration,
        counters: c,
        late_threshold_ms: args.late_ms,
        send_lag_us: Pct::of(&lag),
        acked_per_s: (c1.acks - c0.acks) as f64 / window_s,
        deliveries_per_s: per_s,
        expected_deliveries: expected,
        lost_deliveries: lost,
        surplus_deliveries: surplus,
        duplicated_deliveries: c.duplicates,
        reordered_deliveries: c.reordered,
        latency_us: Pct::of(&e2e),
        ack_latency_us: Pct::of(&ack),
        ack_40ms_band: DelayedAckBand::of(&ack),
        drain_s,
    };
    Measured { load, window_server, generator, server_window }
}

/// The drain: waits (at most `--drain`) for outstanding acks and deliveries; its length in seconds.
async fn drain(args: &BenchArgs, ctx: &Ctx, connected: &Connected) -> f64 {
    let shared = &*ctx.shared;
    let layout = &ctx.layout;
    let t_drain = Instant::now();
    let drain_deadline = t_drain + Duration::from_secs_f64(args.drain.max(0.0));
    let senders_opened = (0..layout.senders).filter(|&i| matches!(layout.role(i), Role::Sender(_))).count();
    while !ctx.cancel.is_cancelled() && Instant::now() < drain_deadline {
        let c = shared.totals();
        let expected = expected_deliveries(&shared.acks_per_room(), &connected.receivers_per_room);
        let writers_done = ctx.writers_done.load(Ordering::Relaxed) >= senders_opened.min(connected.opened);
        if writers_done && c.acks + c.error_frames >= c.sends && c.unique >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t_drain.elapsed().as_secs_f64()
}

/// Every connection task's outcome (those not ended within 15 s are aborted and left out).
async fn collect(mut tasks: JoinSet<Outcome>, n: usize) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(n);
    let collect = async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(o) = r {
                outcomes.push(o);
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(15), collect).await.is_err() {
        tasks.abort_all();
    }
    outcomes
}
