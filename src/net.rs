//! Is an address reachable on the public internet?
//!
//! The Multiple403 rule only counts requests whose first source IP is
//! "global". Panther evaluates that with CPython's `ipaddress` `is_global`, so
//! this module carries CPython's tables (as of 3.12.4 / 3.13) verbatim: an
//! address is global when it is in none of the non-global ranges, or in one of
//! their listed exceptions. `std`'s `IpAddr::is_global` is unstable and differs
//! in detail, so it is not used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// IPv4 ranges CPython's `_private_networks` lists (not global).
const V4_NOT_GLOBAL: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.0.170/31",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
];

/// IPv4 exceptions inside the ranges above that are global after all.
const V4_EXCEPTIONS: &[&str] = &["192.0.0.9/32", "192.0.0.10/32"];

/// IPv6 ranges that are not global.
const V6_NOT_GLOBAL: &[&str] = &[
    "::1/128",
    "::/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "fc00::/7",
    "fe80::/10",
];

/// IPv6 exceptions inside `2001::/23` that are global after all.
const V6_EXCEPTIONS: &[&str] = &[
    "2001:1::1/128",
    "2001:1::2/128",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:20::/28",
    "2001:30::/28",
];

struct Tables {
    v4_not_global: Vec<Ipv4Net>,
    v4_exceptions: Vec<Ipv4Net>,
    v6_not_global: Vec<Ipv6Net>,
    v6_exceptions: Vec<Ipv6Net>,
}

fn parse_all<T: std::str::FromStr>(cidrs: &[&str]) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    cidrs
        .iter()
        // The tables are constants checked by the tests below; a typo is a
        // programming error, not a runtime condition.
        .map(|c| c.parse().expect("constant CIDR table entry parses"))
        .collect()
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| Tables {
    v4_not_global: parse_all(V4_NOT_GLOBAL),
    v4_exceptions: parse_all(V4_EXCEPTIONS),
    v6_not_global: parse_all(V6_NOT_GLOBAL),
    v6_exceptions: parse_all(V6_EXCEPTIONS),
});

/// CPython `IPv4Address.is_global`.
pub fn is_global_v4(ip: Ipv4Addr) -> bool {
    let t = &*TABLES;
    if t.v4_exceptions.iter().any(|n| n.contains(&ip)) {
        return true;
    }
    !t.v4_not_global.iter().any(|n| n.contains(&ip))
}

/// CPython `IPv6Address.is_global`; an IPv4-mapped address (`::ffff:a.b.c.d`)
/// takes the answer of its IPv4 address, as CPython 3.13 does.
pub fn is_global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let t = &*TABLES;
    if t.v6_exceptions.iter().any(|n| n.contains(&ip)) {
        return true;
    }
    !t.v6_not_global.iter().any(|n| n.contains(&ip))
}

/// CPython `ip_address(x).is_global` for an already parsed address.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

/// Parses an address the way CPython's `ip_address()` accepts it: dotted-quad
/// IPv4 or IPv6 text, with an optional `%scope` suffix on IPv6 (which does not
/// change the answer). Anything else is `None`.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    // CPython accepts scoped IPv6 ("fe80::1%eth0"); Rust's parser does not.
    let (addr, scope) = text.split_once('%')?;
    if scope.is_empty() || scope.contains('%') {
        return None;
    }
    addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// A list of CIDRs a user allows (e.g. their own scanners or VPN egress).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrList(Vec<IpNet>);

impl CidrList {
    /// Parses a comma-separated list; a bare address counts as a /32 or /128.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match part.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => return Err(format!("'{part}' is not an IP address or CIDR")),
                },
            };
            nets.push(net.trunc());
        }
        Ok(Self(nets))
    }

    /// True when `text` parses as an address inside one of the networks. An
    /// IPv4-mapped IPv6 address is compared as its IPv4 address.
    pub fn contains_text(&self, text: &str) -> bool {
        if self.0.is_empty() {
            return false;
        }
        match parse_ip(text) {
            Some(ip) => self.contains(ip),
            None => false,
        }
    }

    /// True when `ip` is inside one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(text: &str) -> bool {
        is_global(parse_ip(text).expect("test address parses"))
    }

    #[test]
    fn tables_parse() {
        let t = &*TABLES;
        assert_eq!(t.v4_not_global.len(), V4_NOT_GLOBAL.len());
        assert_eq!(t.v6_exceptions.len(), V6_EXCEPTIONS.len());
    }

    /// Expected answers of CPython 3.12.4+ `ipaddress.ip_address(x).is_global`.
    #[test]
    fn matches_cpython_is_global_table() {
        let cases: &[(&str, bool)] = &[
            ("5.5.5.5", true),
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("0.0.0.0", false),
            ("0.255.255.255", false),
            ("1.0.0.0", true),
            ("9.255.255.255", true),
            ("10.0.0.0", false),
            ("10.255.255.255", false),
            ("11.0.0.0", true),
            ("100.63.255.255", true),
            ("100.64.0.0", false),
            ("100.127.255.255", false),
            ("100.128.0.0", true),
            ("127.0.0.1", false),
            ("169.254.169.254", false),
            ("172.15.255.255", true),
            ("172.16.0.0", false),
            ("172.31.255.255", false),
            ("172.32.0.0", true),
            ("192.0.0.0", false),
            ("192.0.0.8", false),
            ("192.0.0.9", true),
            ("192.0.0.10", true),
            ("192.0.0.11", false),
            ("192.0.0.170", false),
            ("192.0.0.171", false),
            ("192.0.0.255", false),
            ("192.0.1.0", true),
            ("192.0.2.1", false),
            ("192.88.99.1", true),
            ("192.168.1.1", false),
            ("198.17.255.255", true),
            ("198.18.0.0", false),
            ("198.19.255.255", false),
            ("198.20.0.0", true),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("203.0.114.0", true),
            ("224.0.0.1", true),
            ("239.255.255.255", true),
            ("240.0.0.1", false),
            ("255.255.255.254", false),
            ("255.255.255.255", false),
            // IPv6
            ("::1", false),
            ("::", false),
            ("::2", true),
            ("2600:1f18::1", true),
            ("2a03:b0c0:1d73::1", true),
            ("64:ff9b::8.8.8.8", true),
            ("64:ff9b:1::1", false),
            ("100::1", false),
            ("100:0:0:1::1", true),
            ("2001::1", false),
            ("2001:1::1", true),
            ("2001:1::2", true),
            ("2001:1::3", false),
            ("2001:2::1", false),
            ("2001:3::1", true),
            ("2001:4:112::1", true),
            ("2001:4:113::1", false),
            ("2001:10::1", false),
            ("2001:20::1", true),
            ("2001:2f:ffff::1", true),
            ("2001:30::1", true),
            ("2001:40::1", false),
            ("2001:1ff::1", false),
            ("2001:200::1", true),
            ("2001:db8::1", false),
            ("2002::1", false),
            ("3fff::1", false),
            ("3fff:1000::1", true),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("fe80::1%eth0", false),
            ("febf::1", false),
            ("fec0::1", true),
            ("ff02::1", true),
            // IPv4-mapped takes the IPv4 answer
            ("::ffff:10.0.0.1", false),
            ("::ffff:5.5.5.5", true),
            ("::ffff:100.64.0.1", false),
        ];
        for (text, expected) in cases {
            assert_eq!(g(text), *expected, "is_global({text})");
        }
    }

    #[test]
    fn parse_rejects_what_cpython_rejects() {
        for bad in [
            "",
            "not-an-ip",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.4/32",
            " 1.2.3.4",
            "fe80::1%",
            "unknown",
        ] {
            assert!(parse_ip(bad).is_none(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn cidr_list_parses_and_matches() {
        let list = CidrList::parse(" 203.0.113.0/24, 5.5.5.5 ,2001:db8::/32,").expect("valid list");
        assert!(list.contains_text("203.0.113.77"));
        assert!(list.contains_text("5.5.5.5"));
        assert!(!list.contains_text("5.5.5.6"));
        assert!(list.contains_text("2001:db8::42"));
        assert!(list.contains_text("::ffff:5.5.5.5"));
        assert!(!list.contains_text("garbage"));
        assert_eq!(
            CidrList::parse("").expect("empty is valid"),
            CidrList::default()
        );
        let err = CidrList::parse("10.0.0.0/8,nope").expect_err("invalid entry");
        assert!(err.contains("nope"));
    }
}
