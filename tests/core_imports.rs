//! The core is the leaf: nothing under `src/core/` may import an adapter or a transport. Its traits
//! (`core::ports`) are what adapters implement; the core's unit tests reach the in-memory adapters
//! only through the test-only `crate::testing` module. This test fails on any line of `src/core/` that
//! names `crate::store`, `crate::broker`, `crate::auth`, `crate::http`, `crate::tcp`, `crate::jobs`,
//! `crate::blobs`, `crate::server`, `crate::config`, `crate::observe` or `crate::tls` (comments
//! included, so the grep in ARCHITECTURE.md stays empty too), or that grabs them through
//! `crate::{…}` or `super::super::`.

use std::path::Path;

const ADAPTERS: &[&str] = &[
    "store",
    "broker",
    "auth",
    "http",
    "tcp",
    "jobs",
    "blobs",
    "redis_link",
    "server",
    "config",
    "observe",
    "tls",
    "healthcheck",
];

/// The offending lines of `text` (1-based line numbers).
fn offences(text: &str) -> Vec<(usize, String)> {
    let mut found = vec![];
    for (n, line) in text.lines().enumerate() {
        let bad = ADAPTERS.iter().any(|a| {
            let needle = format!("crate::{a}");
            line.match_indices(&needle).any(|(i, _)| {
                // `crate::storeX` is not `crate::store`; neither is `mycrate::store`.
                let after = line[i + needle.len()..].chars().next();
                let before = line[..i].chars().next_back();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        }) || line.contains("crate::{")
            || line.contains("super::super::super");
        if bad {
            found.push((n + 1, line.trim().to_owned()));
        }
    }
    found
}

#[test]
fn the_core_imports_no_adapter() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let files = parley_testkit::source::rust_files(&root);
    assert!(files.len() > 10, "src/core was scanned");
    let mut report = String::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in offences(&text) {
            report.push_str(&format!("{}:{n}: {line}\n", f.display()));
        }
    }
    assert!(report.is_empty(), "src/core must not import adapters (use core::ports; tests: crate::testing):\n{report}");
}

#[test]
fn the_scan_catches_what_it_should() {
    assert_eq!(offences("use crate::store::DynStore;").len(), 1);
    assert_eq!(offences("    use crate::broker::{BrokerEvent, BrokerSink};").len(), 1);
    assert_eq!(offences("let x = crate::auth::Tokens::new();").len(), 1);
    assert_eq!(offences("use crate::{store, core};").len(), 1);
    assert!(offences("use crate::core::ports::store::DynStore;").is_empty());
    assert!(offences("use crate::testing::MemoryStore;").is_empty());
    assert!(offences("use super::ports::broker::BrokerEvent;").is_empty());
}
