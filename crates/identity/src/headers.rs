//! Identity headers set by a trusted auth sidecar (oauth2-proxy, keycloak-gatekeeper).
//!
//! Such a proxy authenticates the user and passes the result as request headers. They are
//! believed only from the configured proxy addresses: from anywhere else the same headers
//! are ignored (and the attempt is logged), so a client cannot name itself.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Deserialize;

/// An address block, `10.0.0.0/8` or `::1/128` (a bare address is a single host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a.trim().parse().map_err(|_| format!("{s:?} is not an address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => {
                p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("bad prefix in {s:?}"))?
            }
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket is `::ffff:a.b.c.d`.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn default_user() -> String {
    "x-forwarded-user".into()
}
fn default_email() -> String {
    "x-forwarded-email".into()
}
fn default_groups() -> String {
    "x-forwarded-groups".into()
}

/// `[trusted_headers]`: which proxies, which headers. The defaults are oauth2-proxy's;
/// keycloak-gatekeeper sets `X-Auth-Username`, `X-Auth-Email`, `X-Auth-Groups`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustedHeadersConfig {
    /// The proxies' addresses or CIDR blocks.
    pub proxies: Vec<String>,
    #[serde(default = "default_user")]
    pub user_header: String,
    #[serde(default = "default_email")]
    pub email_header: String,
    /// Comma-separated groups.
    #[serde(default = "default_groups")]
    pub groups_header: String,
}

/// Who the headers name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderIdentity {
    pub username: String,
    pub email: Option<String>,
    pub groups: BTreeSet<String>,
}

/// What the headers of one request amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOutcome {
    /// No identity headers.
    Absent,
    /// From a trusted proxy.
    Trusted(HeaderIdentity),
    /// Identity headers from an address that is not a trusted proxy: ignored.
    Untrusted,
}

/// The trusted-header rule, parsed.
#[derive(Debug, Clone)]
pub struct TrustedHeaders {
    proxies: Vec<Cidr>,
    config: TrustedHeadersConfig,
}

impl TrustedHeaders {
    pub fn new(config: TrustedHeadersConfig) -> Result<Self, String> {
        let proxies = config.proxies.iter().map(|p| Cidr::parse(p)).collect::<Result<_, _>>()?;
        let lower = |s: &str| s.to_ascii_lowercase();
        let config = TrustedHeadersConfig {
            user_header: lower(&config.user_header),
            email_header: lower(&config.email_header),
            groups_header: lower(&config.groups_header),
            ..config
        };
        Ok(Self { proxies, config })
    }

    /// Read the identity headers of a request from `remote`; `get` looks a header up by
    /// lowercase name.
    /// `get` answers every value of a header, in order: a proxy may send one header per
    /// group (oauth2-proxy does), and every value counts.
    pub fn identify<'a>(&self, remote: IpAddr, get: impl Fn(&str) -> Vec<&'a str>) -> HeaderOutcome {
        let first = |name: &str| get(name).into_iter().next();
        let Some(user) = first(&self.config.user_header).map(str::trim).filter(|u| !u.is_empty()) else {
            return HeaderOutcome::Absent;
        };
        if !self.proxies.iter().any(|p| p.contains(remote)) {
            tracing::warn!(%remote, header = %self.config.user_header, "identity headers from an untrusted address ignored");
            return HeaderOutcome::Untrusted;
        }
        let groups = get(&self.config.groups_header)
            .into_iter()
            .flat_map(|g| g.split(','))
            .map(|s| s.trim().trim_start_matches('/').to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        HeaderOutcome::Trusted(HeaderIdentity {
            username: user.to_owned(),
            email: first(&self.config.email_header).map(str::to_owned),
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn cidr_blocks() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()), "IPv4-mapped");
        assert!(Cidr::parse("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains("127.0.0.2".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("proxy").is_err());
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let t = TrustedHeaders::new(TrustedHeadersConfig {
            proxies: vec!["10.0.0.0/8".into()],
            user_header: "X-Auth-Username".into(),
            email_header: "X-Auth-Email".into(),
            groups_header: "X-Auth-Groups".into(),
        })
        .unwrap();
        let h: HashMap<&str, Vec<&str>> = HashMap::from([
            ("x-auth-username", vec!["alice"]),
            // one header per group, and a comma-separated one: both count
            ("x-auth-groups", vec!["/analysts, leads", "/ops"]),
            ("x-auth-email", vec!["a@x"]),
        ]);
        let get = |k: &str| h.get(k).cloned().unwrap_or_default();
        match t.identify("10.3.4.5".parse().unwrap(), get) {
            HeaderOutcome::Trusted(id) => {
                assert_eq!(id.username, "alice");
                assert_eq!(id.email.as_deref(), Some("a@x"));
                assert_eq!(id.groups, BTreeSet::from(["analysts".to_owned(), "leads".to_owned(), "ops".to_owned()]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.identify("192.168.1.1".parse().unwrap(), get), HeaderOutcome::Untrusted);
        assert_eq!(t.identify("10.3.4.5".parse().unwrap(), |_| Vec::new()), HeaderOutcome::Absent);
    }
}
