//! Durable state behind one trait, so the core never sees SQL.
//!
//! Backends: [`memory::MemoryStore`] (tests, `--database-url memory:`), [`sql::SqlStore`] on SQLite
//! (the default) and [`pg::PgStore`] on PostgreSQL (`--database-url postgres://…`, for several nodes) —
//! the same contract suite ([`contract`]) runs against each. The two SQL stores share their common
//! statements (`shared`) and row mapping (`rows`). Design choices shaped by the
//! backends still to come (PostgreSQL with several writer nodes):
//! - **The store assigns sequence numbers**, inside the transaction that stores the message, from a
//!   per-room counter row. That is what keeps `seq` gap-free and strictly increasing however many
//!   writers there are.
//! - **Appends are batched** ([`Store::append`] takes a slice): the caller (`core::ingest`) gathers
//!   concurrent sends into one transaction, so one disk sync acknowledges many messages.
//! - **Membership is checked inside the append**, so a message from someone who just left is refused
//!   atomically rather than by a racy check beforehand.

#[cfg(test)]
mod connect_cost;
mod connect_sql;
#[cfg(test)]
mod contract;
pub mod memory;
pub mod pg;
mod rows;
mod search_sql;
mod shared;
pub mod sql;
mod sqlite_reader;
mod sqlite_writer;

// The trait and its row types are the core's port (`core::ports::store`); re-exported here so the
// adapters and their callers keep their paths.
pub use crate::core::ports::store::{Credentials, DynStore, Session, Store};
