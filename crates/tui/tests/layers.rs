//! The client's layers import downwards only: the renderer (`ui.rs`) reads the state machine, never the
//! other way round. `model.rs` (what the client holds) and `layout.rs` (messages as lines) sit below
//! both; `state/` may use them but must not name the renderer. This test fails on any line under
//! `src/` other than `ui.rs` and `lib.rs` (which wires the two together) that names `crate::ui` or
//! `super::ui` in code (comments aside), and on any line of `model.rs` that names a module of this crate other than `proto`.

use std::path::Path;

/// Whether `line` names `module` in code (comments, with their intra-doc links, are not imports).
fn names_module(line: &str, module: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    ["crate::", "super::"].iter().any(|root| {
        let needle = format!("{root}{module}");
        code.match_indices(&needle).any(|(i, _)| {
            let after = code[i + needle.len()..].chars().next();
            !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

#[test]
fn nothing_below_the_renderer_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = parley_testkit::source::rust_files(&src);
    assert!(files.iter().any(|f| f.ends_with("state/mod.rs")), "the state machine is under src/state/");
    let mut found = vec![];
    for file in files.iter().filter(|f| !f.ends_with("ui.rs") && !f.ends_with("lib.rs")) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if names_module(line, "ui") {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "the renderer imported from below it:\n{}", found.join("\n"));
}

#[test]
fn the_model_is_plain_data() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model.rs")).unwrap();
    let modules = ["command", "layout", "markup", "net", "state", "ui"];
    let found: Vec<&str> = text.lines().filter(|l| modules.iter().any(|m| names_module(l, m))).collect();
    assert!(found.is_empty(), "model.rs names a layer above it: {found:?}");
}

#[test]
fn the_check_sees_an_import() {
    assert!(names_module("use crate::ui::render;", "ui"));
    assert!(names_module("    super::ui::NARROW", "ui"));
    assert!(!names_module("use crate::uid::Thing;", "ui"));
    assert!(!names_module("//! drawn by [`crate::ui`]", "ui"));
}
