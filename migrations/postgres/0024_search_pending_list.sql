-- Acknowledgement latency on PostgreSQL (issue 18): a GIN index with `fastupdate` (the default) queues new
-- entries in a pending list and merges it into the index when it passes `gin_pending_list_limit`
-- (4 MB by default) — inside the insert that passes it, so one batch of messages every few seconds waited
-- for the merge of thousands: ack p99 53–80 ms at 5,000 msg/s offered. A 256 kB list is merged ~16 times
-- as often in pieces 16 times smaller: p99 21–23 ms, the same saturation throughput (12.7–12.9k acked/s),
-- where `fastupdate = off` gave p99 19–21 ms but 10–17 % less throughput (BENCHMARKS.md, "PostgreSQL: the
-- search index's pending list").
ALTER INDEX messages_search SET (gin_pending_list_limit = 256);
