//! A compiled conditional-access policy: Graph's `conditionalAccessPolicy` turned into core
//! types that cannot hold invalid values (ids as `u128`s, enums as bitsets, named locations
//! resolved to IP ranges, device-filter rules parsed).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::access::filter::DeviceFilter;
use crate::access::request::ClientAppType;
use crate::ids::{AppId, GroupId, UserId};
use crate::model::Platform;

/// Graph's `state`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PolicyState {
    Enabled,
    Disabled,
    /// `enabledForReportingButNotEnforced`: evaluated and recorded, never enforced.
    ReportOnly,
}

impl PolicyState {
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyState::Enabled => "enabled",
            PolicyState::Disabled => "disabled",
            PolicyState::ReportOnly => "enabledForReportingButNotEnforced",
        }
    }
}

/// `conditions.users`. `None`/absent lists are empty.
#[derive(Clone, Debug, Default)]
pub struct UserCondition {
    pub include_all: bool,
    pub include_users: Box<[UserId]>,
    pub include_groups: Box<[GroupId]>,
    pub exclude_users: Box<[UserId]>,
    pub exclude_groups: Box<[GroupId]>,
}

/// `conditions.applications`, with `Office365` expanded to SharePoint and Exchange.
#[derive(Clone, Debug, Default)]
pub struct AppCondition {
    pub include_all: bool,
    pub include: Box<[AppId]>,
    pub exclude: Box<[AppId]>,
}

impl AppCondition {
    /// Whether the app is in scope: included (or `All`) and not excluded.
    pub fn covers(&self, app: AppId) -> Result<(), AppMiss> {
        if !(self.include_all || self.include.contains(&app)) {
            Err(AppMiss::NotIncluded)
        } else if self.exclude.contains(&app) {
            Err(AppMiss::Excluded)
        } else {
            Ok(())
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AppMiss {
    NotIncluded,
    Excluded,
}

/// A set of client app types (`all` is every bit).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ClientAppSet(pub(crate) u8);

impl ClientAppSet {
    pub const ALL: Self = Self(0b1111);
    pub const EMPTY: Self = Self(0);

    pub const fn with(self, t: ClientAppType) -> Self {
        Self(self.0 | t.bit())
    }

    pub const fn contains(self, t: ClientAppType) -> bool {
        self.0 & t.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = ClientAppType> {
        ClientAppType::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
    }
}

impl fmt::Display for ClientAppSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(ClientAppType::as_str).collect();
        write!(f, "[{}]", names.join(", "))
    }
}

/// A set of platforms.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PlatformSet(pub(crate) u8);

impl PlatformSet {
    pub const EMPTY: Self = Self(0);

    pub const fn bit(p: Platform) -> u8 {
        1 << p as u8
    }

    pub const fn with(self, p: Platform) -> Self {
        Self(self.0 | Self::bit(p))
    }

    pub const fn contains(self, p: Platform) -> bool {
        self.0 & Self::bit(p) != 0
    }
}

impl fmt::Display for PlatformSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = Platform::ALL
            .into_iter()
            .filter(|p| self.contains(*p))
            .map(Platform::as_str)
            .collect();
        write!(f, "[{}]", names.join(", "))
    }
}

/// `conditions.platforms`: `include_all` is `all` (which also covers platforms Graph has no
/// name for).
#[derive(Clone, Copy, Debug)]
pub struct PlatformCondition {
    pub include_all: bool,
    pub include: PlatformSet,
    pub exclude: PlatformSet,
}

/// One side (include or exclude) of `conditions.locations`, resolved to IP ranges.
#[derive(Clone, Debug, Default)]
pub struct LocationSet {
    /// `All`: any address.
    pub all: bool,
    ranges: Box<[IpNet]>,
    /// `ranges` as masks, for `contains`.
    cidrs: Box<[Cidr]>,
}

/// An IP range as a network and mask over the address's bits (IPv4 in the low 32).
#[derive(Clone, Copy, Debug)]
struct Cidr {
    v6: bool,
    network: u128,
    mask: u128,
}

fn bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

impl LocationSet {
    pub fn new(all: bool, ranges: Vec<IpNet>) -> Self {
        let cidrs = ranges
            .iter()
            .map(|r| {
                let (v6, network) = bits(r.network());
                let (_, mask) = bits(r.netmask());
                Cidr { v6, network, mask }
            })
            .collect();
        Self {
            all,
            ranges: ranges.into(),
            cidrs,
        }
    }

    pub fn ranges(&self) -> &[IpNet] {
        &self.ranges
    }

    /// Whether `ip` is in the set (an IPv4 address is never in an IPv6 range, nor the
    /// reverse).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v6, addr) = bits(ip);
        self.all
            || self
                .cidrs
                .iter()
                .any(|c| c.v6 == v6 && addr & c.mask == c.network)
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.ranges.is_empty()
    }
}

#[derive(Clone, Debug, Default)]
pub struct LocationCondition {
    pub include: LocationSet,
    pub exclude: LocationSet,
}

/// Built-in grant controls, as bits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Controls(pub(crate) u8);

impl Controls {
    pub const NONE: Self = Self(0);
    pub const BLOCK: Self = Self(1);
    pub const COMPLIANT_DEVICE: Self = Self(2);
    pub const MFA: Self = Self(4);
    pub const DOMAIN_JOINED: Self = Self(8);
    /// Any control Portcullis cannot satisfy (unknown built-in controls, terms of use,
    /// authentication strengths, custom factors).
    pub const UNKNOWN: Self = Self(16);

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub const fn minus(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The sign-in log's `enforcedGrantControls` spellings.
    pub fn log_names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::BLOCK, "Block"),
            (Self::COMPLIANT_DEVICE, "RequireCompliantDevice"),
            (Self::MFA, "Mfa"),
            (Self::DOMAIN_JOINED, "RequireDomainJoinedDevice"),
        ]
        .into_iter()
        .filter(move |(c, _)| self.contains(*c))
        .map(|(_, n)| n)
    }

    /// Graph's `builtInControls` spellings (unknown controls as `unknown`).
    pub fn graph_names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::BLOCK, "block"),
            (Self::COMPLIANT_DEVICE, "compliantDevice"),
            (Self::MFA, "mfa"),
            (Self::DOMAIN_JOINED, "domainJoinedDevice"),
            (Self::UNKNOWN, "unknown"),
        ]
        .into_iter()
        .filter(move |(c, _)| self.contains(*c))
        .map(|(_, n)| n)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum GrantOperator {
    #[default]
    Or,
    And,
}

/// `grantControls`. No controls (absent `grantControls`) means nothing to satisfy.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    pub operator: GrantOperator,
    pub controls: Controls,
    /// The names of the controls behind `Controls::UNKNOWN`, for lint and explanations.
    pub unknown: Box<[Box<str>]>,
}

/// One compiled policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub id: Box<str>,
    pub display_name: Box<str>,
    pub state: PolicyState,
    pub users: UserCondition,
    pub apps: AppCondition,
    pub client_apps: ClientAppSet,
    pub platforms: Option<PlatformCondition>,
    pub locations: Option<LocationCondition>,
    pub device_filter: Option<DeviceFilter>,
    pub grant: Grant,
    /// Sets a condition Portcullis cannot evaluate (risk levels, client applications,
    /// authentication flows, application filters): the policy never applies, with a warning.
    pub unsupported_condition: bool,
    /// Conditions or values this gateway does not support, kept as warnings.
    pub warnings: Vec<String>,
}

impl Policy {
    /// How errors and lints name the policy.
    pub fn label(&self) -> String {
        format!("{:?} ({})", self.display_name, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_sets_agree_with_ipnet() {
        let ranges: Vec<IpNet> = ["10.1.0.0/16", "192.0.2.7/32", "2001:db8::/32", "0.0.0.0/0"]
            .iter()
            .map(|r| r.parse().expect("literal range"))
            .collect();
        let addrs: Vec<IpAddr> = [
            "10.1.255.3",
            "10.2.0.1",
            "192.0.2.7",
            "192.0.2.8",
            "2001:db8:1::1",
            "2001:db9::1",
            "::ffff:10.1.0.1",
            "8.8.8.8",
        ]
        .iter()
        .map(|a| a.parse().expect("literal address"))
        .collect();
        for n in 0..=ranges.len() {
            let some = &ranges[..n];
            let set = LocationSet::new(false, some.to_vec());
            for &ip in &addrs {
                let expected = some.iter().any(|r| r.contains(&ip));
                assert_eq!(set.contains(ip), expected, "{ip} in {some:?}");
            }
        }
        assert!(LocationSet::new(true, Vec::new()).contains(addrs[1]));
        assert!(LocationSet::new(false, Vec::new()).is_empty());
    }
}
