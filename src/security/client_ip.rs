//! The client's IP address as handlers see it.
//!
//! [`resolve`] is the pure rule: the TCP peer, unless the peer is a trusted proxy; then
//! `X-Forwarded-For` is walked from the right and the first untrusted address wins.
//! `X-Real-IP` and `Forwarded` are never read: Caddy passes them through as the client
//! sent them. The [`resolve_layer`] middleware applies the rule once per request and
//! puts the result into the request extensions, where the [`ClientIp`] extractor finds it
//! (without the layer, the extractor falls back to the TCP peer).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        client_ip(&parts.extensions)
            .ok_or_else(|| ApiError::Internal("the server was started without connect info".into()))
    }
}

/// The resolved client IP if a layer put one there, else the TCP peer.
pub fn client_ip(extensions: &Extensions) -> Option<ClientIp> {
    if let Some(resolved) = extensions.get::<ClientIp>() {
        return Some(*resolved);
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| ClientIp(peer.ip().to_canonical()))
}

/// A set of IPs and networks (`TRUSTED_PROXIES`, `WEBHOOK_ALLOWED_IPS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet(Vec<IpNet>);

impl IpSet {
    /// Parses `1.2.3.4`, `10.0.0.0/8`, `::1`, `fd00::/8`, …; `none` is the empty set.
    pub fn parse_list(items: &[String]) -> Result<Self, String> {
        if let [only] = items
            && only.eq_ignore_ascii_case("none")
        {
            return Ok(Self::default());
        }
        items
            .iter()
            .map(|item| parse_network(item))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_network(text: &str) -> Result<IpNet, String> {
    let canonical = |net: IpNet| match net.addr().to_canonical() {
        IpAddr::V4(v4) if net.addr().is_ipv6() => {
            IpNet::new(IpAddr::V4(v4), net.prefix_len().saturating_sub(96))
                .map_err(|e| e.to_string())
        }
        _ => Ok(net.trunc()),
    };
    if let Ok(net) = text.parse::<IpNet>() {
        return canonical(net);
    }
    text.parse::<IpAddr>()
        .map(|ip| IpNet::from(ip.to_canonical()))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))
}

/// At most this many `X-Forwarded-For` entries are examined: a longer proxy chain is not
/// ours, and a client cannot make the server walk a 10 KB header.
const MAX_HOPS: usize = 32;

/// The client IP for a request from `peer` carrying these `X-Forwarded-For` values.
///
/// Walking from the right, each trusted address hands over to the one on its left; the
/// first untrusted address is the client. An entry that is not an address (`unknown`,
/// garbage, non-ASCII) stops the walk at the last trusted hop, because whatever lies left
/// of it was written by nobody we trust.
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    trusted: &IpSet,
) -> IpAddr {
    let mut current = peer.to_canonical();
    if !trusted.contains(current) {
        return current;
    }
    let mut hops = 0;
    for value in forwarded_for.rev() {
        let Ok(text) = value.to_str() else {
            return current;
        };
        for entry in text.rsplit(',') {
            hops += 1;
            let Some(ip) = (hops <= MAX_HOPS).then(|| parse_entry(entry)).flatten() else {
                return current;
            };
            current = ip;
            if !trusted.contains(ip) {
                return ip;
            }
        }
    }
    current
}

/// One `X-Forwarded-For` entry: an address, optionally with a port or in brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if entry.len() > 64 {
        return None;
    }
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
}

/// Resolves the client IP once per request and stores it as a [`ClientIp`] extension.
pub async fn resolve_layer(
    State(trusted): State<Arc<IpSet>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    if let Some(peer) = peer {
        let ip = resolve_headers(peer, request.headers(), &trusted);
        tracing::Span::current().record("client_ip", tracing::field::display(ip));
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

fn resolve_headers(peer: IpAddr, headers: &HeaderMap, trusted: &IpSet) -> IpAddr {
    resolve(peer, headers.get_all("x-forwarded-for").iter(), trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> IpSet {
        IpSet::parse_list(&["127.0.0.1".into(), "::1".into()]).unwrap()
    }

    fn set(items: &[&str]) -> IpSet {
        IpSet::parse_list(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn run(peer: &str, xff: &[&str], trusted: &IpSet) -> IpAddr {
        let values: Vec<HeaderValue> = xff
            .iter()
            .map(|v| HeaderValue::from_bytes(v.as_bytes()).unwrap())
            .collect();
        resolve(ip(peer), values.iter(), trusted)
    }

    #[test]
    fn the_rule_holds_for_every_row_of_the_table() {
        let trusted = loopback();
        let proxies = set(&["127.0.0.1", "10.0.0.0/8"]);
        #[rustfmt::skip]
        let table: &[(&str, &[&str], &IpSet, &str)] = &[
            // An untrusted peer is the client, whatever it claims.
            ("203.0.113.7", &["198.51.100.1"], &trusted, "203.0.113.7"),
            ("203.0.113.7", &[], &trusted, "203.0.113.7"),
            // A trusted peer without the header is the client.
            ("127.0.0.1", &[], &trusted, "127.0.0.1"),
            // Behind the proxy: the rightmost entry, whatever the client prepended.
            ("127.0.0.1", &["203.0.113.7"], &trusted, "203.0.113.7"),
            ("127.0.0.1", &["6.6.6.6, 203.0.113.7"], &trusted, "203.0.113.7"),
            ("127.0.0.1", &["6.6.6.6", "203.0.113.7"], &trusted, "203.0.113.7"),
            // Trusted hops are skipped, from the right.
            ("127.0.0.1", &["6.6.6.6, 203.0.113.7, 10.1.2.3"], &proxies, "203.0.113.7"),
            ("10.9.9.9", &["203.0.113.7,10.1.2.3"], &proxies, "203.0.113.7"),
            // Every hop trusted: the leftmost one.
            ("127.0.0.1", &["10.0.0.1, 10.0.0.2"], &proxies, "10.0.0.1"),
            // Junk stops the walk at the last trusted hop.
            ("127.0.0.1", &["unknown"], &trusted, "127.0.0.1"),
            ("127.0.0.1", &["6.6.6.6, unknown"], &trusted, "127.0.0.1"),
            ("127.0.0.1", &["6.6.6.6, , 10.0.0.1"], &proxies, "10.0.0.1"),
            ("127.0.0.1", &["not an ip at all"], &trusted, "127.0.0.1"),
            ("127.0.0.1", &[""], &trusted, "127.0.0.1"),
            // Ports and brackets are tolerated.
            ("127.0.0.1", &["203.0.113.7:4711"], &trusted, "203.0.113.7"),
            ("127.0.0.1", &["[2001:db8::1]:443"], &trusted, "2001:db8::1"),
            ("127.0.0.1", &["[2001:db8::1]"], &trusted, "2001:db8::1"),
            ("127.0.0.1", &[" 2001:db8::1 "], &trusted, "2001:db8::1"),
            // IPv4-mapped IPv6 is normalised, in the peer and in the header.
            ("::ffff:127.0.0.1", &["203.0.113.7"], &trusted, "203.0.113.7"),
            ("::ffff:203.0.113.7", &[], &trusted, "203.0.113.7"),
            ("::1", &["::ffff:203.0.113.7"], &trusted, "203.0.113.7"),
            ("127.0.0.1", &["::ffff:10.0.0.1, ::ffff:127.0.0.1"], &proxies, "10.0.0.1"),
            // Nobody trusted: the peer, always.
            ("127.0.0.1", &["203.0.113.7"], &IpSet::default(), "127.0.0.1"),
        ];
        for (peer, xff, trusted, expected) in table {
            assert_eq!(run(peer, xff, trusted), ip(expected), "{peer} {xff:?}");
        }
    }

    #[test]
    fn non_ascii_header_values_stop_the_walk() {
        let value = HeaderValue::from_bytes(b"203.0.113.7, \xff\xfe").unwrap();
        assert_eq!(
            resolve(ip("127.0.0.1"), [&value].into_iter(), &loopback()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn huge_headers_and_long_chains_never_panic() {
        let trusted = set(&["127.0.0.1", "10.0.0.0/8"]);
        let ten_kb = "x".repeat(10 * 1024);
        assert_eq!(run("127.0.0.1", &[&ten_kb], &trusted), ip("127.0.0.1"));
        let hundred_hops = vec!["10.0.0.1"; 100].join(", ");
        // More trusted hops than we walk: the walk stops at the last one examined.
        assert_eq!(
            run(
                "127.0.0.1",
                &[&format!("6.6.6.6, {hundred_hops}")],
                &trusted
            ),
            ip("10.0.0.1")
        );
        let untrusted_hops = vec!["198.51.100.9"; 100].join(",");
        assert_eq!(
            run("127.0.0.1", &[&untrusted_hops], &trusted),
            ip("198.51.100.9")
        );
        let commas = ",".repeat(10 * 1024);
        assert_eq!(run("127.0.0.1", &[&commas], &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn ip_sets_take_addresses_networks_and_none() {
        let set = set(&[
            "10.0.0.0/8",
            "2001:db8::/32",
            "192.0.2.1",
            "::ffff:198.51.100.0/120",
        ]);
        assert!(set.contains(ip("10.200.0.1")));
        assert!(set.contains(ip("::ffff:10.0.0.1")));
        assert!(set.contains(ip("2001:db8:1::5")));
        assert!(set.contains(ip("192.0.2.1")));
        assert!(set.contains(ip("198.51.100.77")));
        assert!(!set.contains(ip("192.0.2.2")));
        assert!(IpSet::parse_list(&["none".into()]).unwrap().is_empty());
        assert!(IpSet::parse_list(&["10.0.0.0/33".into()]).is_err());
        assert!(IpSet::parse_list(&["localhost".into()]).is_err());
    }
}
