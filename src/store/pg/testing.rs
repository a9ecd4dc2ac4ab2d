use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;

use futures_util::FutureExt as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// The variable that points the PostgreSQL tests at a server.
pub(crate) const URL_VAR: &str = "PARLEY_TEST_POSTGRES_URL";

/// The test database URL, or `None` (after telling why on stderr) when the tests are not configured.
pub(crate) fn url_or_skip(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED {test}: set {URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test)");
            None
        }
    }
}

/// Creates a schema `parley_test_<random hex>`, runs `body` with connect options whose `search_path`
/// is that schema, then drops the schema (also when `body` panics). Panics when the server is
/// unreachable: a configured test must fail rather than pass silently.
pub(crate) async fn with_schema<F, Fut>(url: &str, body: F)
where
    F: FnOnce(PgConnectOptions) -> Fut,
    Fut: Future<Output = ()>,
{
    let base = PgConnectOptions::from_str(url).unwrap_or_else(|e| panic!("{URL_VAR}={url:?} is not a URL: {e}"));
    let mut admin = PgConnection::connect_with(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url} ({URL_VAR}): {e}"));
    let schema = format!("parley_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.unwrap();
    // The schema's name doubles as the application name, to find this test's sessions afterwards.
    let opts = base.options([("search_path", schema.as_str())]).application_name(&schema);
    let outcome = AssertUnwindSafe(body(opts)).catch_unwind().await;
    let dropped = drop_schema(&mut admin, &schema).await;
    let _ = admin.close().await;
    match (outcome, dropped) {
        (Ok(()), Ok(())) => {}
        (Ok(()), Err(e)) => panic!("dropping schema {schema}: {e}"),
        (Err(panic), dropped) => {
            if let Err(e) = dropped {
                eprintln!("dropping schema {schema} after a failure: {e}");
            }
            std::panic::resume_unwind(panic);
        }
    }
}

/// Drops the test schema. After a failure, sessions of the test's pools may still be running
/// statements (their tasks were dropped, not their server-side work): end them first, and retry
/// should the drop still deadlock with one of them.
async fn drop_schema(admin: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    let mut attempt = 0;
    loop {
        // Best effort (needs the same role or pg_signal_backend); the retry covers the rest.
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(schema)
        .execute(&mut *admin)
        .await;
        match sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
            .execute(&mut *admin)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if attempt >= 4 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}
