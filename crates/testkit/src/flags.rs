//! The flags test nodes run with.

use std::path::Path;

/// Password hashing cheap enough for tests (the default costs ~19 MiB and tens of ms a hash).
pub const CHEAP_HASHING: [&str; 4] = ["--argon2-memory-kib", "1024", "--argon2-iterations", "1"];

/// No rate or connection limit a load test could reach (the flags of `scripts/bench-scenarios.sh`).
pub const NO_LIMITS: [&str; 12] = [
    "--auth-per-minute",
    "10000000",
    "--auth-burst",
    "1000000",
    "--messages-per-sec",
    "1000000",
    "--message-burst",
    "1000000",
    "--max-connections",
    "100000",
    "--max-connections-per-user",
    "100000",
];

/// Flags every test node gets: HTTP and the TCP line port on port 0, cheap password hashing, `dir` as
/// its data directory.
pub fn base(dir: &Path) -> Vec<String> {
    ["--listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0"]
        .into_iter()
        .chain(CHEAP_HASHING)
        .chain(["--data-dir"])
        .map(str::to_owned)
        .chain([dir.display().to_string()])
        .collect()
}

/// Sets `flag`'s value in `flags` (appends the pair when it is absent).
pub fn set(flags: &mut Vec<String>, flag: &str, value: &str) {
    match flags.iter().position(|f| f == flag) {
        Some(i) => flags[i + 1] = value.to_owned(),
        None => flags.extend([flag.to_owned(), value.to_owned()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_flags_set_and_replace() {
        let mut f = base(Path::new("/tmp/x"));
        assert_eq!(f.last().map(String::as_str), Some("/tmp/x"));
        set(&mut f, "--tcp-listen", "off");
        set(&mut f, "--log-format", "json");
        let at = f.iter().position(|a| a == "--tcp-listen").unwrap();
        assert_eq!(f[at + 1], "off");
        assert_eq!(f[f.len() - 2..], ["--log-format", "json"]);
    }
}
