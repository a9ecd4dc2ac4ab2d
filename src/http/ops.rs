//! For operators: per-route request metrics, `/metrics`, and CPU profiles of the running process.
//!
//! `/metrics` is served on the public port unless `--metrics-listen` gives it a port of its own
//! ([`router`]); the profiling endpoints are served only there, never on the public port:
//! - `GET /debug/pprof/profile?seconds=N` — a CPU profile in pprof's protobuf format (`go tool pprof`,
//!   `pprof -http`), sampling at 99 Hz for N seconds (default 10, at most 120);
//! - `GET /debug/pprof/flamegraph?seconds=N` — the same as an SVG flame graph;
//! - `GET /debug/pprof/heap` — a heap profile of what is live now (jemalloc's sampled profile, see
//!   `crate::alloc`), in pprof's format (gzip-compressed protobuf, `inuse_space`); 501 in a build
//!   without the `jemalloc` feature.
//!
//! One profile runs at a time (the sampler is process-wide); another request meanwhile gets 409.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::api::Params;
use super::error::error_response;

/// The route a request matched, as its pattern (`/api/v1/rooms/{room}`), carried on the response for
/// [`record`]. Requests no route matched (static files, unknown paths) are labelled `other`.
#[derive(Clone)]
struct RouteLabel(String);

/// Route layer: notes the matched route's pattern on the response.
pub async fn tag_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let mut resp = next.run(req).await;
    // Nested routers run this twice: the innermost (most precise) pattern stays.
    if let Some(route) = route
        && resp.extensions().get::<RouteLabel>().is_none()
    {
        resp.extensions_mut().insert(RouteLabel(route));
    }
    resp
}

/// Outermost layer: counts every request by method, route and status, and times it by method and
/// route (to the response's head: a WebSocket upgrade or an event stream counts until it starts).
pub async fn record(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let route = resp.extensions().get::<RouteLabel>().map_or("other", |r| r.0.as_str()).to_owned();
    let status = resp.status().as_u16().to_string();
    metrics::histogram!("parley_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("parley_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    resp
}

/// Prometheus text exposition of the process's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    summary = "Prometheus metrics (text format; README \"Operations\" lists the series). Not here with --metrics-listen",
    responses((status = 200, description = "every series", content_type = "text/plain", body = String)), security(()))]
pub async fn metrics() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::observe::render()).into_response()
}

/// The metrics listener's endpoints (`--metrics-listen`).
pub fn router() -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/debug/pprof/profile", get(cpu_profile))
        .route("/debug/pprof/flamegraph", get(flamegraph))
        .route("/debug/pprof/heap", get(heap_profile))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
}

/// A heap profile of what is live now (see [`crate::alloc::heap_profile`]).
async fn heap_profile() -> Response {
    use crate::alloc::HeapProfileError;
    match tokio::task::spawn_blocking(crate::alloc::heap_profile).await {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response(),
        Ok(Err(e @ HeapProfileError::Unavailable)) => {
            error_response(StatusCode::NOT_IMPLEMENTED, "not_available", &e.to_string())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "heap profile failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the profile could not be taken")
        }
        Err(e) => {
            tracing::error!(error = %e, "heap profile task failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the profile could not be taken")
        }
    }
}

#[derive(Deserialize)]
pub struct ProfileParams {
    seconds: Option<u64>,
}

const DEFAULT_SECONDS: u64 = 10;
const MAX_SECONDS: u64 = 120;
/// Samples per second: not a multiple of common timer frequencies, as Go's pprof does.
const FREQUENCY: i32 = 99;

/// Held while a profile runs.
static PROFILING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

enum Format {
    Pprof,
    FlameGraph,
}

async fn cpu_profile(Params(p): Params<ProfileParams>) -> Response {
    profile(p, Format::Pprof).await
}

async fn flamegraph(Params(p): Params<ProfileParams>) -> Response {
    profile(p, Format::FlameGraph).await
}

async fn profile(p: ProfileParams, format: Format) -> Response {
    let seconds = p.seconds.unwrap_or(DEFAULT_SECONDS);
    if !(1..=MAX_SECONDS).contains(&seconds) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("seconds must be between 1 and {MAX_SECONDS}"),
        );
    }
    let Ok(_running) = PROFILING.try_lock() else {
        return error_response(
            StatusCode::CONFLICT,
            "profile_running",
            "another profile is being taken; try again later",
        );
    };
    // The sampler's guard is not `Send`: sample on a blocking thread.
    let taken = tokio::task::spawn_blocking(move || sample(Duration::from_secs(seconds), format)).await;
    match taken {
        Ok(Ok((content_type, body))) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = format!("{e:#}"), "CPU profile failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the profile could not be taken")
        }
        Err(e) => {
            tracing::error!(error = %e, "CPU profile task failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the profile could not be taken")
        }
    }
}

fn sample(length: Duration, format: Format) -> anyhow::Result<(&'static str, Vec<u8>)> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()?;
    std::thread::sleep(length);
    let report = guard.report().build()?;
    let mut body = Vec::new();
    match format {
        Format::Pprof => {
            use pprof::protos::Message;
            report.pprof()?.encode(&mut body)?;
            Ok(("application/octet-stream", body))
        }
        // inferno writes nothing for no stacks: say so instead of an empty image.
        Format::FlameGraph if report.data.is_empty() => Ok((
            "image/svg+xml",
            format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\"><text x=\"10\" y=\"25\">\
                 No CPU samples in {} s: the process was idle.</text></svg>\n",
                length.as_secs()
            )
            .into_bytes(),
        )),
        Format::FlameGraph => {
            report.flamegraph(&mut body)?;
            Ok(("image/svg+xml", body))
        }
    }
}
