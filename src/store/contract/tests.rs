//! The contract's tests: one `#[tokio::test]` per rule and backend, and the whole suite on one store.

use super::*;
use crate::store::memory::MemoryStore;
use crate::store::pg::{PgStore, testing};
use crate::store::sql::SqlStore;

async fn memory<Fut: Future<Output = ()>>(_test: &str, rule: impl FnOnce(DynStore) -> Fut) {
    rule(Arc::new(MemoryStore::new())).await;
}

async fn sqlite<Fut: Future<Output = ()>>(_test: &str, rule: impl FnOnce(DynStore) -> Fut) {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(SqlStore::open_sqlite(&dir.path().join("t.db")).await.unwrap());
    rule(store.clone()).await;
    store.close().await;
}

/// Runs against the server in `PARLEY_TEST_POSTGRES_URL`, in a schema of its own that is dropped
/// afterwards; skipped (passing) when the variable is unset, failing when the server is unreachable.
async fn postgres<Fut: Future<Output = ()>>(test: &str, rule: impl FnOnce(DynStore) -> Fut) {
    let Some(url) = testing::url_or_skip(test) else { return };
    testing::with_schema(&url, |opts| async move {
        let store: DynStore = Arc::new(PgStore::connect_with(opts).await.expect("connecting to PostgreSQL"));
        rule(store.clone()).await;
        store.close().await;
    })
    .await;
}

/// One `#[tokio::test]` per rule and backend (`<backend>::<rule>`, `<backend>::convo::<rule>`,
/// `<backend>::search::<rule>`), so one failing rule never hides the others. The lists must name
/// every rule `run_all` runs: `every_rule_has_a_test` compares them.
macro_rules! rules_for {
    ($backend:ident) => {
        mod $backend {
            rules_for!(@tests crate::store::contract::tests::$backend, crate::store::contract,
                probe_write_succeeds, users_are_unique_ignoring_case, sessions_can_be_revoked,
                rooms_and_membership, seqs_are_gapless_and_per_room, client_ids_deduplicate,
                direct_conversations_are_one_per_pair, read_state_edits_and_deletes, non_members_cannot_append,
                history_pages, retention_purges_old_messages_only, webhooks_belong_to_rooms,
                edits_replace_mentions, invitations_are_listed_and_declined, bans_are_listed,
                ownership_moves_and_returns, first_joins_at_once_make_one_owner, direct_rooms_are_found_by_pair,
                files_are_shared_once_and_go_with_their_message);
            mod convo {
                rules_for!(@tests crate::store::contract::tests::$backend, crate::store::contract::convo,
                    replies_keep_their_thread, reactions_are_idempotent_ordered_and_capped,
                    pins_are_listed_newest_first, notify_settings_shape_room_views,
                    followed_threads_count_unread_replies, retention_takes_reactions_and_pins_along,
                    concurrent_reactions_count_exactly_and_respect_the_cap);
            }
            mod search {
                rules_for!(@tests crate::store::contract::tests::$backend, crate::store::contract::search,
                    words_phrases_and_prefixes, only_members_find_at_query_time,
                    edits_deletes_and_purges_change_the_index, filters_ranking_and_pages,
                    has_file_finds_messages_sharing_files);
            }
        }
    };
    (@tests $open:path, $rules:path, $($rule:ident),+) => {
        use $open as open;
        use $rules as rules;
        $(
            #[tokio::test]
            async fn $rule() {
                open(stringify!($rule), |store: crate::store::DynStore| async move { rules::$rule(&store).await })
                    .await;
            }
        )+
    };
}

rules_for!(memory);

/// The whole suite in sequence on one store, as on a shared database.
#[tokio::test]
async fn the_whole_suite_runs_on_one_store() {
    run_all(Arc::new(MemoryStore::new())).await;
}

rules_for!(sqlite);
rules_for!(postgres);

/// The per-rule lists above name every rule `run_all` (and its convo and search parts) runs.
#[test]
fn every_rule_has_a_test() {
    let calls = |src: &str| -> Vec<String> {
        let body = &src[src.find("run_all(").expect("run_all")..];
        let body = &body[..body.find("\n}\n").expect("end of run_all")];
        body.lines()
            .filter_map(|l| {
                l.trim().strip_suffix("(&store).await;").or_else(|| l.trim().strip_suffix("(store).await;"))
            })
            .filter(|n| !n.contains("::"))
            .map(str::to_owned)
            .collect()
    };
    let listed = include_str!("tests.rs");
    let listed = &listed[listed.find("macro_rules! rules_for").expect("the macro")..];
    for (src, what) in [
        (include_str!("../contract.rs"), "contract.rs"),
        (include_str!("convo.rs"), "contract/convo.rs"),
        (include_str!("search.rs"), "contract/search.rs"),
    ] {
        let rules = calls(src);
        assert!(!rules.is_empty(), "{what}: rules found");
        for r in rules {
            assert!(
                listed.contains(&format!("{r},")) || listed.contains(&format!("{r})")),
                "{what}: `{r}` has no per-rule test"
            );
        }
    }
}
