//! The queue contract, compiled only for tests: every [`JobQueue`](super::JobQueue) backend passes these
//! checks, one `#[tokio::test]` per rule and backend (`tests::{in_memory,on_redis}::…`; Redis when
//! `PARLEY_TEST_REDIS_URL` is set). Each rule uses a fresh queue.

use std::time::Duration;

use serde_json::json;

use super::{DynQueue, Job};

const WAIT: Duration = Duration::from_secs(5);
const NOTHING: Duration = Duration::from_millis(20);

async fn take(q: &DynQueue) -> super::Reserved {
    q.reserve(WAIT).await.unwrap().expect("a job within the deadline")
}

/// Runs every check against `q`, which must be empty.
async fn run_all(q: DynQueue) {
    fifo_and_ack(&q).await;
    retries_wait_their_delay(&q).await;
    dead_letters(&q).await;
}

async fn fifo_and_ack(q: &DynQueue) {
    let (a, b) = (Job::new("t", json!({"n": 1})), Job::new("t", json!({"n": 2})));
    q.enqueue(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(q.depth().await.unwrap().ready, 2);
    let ra = take(q).await;
    assert_eq!(ra.job, a, "first in, first out");
    let rb = take(q).await;
    assert_eq!(rb.job, b);
    assert!(q.reserve(NOTHING).await.unwrap().is_none(), "a reserved job is invisible to other workers");
    let d = q.depth().await.unwrap();
    assert_eq!((d.ready, d.processing), (0, 2));
    q.ack(&ra).await.unwrap();
    q.ack(&rb).await.unwrap();
    assert_eq!(q.depth().await.unwrap(), super::Depth::default());
}

async fn retries_wait_their_delay(q: &DynQueue) {
    let job = Job::new("t", json!({}));
    q.enqueue(std::slice::from_ref(&job)).await.unwrap();
    let r = take(q).await;
    let mut failed = r.job.clone();
    failed.attempts = 1;
    failed.last_error = Some("boom".into());
    let started = std::time::Instant::now();
    q.retry(&r, &failed, Duration::from_millis(300)).await.unwrap();
    let d = q.depth().await.unwrap();
    assert_eq!((d.ready, d.delayed, d.processing), (0, 1, 0));
    assert!(q.reserve(NOTHING).await.unwrap().is_none(), "not before its delay");
    let again = take(q).await;
    assert!(started.elapsed() >= Duration::from_millis(290), "came back after {:?}", started.elapsed());
    assert_eq!(again.job, failed, "with its attempts and error");
    q.ack(&again).await.unwrap();
}

async fn dead_letters(q: &DynQueue) {
    let job = Job::new("t", json!({"x": "y"}));
    q.enqueue(std::slice::from_ref(&job)).await.unwrap();
    let r = take(q).await;
    let mut failed = r.job.clone();
    failed.attempts = 3;
    failed.last_error = Some("gave up".into());
    q.bury(&r, &failed).await.unwrap();
    assert_eq!(q.dead(10).await.unwrap(), vec![failed]);
    let d = q.depth().await.unwrap();
    assert_eq!((d.ready, d.delayed, d.processing, d.dead), (0, 0, 0, 1));
    assert!(q.reserve(NOTHING).await.unwrap().is_none(), "dead jobs do not run");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::jobs::memory::MemoryQueue;

    /// The whole suite in sequence on one queue.
    #[tokio::test]
    async fn memory_queue_meets_the_contract() {
        run_all(Arc::new(MemoryQueue::new(100))).await;
    }

    async fn in_memory<Fut: Future<Output = ()>>(_test: &str, rule: impl FnOnce(DynQueue) -> Fut) {
        rule(Arc::new(MemoryQueue::new(100))).await;
    }

    async fn on_redis<Fut: Future<Output = ()>>(test: &str, rule: impl FnOnce(DynQueue) -> Fut) {
        let Some(url) = redis_url_or_skip(test) else { return };
        let p = prefix();
        let q = crate::jobs::redis::RedisQueue::connect(&url, &p).await.unwrap();
        rule(Arc::new(q)).await;
        clean(&url, &p).await;
    }

    /// One `#[tokio::test]` per rule and backend, each on a fresh queue: one failing rule never hides
    /// the others.
    macro_rules! per_rule {
        ($($backend:ident),+) => {
            $(
                mod $backend {
                    use super::*;
                    per_rule!(@rules $backend, fifo_and_ack, retries_wait_their_delay, dead_letters);
                }
            )+
        };
        (@rules $backend:ident, $($rule:ident),+) => {
            $(
                #[tokio::test]
                async fn $rule() {
                    super::$backend(stringify!($rule), |q: DynQueue| async move { super::super::$rule(&q).await }).await;
                }
            )+
        };
    }

    per_rule!(in_memory, on_redis);

    #[tokio::test]
    async fn memory_queue_is_bounded() {
        let q = MemoryQueue::new(2);
        use crate::jobs::JobQueue;
        q.enqueue(&[Job::new("t", json!({})), Job::new("t", json!({}))]).await.unwrap();
        let err = q.enqueue(&[Job::new("t", json!({}))]).await.unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
    }

    /// A Redis URL from `PARLEY_TEST_REDIS_URL`, or `None` after saying the test is skipped.
    pub(crate) fn redis_url_or_skip(test: &str) -> Option<String> {
        match std::env::var("PARLEY_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                eprintln!("SKIPPED {test}: set PARLEY_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run it");
                None
            }
        }
    }

    fn prefix() -> String {
        format!("parley-test:{}", hex::encode(rand::random::<[u8; 6]>()))
    }

    async fn clean(url: &str, prefix: &str) {
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut conn).await.unwrap();
        if !keys.is_empty() {
            redis::cmd("DEL").arg(keys).query_async::<()>(&mut conn).await.unwrap();
        }
    }

    /// A private 3-master Redis Cluster, started where PARLEY_TEST_REDIS_URL says Redis is installed.
    async fn cluster_or_skip(test: &str) -> Option<crate::redis_link::testing::RedisCluster> {
        redis_url_or_skip(test)?;
        Some(tokio::task::spawn_blocking(|| crate::redis_link::testing::RedisCluster::start(3, 0)).await.unwrap())
    }

    #[tokio::test]
    async fn redis_cluster_queue_meets_the_contract() {
        let Some(cluster) = cluster_or_skip("redis_cluster_queue_meets_the_contract").await else { return };
        let q = crate::jobs::redis::RedisQueue::connect(&cluster.url(), &prefix()).await.unwrap();
        run_all(Arc::new(q)).await;
    }

    #[tokio::test]
    async fn redis_recovers_the_jobs_of_a_dead_node() {
        let Some(url) = redis_url_or_skip("redis_recovers_the_jobs_of_a_dead_node") else { return };
        recovers_a_dead_node(&url).await;
    }

    #[tokio::test]
    async fn redis_cluster_recovers_the_jobs_of_a_dead_node() {
        let Some(cluster) = cluster_or_skip("redis_cluster_recovers_the_jobs_of_a_dead_node").await else { return };
        recovers_a_dead_node(&cluster.url()).await;
    }

    async fn recovers_a_dead_node(url: &str) {
        use crate::jobs::JobQueue;
        use crate::jobs::redis::RedisQueue;
        use crate::redis_link::RedisTarget;
        let url = url.to_owned();
        let p = prefix();
        let target = RedisTarget::parse(&url).unwrap();
        // The queue's key names: hash-tagged on a cluster.
        let keys = if target.is_cluster() { format!("{{{p}}}") } else { p.clone() };
        let (dying, survivor) =
            (RedisQueue::connect(&url, &p).await.unwrap(), RedisQueue::connect(&url, &p).await.unwrap());
        let job = Job::new("t", json!({"n": 7}));
        dying.enqueue(std::slice::from_ref(&job)).await.unwrap();
        dying.heartbeat().await.unwrap();
        survivor.heartbeat().await.unwrap();
        let taken = dying.reserve(WAIT).await.unwrap().unwrap();
        assert_eq!(taken.job, job);
        // The dying node stops (never acknowledges). Live nodes are left alone...
        assert_eq!(survivor.recover(Duration::from_secs(60)).await.unwrap(), 0);
        assert!(survivor.reserve(NOTHING).await.unwrap().is_none());
        // ...until its last heartbeat is older than the limit: here, made old directly.
        let mut conn = target.connect().await.unwrap();
        redis::cmd("ZADD")
            .arg(format!("{keys}:nodes"))
            .arg(1)
            .arg(dying.node())
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        assert_eq!(survivor.recover(Duration::from_secs(60)).await.unwrap(), 1);
        let again = survivor.reserve(WAIT).await.unwrap().expect("the job runs again elsewhere");
        assert_eq!(again.job, job);
        survivor.ack(&again).await.unwrap();
        assert_eq!(survivor.recover(Duration::from_secs(60)).await.unwrap(), 0, "recovered once");
        if !target.is_cluster() {
            clean(&url, &p).await;
        }
    }

    #[tokio::test]
    async fn redis_puts_back_jobs_no_worker_holds() {
        use crate::jobs::JobQueue;
        use crate::jobs::redis::RedisQueue;
        let Some(url) = redis_url_or_skip("redis_puts_back_jobs_no_worker_holds") else { return };
        let p = prefix();
        let q = RedisQueue::connect(&url, &p).await.unwrap();
        let job = Job::new("t", json!({"n": 8}));
        q.enqueue(std::slice::from_ref(&job)).await.unwrap();
        // A reservation whose reply never reached a worker: moved server-side, held by nobody.
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("LMOVE")
            .arg(format!("{p}:ready"))
            .arg(format!("{p}:processing:{}", q.node()))
            .arg("RIGHT")
            .arg("LEFT")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        // A job in a worker's hands is never touched.
        let other = Job::new("t", json!({"n": 9}));
        q.enqueue(std::slice::from_ref(&other)).await.unwrap();
        let held = q.reserve(WAIT).await.unwrap().unwrap();
        assert_eq!(q.recover(Duration::from_secs(60)).await.unwrap(), 0, "first sighting: only a suspect");
        assert_eq!(q.recover(Duration::from_secs(60)).await.unwrap(), 1, "second: put back");
        let again = q.reserve(WAIT).await.unwrap().expect("the orphan runs");
        assert_eq!(again.job, job);
        q.ack(&again).await.unwrap();
        q.ack(&held).await.unwrap();
        assert_eq!(q.depth().await.unwrap(), crate::jobs::Depth::default());
        clean(&url, &p).await;
    }
}
