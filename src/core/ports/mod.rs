//! The core's ports: the traits (and the types they carry) through which the core reaches what lies
//! outside it — durable state ([`store`]), other nodes ([`broker`]), password hashing and tokens
//! ([`credentials`]), time ([`clock`]); the blob store's port is [`crate::core::blobs`]. Adapters
//! (`src/store`, `src/broker`, `src/auth.rs`, `src/blobs`) implement them; the core never imports an
//! adapter (`tests/core_imports.rs` fails the build's tests if it does).

pub mod broker;
pub mod clock;
pub mod credentials;
pub mod store;
