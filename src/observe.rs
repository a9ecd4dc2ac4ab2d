//! Prometheus metrics: one process-wide recorder behind the `metrics` facade, rendered at `GET /metrics`.
//!
//! The recorder is installed once per process (several nodes may run in one process, as in the tests);
//! every node renders the same registry. Series are named `parley_*` (see README "Metrics").

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::core::error::Limit;
use crate::core::limits::Transport;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often histograms are trimmed and idle series dropped (the exporter's upkeep).
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process-wide recorder's handle, installing it on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let recorder = match builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS) {
            Ok(b) => b.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        // Fails only if another recorder was installed first (an embedding program's): then this
        // registry stays empty but rendering still works.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        describe();
        handle.clone()
    })
}

fn describe() {
    describe_gauge!("parley_connections_open", "Live connections, by transport.");
    describe_counter!("parley_connections_total", "Connections admitted since start, by transport.");
    describe_counter!("parley_messages_received_total", "Messages submitted for storage.");
    describe_counter!("parley_messages_delivered_total", "Deliveries written to connections.");
    describe_histogram!(
        "parley_ack_latency_seconds",
        Unit::Seconds,
        "From submitting a message to its acknowledgement."
    );
    describe_histogram!("parley_store_append_seconds", Unit::Seconds, "Storing one batch of messages.");
    describe_histogram!("parley_broker_publish_seconds", Unit::Seconds, "Publishing one stored message to the broker.");
    describe_counter!("parley_slow_client_disconnects_total", "Connections closed because their queue overflowed.");
    describe_counter!(
        "parley_broker_received_total",
        "Events taken off Redis from other nodes (only routed rooms and users)."
    );
    describe_counter!(
        "parley_presence_snapshots_wanted_total",
        "Presence snapshots asked of other nodes after a heartbeat mismatch."
    );
    describe_counter!(
        "parley_ephemeral_dropped_total",
        "Typing and presence events not queued because a connection's queue was half full."
    );
    describe_counter!("parley_send_timeouts_total", "Sends answered `unavailable` because --send-timeout-ms passed.");
    describe_counter!("parley_rate_limited_total", "Requests refused by an abuse limit, by limit.");
    describe_gauge!("parley_jobs_queued", "Background jobs waiting to run.");
    describe_counter!("parley_jobs_completed_total", "Background jobs that ran to completion, by kind.");
    describe_counter!(
        "parley_jobs_failed_total",
        "Background job runs that failed (to be retried or buried), by kind."
    );
    describe_counter!("parley_jobs_dead_total", "Background jobs moved to the dead-letter list, by kind.");
    describe_counter!("parley_http_requests_total", "HTTP requests answered, by method, route and status.");
    describe_histogram!(
        "parley_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to the response head), by method and route."
    );
    describe_gauge!(
        "parley_heap_allocated_bytes",
        Unit::Bytes,
        "Bytes allocated by the program (jemalloc's stats.allocated; only in builds with the jemalloc feature)."
    );
    describe_gauge!(
        "parley_heap_resident_bytes",
        Unit::Bytes,
        "Bytes of physical memory the allocator holds (jemalloc's stats.resident; only with the jemalloc feature)."
    );
    describe_gauge!("parley_build_info", "Always 1; the labels say which build runs (version, commit).");
    metrics::gauge!(
        "parley_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => env!("PARLEY_COMMIT"),
    )
    .set(1.0);
    process().describe();
    // Series that should show from the start, at zero.
    for limit in
        [Limit::Auth, Limit::Messages, Limit::ConnectionsPerUser, Limit::ConnectionsTotal, Limit::PasswordHashing]
    {
        metrics::counter!("parley_rate_limited_total", "limit" => limit.as_str()).increment(0);
    }
    for kind in [crate::jobs::retention::KIND, crate::jobs::webhook::KIND] {
        for name in ["parley_jobs_completed_total", "parley_jobs_failed_total", "parley_jobs_dead_total"] {
            metrics::counter!(name, "kind" => kind).increment(0);
        }
    }
    for t in Transport::ALL {
        metrics::gauge!("parley_connections_open", "transport" => t.as_str()).increment(0.0);
        metrics::counter!("parley_connections_total", "transport" => t.as_str()).increment(0);
    }
    metrics::counter!("parley_messages_received_total").increment(0);
    metrics::counter!("parley_messages_delivered_total").increment(0);
    metrics::counter!("parley_slow_client_disconnects_total").increment(0);
    metrics::counter!("parley_ephemeral_dropped_total").increment(0);
    metrics::counter!("parley_broker_received_total").increment(0);
    metrics::counter!("parley_presence_snapshots_wanted_total").increment(0);
    metrics::counter!("parley_send_timeouts_total").increment(0);
    metrics::gauge!("parley_jobs_queued").set(0.0);
}

/// Trims histograms periodically until the task is dropped or aborted.
pub async fn upkeep() {
    let handle = handle();
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// The process collector: CPU seconds, resident and virtual memory, open and maximum file
/// descriptors, threads, start time (`process_*`, as every Prometheus client names them).
fn process() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// The text exposition of every series (process metrics read now).
pub fn render() -> String {
    let handle = handle();
    process().collect();
    if let Some(h) = crate::alloc::heap_stats() {
        metrics::gauge!("parley_heap_allocated_bytes").set(h.allocated as f64);
        metrics::gauge!("parley_heap_resident_bytes").set(h.resident as f64);
    }
    handle.render()
}
