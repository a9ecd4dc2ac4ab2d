//! Operating a node: honest start-up (the banner only once ready, each failure's cause once), metrics
//! present from the start, the separate metrics listener and CPU profiles, `parley healthcheck`,
//! `X-Forwarded-For` from trusted proxies only.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::oneshot;

use crate::harness::{DEADLINE, Process, base_flags, spawn_app, spawn_app_with, wait};

const BANNER: &str = "Parley is running";

/// Runs the binary to its end (it must fail to start) and returns (stdout, stderr, how long it took).
fn failed_start(flags: &[&str]) -> (String, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = base_flags(dir.path());
    // A flag given twice is refused: replace the base flag's value instead.
    let mut set = |flag: &str, value: &str| match args.iter().position(|f| f == flag) {
        Some(i) => args[i + 1] = value.to_owned(),
        None => args.extend([flag.to_owned(), value.to_owned()]),
    };
    set("--tcp-listen", "off");
    for pair in flags.chunks(2) {
        set(pair[0], pair[1]);
    }
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("serve")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a start-up that hangs fails the test instead of hanging it.
    let exited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait::until_blocking(&format!("parley {flags:?} to exit"), DEADLINE, || child.try_wait().unwrap().is_some())
    }));
    if let Err(hung) = exited {
        let _ = child.kill();
        std::panic::resume_unwind(hung);
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{flags:?} must fail");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

#[test]
fn a_failed_start_prints_no_banner_and_its_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("data");
    let secret = ["--jwt-secret", "0123456789abcdef0123456789abcdef"];
    let table: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--database-url", "postgres://postgres@127.0.0.1:1/parley"], "Connection refused"),
        (vec!["--data-dir", under_file.to_str().unwrap()], "Not a directory"),
        ([&["--redis-url", "redis://127.0.0.1:1"][..], &secret[..]].concat(), "Connection refused"),
        (vec!["--jwt-secret", "short"], "at least 16 bytes"),
        (vec!["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"], "No such file"),
    ];
    for (flags, cause) in table {
        let (stdout, stderr, took) = failed_start(&flags);
        assert!(!stdout.contains(BANNER) && !stderr.contains(BANNER), "{flags:?}: banner printed: {stdout}");
        assert_eq!(stderr.matches(cause).count(), 1, "{flags:?}: the cause once, got: {stderr}");
        assert!(stderr.contains("could not start"), "{flags:?}: {stderr}");
        assert!(!stderr.contains('\x1b'), "{flags:?}: no colour codes into a pipe: {stderr:?}");
        // Refused is known at once: no pool timeout.
        assert!(took < Duration::from_secs(5), "{flags:?} took {took:?}");
    }
}

/// Starts the binary with `args` (no `serve`: it is the default command) and returns its first stdout
/// line and the process.
fn banner_of(args: &[String]) -> (String, Process) {
    let (process, line) = parley_testkit::binary::start(env!("CARGO_BIN_EXE_parley"), args);
    (line, process)
}

#[test]
fn the_banner_says_https_under_tls_and_serve_is_the_default_command() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let mut args = base_flags(dir.path());
    args.extend(["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()].map(String::from));
    let (line, _p) = banner_of(&args);
    assert!(line.starts_with("Parley is running: open https://127.0.0.1:"), "{line}");
    assert!(line.contains("(WebSocket: wss://127.0.0.1:"), "{line}");

    let (line, _p) = banner_of(&base_flags(dir.path()));
    assert!(line.starts_with("Parley is running: open http://127.0.0.1:"), "{line}");
}

/// A node run in this process through `run_with`, with what it reported as ready.
struct Node {
    ready: parley::server::Ready,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(extra: &[&str]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut flags = base_flags(dir.path());
        flags.extend(extra.iter().map(|s| s.to_string()));
        let config = parley::config::Config::from_flags(flags).unwrap();
        let listeners = parley::server::Listeners::bind(&config).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let handle = tokio::spawn(parley::server::run_with(
            config,
            listeners,
            async move {
                let _ = stopped.await;
            },
            move |r| {
                let _ = ready_tx.send(r.clone());
            },
        ));
        let ready = tokio::time::timeout(DEADLINE, ready_rx).await.expect("ready in time").expect("started");
        Node { ready, stop: Some(stop), handle, _dir: dir }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(DEADLINE, self.handle).await.expect("stopped in time").unwrap().unwrap();
    }
}

async fn get(url: &str) -> (u16, bytes::Bytes) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap())
}

/// The series README.md documents (backquoted `parley_…` names).
fn documented_series() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let mut names: Vec<String> = readme
        .split('`')
        .filter_map(|t| t.strip_prefix("parley_"))
        .map(|t| format!("parley_{}", t.split(['{', ' ']).next().unwrap()))
        .filter(|n| n.len() > "parley_".len() && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        // Heap statistics exist only where jemalloc is the allocator (the default build).
        .filter(|n| cfg!(feature = "jemalloc") || !n.starts_with("parley_heap_"))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn every_documented_metric_is_there_from_the_start() {
    // The real binary: a process of its own, so no other test's events are in its registry.
    let app = crate::harness::spawn_binary(&[]);
    let documented = documented_series();
    assert!(documented.len() >= 15, "{documented:?}");
    let (s, body) = get(&app.url("/metrics")).await;
    assert_eq!(s, 200);
    let text = String::from_utf8_lossy(&body);
    let present = |text: &str, name: &str| text.lines().any(|l| !l.starts_with('#') && l.starts_with(name));
    // Per-request series start with the first request: the metrics request above was one.
    for name in documented.iter().filter(|n| !n.starts_with("parley_http_")) {
        assert!(present(&text, name), "{name} missing right after start:\n{text}");
    }
    for name in [
        "parley_rate_limited_total{limit=\"auth\"} 0",
        "parley_jobs_dead_total{kind=\"webhook\"} 0",
        "parley_jobs_completed_total{kind=\"purge\"} 0",
        "parley_messages_received_total 0",
    ] {
        assert!(text.lines().any(|l| l == name), "{name}");
    }
    for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_threads"] {
        assert!(present(&text, name), "{name} missing");
    }
    assert!(text.contains("parley_build_info{version=\"0.1.0\",commit=\""), "build info");
    let (_, body) = get(&app.url("/metrics")).await;
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("parley_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"}"),
        "requests by route and status:\n{text}"
    );
    assert!(text.contains("parley_http_request_duration_seconds_bucket{method=\"GET\",route=\"/metrics\""));
    for name in documented.iter().filter(|n| n.starts_with("parley_http_")) {
        assert!(present(&text, name), "{name} missing after a request");
    }
    // Routes are patterns, not paths (bounded label values).
    let (s, _) = app.get(None, "/api/v1/rooms/nowhere").await;
    assert_eq!(s, 401);
    let (_, body) = get(&app.url("/metrics")).await;
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("route=\"/api/v1/rooms/{room}\",status=\"401\""), "{text}");
    assert!(!text.contains("nowhere"));
    drop(app);
}

#[tokio::test]
async fn the_metrics_listener_serves_metrics_and_profiles_and_the_public_port_neither() {
    let node = Node::start(&["--metrics-listen", "127.0.0.1:0"]).await;
    let public = format!("http://{}", node.ready.http);
    let private = format!("http://{}", node.ready.metrics.expect("a metrics address"));
    assert_eq!(get(&format!("{public}/metrics")).await.0, 404);
    assert_eq!(get(&format!("{public}/debug/pprof/profile?seconds=1")).await.0, 404);
    let (s, body) = get(&format!("{private}/metrics")).await;
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&body).contains("parley_connections_open"));

    // Something to sample while profiling, until the profiles are in.
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let spin = {
        let busy = busy.clone();
        std::thread::spawn(move || {
            let mut x = 0u64;
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        })
    };
    // A CPU profile in pprof's format: a protobuf `Profile` with CPU samples.
    let (s, body) = get(&format!("{private}/debug/pprof/profile?seconds=1")).await;
    assert_eq!(s, 200);
    use pprof::protos::Message;
    let profile = pprof::protos::Profile::decode(body).expect("a pprof protobuf");
    assert!(!profile.sample.is_empty(), "CPU samples");
    let types: Vec<&str> = profile.sample_type.iter().map(|t| profile.string_table[t.ty as usize].as_str()).collect();
    assert!(types.contains(&"cpu"), "{types:?}");
    assert!(profile.duration_nanos >= 1_000_000_000, "{}", profile.duration_nanos);
    let (s, body) = get(&format!("{private}/debug/pprof/flamegraph?seconds=1")).await;
    assert_eq!(s, 200);
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    spin.join().unwrap();
    let svg = String::from_utf8_lossy(&body);
    assert!(svg.contains("<svg") && svg.contains("<g"), "a flame graph: {svg}");
    assert_eq!(get(&format!("{private}/debug/pprof/profile?seconds=0")).await.0, 400);
    node.stop().await;
}

/// Issue 16 item 3: heap profiles and heap statistics (jemalloc), only on the metrics listener.
#[tokio::test]
async fn the_metrics_listener_serves_heap_profiles_and_heap_statistics() {
    let node = Node::start(&["--metrics-listen", "127.0.0.1:0"]).await;
    let public = format!("http://{}", node.ready.http);
    let private = format!("http://{}", node.ready.metrics.expect("a metrics address"));
    assert_eq!(get(&format!("{public}/debug/pprof/heap")).await.0, 404);
    // Something big and live, so the sampled profile (one sample per 512 KiB on average) holds it.
    let ballast = std::hint::black_box(vec![7u8; 16 << 20]);
    let (s, body) = get(&format!("{private}/debug/pprof/heap")).await;
    if !cfg!(feature = "jemalloc") {
        assert_eq!(s, 501, "no heap profiler without jemalloc");
        node.stop().await;
        return;
    }
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(&body[..2], [0x1f, 0x8b], "gzip-compressed");
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut raw).unwrap();
    use pprof::protos::Message;
    let profile = pprof::protos::Profile::decode(&raw[..]).expect("a pprof protobuf");
    let types: Vec<&str> = profile.sample_type.iter().map(|t| profile.string_table[t.ty as usize].as_str()).collect();
    assert!(types.contains(&"inuse_space"), "{types:?}");
    let live: i64 = profile.sample.iter().filter_map(|s| s.value.first()).sum();
    assert!(live >= 16 << 20, "the 16 MiB ballast is in the profile: {live} bytes live");
    drop(ballast);
    let (_, body) = get(&format!("{private}/metrics")).await;
    let text = String::from_utf8_lossy(&body);
    for name in ["parley_heap_allocated_bytes", "parley_heap_resident_bytes"] {
        let v: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing"))
            .trim()
            .parse()
            .unwrap();
        assert!(v > 0.0, "{name} = {v}");
    }
    node.stop().await;
}

fn healthcheck(args: &[&str]) -> std::process::ExitStatus {
    Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("healthcheck")
        .args(args)
        .env_remove("PARLEY_LISTEN")
        .env_remove("PARLEY_TLS_CERT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

#[tokio::test]
async fn healthcheck_exits_by_readiness() {
    let app = spawn_app().await;
    let addr = app.addr.to_string();
    // Blocking child processes: off the runtime's threads.
    let ok = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || (healthcheck(&["--listen", &addr]), healthcheck(&["--url", &format!("http://{addr}/healthz")]))
    })
    .await
    .unwrap();
    assert_eq!((ok.0.code(), ok.1.code()), (Some(0), Some(0)));
    app.stop().await;
    // Nobody listening.
    let down = tokio::task::spawn_blocking(move || healthcheck(&["--listen", &addr])).await.unwrap();
    assert_eq!(down.code(), Some(1));
    // Listening but not ready: 503.
    let stub = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stub_addr = stub.local_addr().unwrap().to_string();
    let server = tokio::spawn(
        axum::serve(
            stub,
            axum::Router::new().route(
                "/readyz",
                axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "store unreachable") }),
            ),
        )
        .into_future(),
    );
    let not_ready = tokio::task::spawn_blocking(move || healthcheck(&["--listen", &stub_addr])).await.unwrap();
    assert_eq!(not_ready.code(), Some(1));
    server.abort();
}

/// Logins from `forwarded` (as the `X-Forwarded-For` value) until refused; returns how many passed.
async fn logins_until_refused(app: &crate::harness::TestApp, forwarded: &str, tries: usize) -> usize {
    for i in 0..tries {
        let r = app
            .http
            .post(app.url("/api/v1/login"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"username": format!("nobody{i}"), "password": "password-nobody"}))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            return i;
        }
        assert_eq!(r.status(), 401);
    }
    tries
}

#[tokio::test]
async fn forwarded_for_is_honoured_only_from_trusted_proxies() {
    let limits = ["--auth-burst", "3", "--auth-per-minute", "1"];
    // The test client (127.0.0.1) is a trusted proxy: each forwarded client has its own budget.
    let app = spawn_app_with(&[&limits[..], &["--trusted-proxies", "127.0.0.0/8"]].concat()).await;
    assert_eq!(logins_until_refused(&app, "198.51.100.1", 10).await, 3);
    assert_eq!(logins_until_refused(&app, "198.51.100.2", 10).await, 3, "another client, its own budget");
    // A client cannot pick its address by prepending to the header: the proxy's entry is believed.
    assert_eq!(logins_until_refused(&app, "198.51.100.9, 198.51.100.1", 10).await, 0);
    app.stop().await;

    // Without --trusted-proxies the header is ignored: everyone shares the peer's budget.
    let app = spawn_app_with(&limits).await;
    assert_eq!(logins_until_refused(&app, "198.51.100.1", 10).await, 3);
    assert_eq!(logins_until_refused(&app, "198.51.100.2", 10).await, 0);
    app.stop().await;
}

/// `docs/openapi.json` is the generated document, byte for byte, and the server serves the same.
/// After changing a handler's annotation: `PARLEY_UPDATE_OPENAPI=1 cargo test --test it openapi` rewrites it.
#[tokio::test]
async fn the_checked_in_openapi_document_is_the_generated_and_served_one() {
    let generated = parley::http::openapi::document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    if std::env::var_os("PARLEY_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap();
    assert!(
        checked_in == generated,
        "docs/openapi.json is not the generated document: run PARLEY_UPDATE_OPENAPI=1 cargo test --test it openapi"
    );
    let app = spawn_app().await;
    let served = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(served.headers()["content-type"], "application/json");
    assert_eq!(served.text().await.unwrap(), generated);
    app.stop().await;
}

/// The routes `http/mod.rs` registers, as (METHOD, path): read from its source, so that a route added
/// without an OpenAPI annotation fails the test below.
fn router_routes() -> Vec<(String, String)> {
    let src = include_str!("../../src/http/mod.rs");
    let fn_start = src.find("pub fn router(").expect("the router function");
    let body = &src[fn_start..];
    let body = &body[..body.find("\n}\n").unwrap()];
    let api_end = body.find(".fallback(").unwrap_or(body.len());
    let mut routes = Vec::new();
    let mut rest = body;
    let mut offset = 0;
    while let Some(i) = rest.find(".route(") {
        // rustfmt may put the path on the next line.
        let after = &rest[i + ".route(".len()..];
        let Some(quote) = after.find('"').filter(|q| after[..*q].trim().is_empty()) else {
            offset += i + 1;
            rest = &rest[i + 1..];
            continue;
        };
        let start = i + ".route(".len() + quote + 1;
        let path_end = rest[start..].find('"').unwrap() + start;
        let path = &rest[start..path_end];
        // The handler part: up to the closing parenthesis of `.route(`.
        let mut depth = 1;
        let mut end = path_end;
        for (j, c) in rest[path_end..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = path_end + j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let handlers = &rest[path_end..end];
        let prefix = if offset + i < api_end { "/api/v1" } else { "" };
        for method in ["get", "post", "patch", "put", "delete"] {
            let called = handlers.match_indices(&format!("{method}(")).any(|(k, _)| {
                k == 0 || !handlers.as_bytes()[k - 1].is_ascii_alphanumeric() && handlers.as_bytes()[k - 1] != b'_'
            });
            if called {
                routes.push((method.to_uppercase(), format!("{prefix}{path}")));
            }
        }
        offset += end;
        rest = &rest[end..];
    }
    routes
}

#[test]
fn every_route_of_the_router_is_in_the_openapi_document() {
    let doc: serde_json::Value = serde_json::from_str(&parley::http::openapi::document()).unwrap();
    let routes = router_routes();
    assert!(routes.len() >= 30, "the route scan found {routes:?}");
    // The WebSocket is described in docs/PROTOCOL.md §3 (OpenAPI has no words for it).
    let missing: Vec<_> = routes
        .iter()
        .filter(|(_, path)| path != "/ws")
        .filter(|(method, path)| doc["paths"][path.as_str()][method.to_lowercase()].is_null())
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an OpenAPI entry (add #[utoipa::path] and list it in http/openapi.rs): {missing:?}"
    );
    // And nothing documented that is not routed.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let routed = routes.iter().any(|(m, p)| m.eq_ignore_ascii_case(method) && p == path);
            assert!(routed, "{method} {path} is documented but not routed");
        }
    }
}
