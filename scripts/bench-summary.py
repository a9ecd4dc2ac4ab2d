#!/usr/bin/env python3
"""One line per JSON report in target/bench/: the figures BENCHMARKS.md quotes."""
import glob, json, os, sys

d = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
for f in sorted(glob.glob(os.path.join(d, "*.json"))):
    r = json.load(open(f))
    name = os.path.basename(f)[:-5]
    srv = r.get("server") or {}
    if r.get("scenario") == "recovery":
        runs = sorted(x["total_ms"] for x in r["recovery"]["runs"])
        print(f"{name}: median {runs[len(runs)//2]:.1f} ms over {len(runs)} runs (min {runs[0]:.1f}, max {runs[-1]:.1f})")
        continue
    if r.get("scenario") == "logins":
        g = r["logins"]
        print(f"{name}: {g['concurrent']} logins at once: {g['ok']} ok, {g['rate_limited']} 429, {g['other_status']} other, "
              f"{g['failed']} failed in {g['seconds']:.2f} s, latency p50 {g['latency_us']['p50']/1000:.0f} p99 {g['latency_us']['p99']/1000:.0f} ms; "
              f"server RSS {g['rss_before_kib']/1024:.1f} MiB before, peak {max(g['rss_peak_seen_kib'], g['rss_hwm_kib'])/1024:.1f} MiB, "
              f"{g['rss_after_kib']/1024:.1f} MiB after")
        continue
    c = r["connections"]
    if r.get("scenario") == "idle":
        print(f"{name}: {c['opened']} open, {c['connect_rate_per_s']:.0f}/s, server RSS/conn {srv.get('rss_bytes_per_connection', 0)/1024:.1f} KiB, "
              f"server cpu {srv.get('cpu_cores', 0)*100:.2f}% of a core while idle")
        continue
    l = r["load"]
    lat, ack = l["latency_us"], l["ack_latency_us"]
    slow = l.get("slow", {})
    print(f"{name}: offered {l['target_total_rate']:.0f} msg/s, acked {l['acked_per_s']:.0f}/s, delivered {l['deliveries_per_s']:.0f}/s, "
          f"lost {l['lost_deliveries']} dup {l['duplicated_deliveries']}, e2e p50 {lat['p50']/1000:.1f} p90 {lat['p90']/1000:.1f} "
          f"p99 {lat['p99']/1000:.1f} p99.9 {lat['p999']/1000:.1f} max {lat['max']/1000:.1f} ms, ack p50 {ack['p50']/1000:.1f} p99 {ack['p99']/1000:.1f} ms, "
          f"server {srv.get('cpu_us_per_delivery', 0):.2f} us/delivery ({srv.get('cpu_cores', 0):.2f} cores), late sends {l['counters']['sends_late']}"
          + (f", slow closed {slow}" if slow else "")
          + (f", ack 35-45 ms band {l['ack_40ms_band']['band']*100:.1f}% FLAGGED" if l.get("ack_40ms_band", {}).get("flagged") else ""))
