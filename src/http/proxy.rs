//! The client's address behind reverse proxies (`--trusted-proxies`).
//!
//! When the peer is a trusted proxy, the client is the right-most address of `X-Forwarded-For` that
//! is not itself a trusted proxy (each proxy appends the address it saw; only the entries our own
//! proxies appended can be believed). The request's [`ClientAddr`] is replaced by it, so every
//! per-address limit counts the client. From any other peer the header is ignored: a client cannot
//! choose its own address by sending one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use super::{AppState, ClientAddr};

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    proxies.iter().any(|n| n.contains(&ip))
}

/// The client's address for a request from `peer` with `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    // Several headers read as one list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !trusted(ip, proxies) {
                    break;
                }
            }
            // Garbage: nothing left of it can be believed; the last good hop is the client.
            None => break,
        }
    }
    client
}

/// An address as proxies write it: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443`, `1.2.3.4:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip())).map(|ip| ip.to_canonical())
}

/// Layer: rewrites the connection's [`ClientAddr`] to the forwarded client's when the peer is trusted.
pub async fn forwarded_client(State(app): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let proxies = &app.config.trusted_proxies;
    if !proxies.is_empty()
        && let Some(ConnectInfo(ClientAddr(peer))) = req.extensions().get::<ConnectInfo<ClientAddr>>().copied()
    {
        let ip = client_ip(peer.ip(), req.headers(), proxies);
        if ip != peer.ip() {
            req.extensions_mut().insert(ConnectInfo(ClientAddr(SocketAddr::new(ip, 0))));
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use axum::http::{HeaderMap, HeaderValue};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 198.51.100.7"));
        let table = [
            // (peer, expected client)
            ("10.1.2.3", "198.51.100.7"), // trusted proxy: the right-most untrusted hop
            ("192.0.2.1", "192.0.2.1"),   // anyone else: the header is ignored
            ("::ffff:127.0.0.1", "198.51.100.7"), // IPv4-mapped peer is the same proxy
        ];
        for (peer, want) in table {
            assert_eq!(client_ip(ip(peer), &h, &proxies), ip(want), "peer {peer}");
        }
        // A chain of our own proxies is walked through; a spoofed left part is not believed.
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 198.51.100.7, 10.9.9.9"));
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &proxies), ip("198.51.100.7"));
        // Several headers are one list; ports and brackets are accepted.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.append("x-forwarded-for", HeaderValue::from_static("[2001:db8::5]:443"));
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &proxies), ip("2001:db8::5"));
        // Garbage ends the walk; no header leaves the peer.
        h.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(client_ip(ip("10.1.1.1"), &h, &proxies), ip("10.1.1.1"));
        assert_eq!(client_ip(ip("10.1.1.1"), &HeaderMap::new(), &proxies), ip("10.1.1.1"));
    }
}
