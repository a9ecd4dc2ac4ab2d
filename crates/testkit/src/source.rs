//! Reading the source tree, for the tests that keep its layering (`tests/core_imports.rs`,
//! `crates/tui/tests/layers.rs`).

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    walk(dir, &mut out);
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_this_file() {
        let files = super::rust_files(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
        assert!(files.iter().any(|f| f.ends_with("source.rs")), "{files:?}");
    }
}
