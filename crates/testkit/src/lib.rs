//! Parley's test toolbox, shared by `tests/it`, `crates/bench` tests and `crates/tui` tests (a
//! dev-dependency only): waiting on a condition with a bound ([`wait`]).

pub mod wait;

use std::time::Duration;

/// How long a test waits for anything before failing instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(15);
