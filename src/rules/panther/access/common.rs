//! What the access rules share: Python's `ipaddress` answers on a source
//! address, `sourceIPs` as Panther's helpers read it, and the address lists
//! that stand in for Panther's enrichment (ipinfo ASNs, MISP warning lists,
//! Tor exit nodes), which this function does not have.

use std::net::IpAddr;

use crate::audit::{AuditEvent, SourceIps, Str};
use crate::config::DetectorConfig;
use crate::net::{is_global, parse_ip, CidrList};
use crate::rules::{option, OptionKind, RuleOption};
use crate::vocab::RuleId;

/// The option of the rules that spare a cloud's own components.
pub static TRUSTED_CIDRS: [RuleOption; 1] = [RuleOption {
    name: "trusted_cidrs",
    kind: OptionKind::Cidrs,
    doc: "addresses your cloud's own components connect from, e.g. your VPC NAT gateways' \
          public IPs: a system principal from there is not reported (every address of the \
          request's sourceIPs must be inside; replaces Panther's ipinfo ASN and MISP \
          amazon-aws enrichment)",
}];

/// Python's `value or default` for a string field: a missing or empty
/// value gives the default.
pub fn or<'a>(value: Option<&'a str>, default: &'a str) -> &'a str {
    value.filter(|v| !v.is_empty()).unwrap_or(default)
}

/// A CIDR-list option of a rule; empty when unset (the value was checked at
/// start-up by [`crate::rules::check_rules`]).
pub fn cidr_option(config: &DetectorConfig, id: RuleId, name: &str) -> CidrList {
    option(config, id, name)
        .and_then(|text| CidrList::parse(text).ok())
        .unwrap_or_default()
}

/// True when the request has source addresses and every one is inside
/// `cidrs`: a forged `X-Forwarded-For` entry naming a listed address does
/// not make an outside connection trusted.
pub fn all_inside(ips: &[Str<'_>], cidrs: &CidrList) -> bool {
    !ips.is_empty() && ips.iter().all(|ip| cidrs.contains_text(ip.as_str()))
}

/// The first entry of `sourceIPs` as Panther's `eks_panther_obj_ref` reads
/// it (`event.get("sourceIPs", ["0.0.0.0"])[0]`): `0.0.0.0` when the field is
/// absent, `None` where Python would raise (`null`, not a list of strings,
/// empty).
pub fn obj_ref_first_ip<'e>(ev: &'e AuditEvent<'_>) -> Option<&'e str> {
    match &ev.source_ips {
        SourceIps::Missing => Some("0.0.0.0"),
        SourceIps::Invalid => None,
        SourceIps::List(ips) => ips.first().map(Str::as_str),
    }
}

/// CPython's `ip_address(text).is_global`; `None` where it raises.
pub fn ip_is_global(text: &str) -> Option<bool> {
    parse_ip(text).map(is_global)
}

/// CPython's `ip_address(text).is_private`; `None` where it raises. It is
/// `not is_global` except for the shared address space `100.64.0.0/10`
/// (also IPv4-mapped), which is neither.
pub fn ip_is_private(text: &str) -> Option<bool> {
    let ip = parse_ip(text)?;
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    let shared = v4.is_some_and(|v4| {
        let [a, b, _, _] = v4.octets();
        a == 100 && (64..128).contains(&b)
    });
    Some(!is_global(ip) && !shared)
}
