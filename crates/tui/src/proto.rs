//! The wire shapes of the Parley v1 protocol, from the protocol crate (`parley-proto`), which the server
//! encodes with: `parley_proto::client` is this client's side of it (decoding server frames, encoding
//! client frames, and the small presentation helpers on them).

pub use parley_proto::client::*;
