//! The policy screen: the user, client-app and platform conditions of every live policy,
//! compiled into one policy bitset per value, so `decide` finds the policies those conditions
//! admit with a few ANDs instead of testing each candidate policy in turn. Locations and
//! device filters stay per policy (`conditions`), checked only for the policies that pass.
//! The grant controls are compiled the same way: per combination of the controls a request
//! can meet, the policies they satisfy; plus the enabled and the blocking policies.
//!
//! `explain` does not use the screen: it tests each policy with `conditions_match`, which
//! names the first condition that missed. The two must agree; the decision table checks every
//! case both ways and a randomized test compares them over many requests.

use crate::access::conditions::grant_outcome;
use crate::access::decision::PolicyBits;
use crate::access::policy::{Controls, Policy, PolicyState};
use crate::access::request::{ClientAppType, RequestFacts};
use crate::ids::{GroupId, UserId};
use crate::model::Platform;

/// Index of "platform unknown" in `Screen::platform`.
const UNKNOWN_PLATFORM: usize = Platform::ALL.len();

/// A principal a policy names, with the policies that include and that exclude it.
#[derive(Clone, Copy, Debug)]
struct Named<Id> {
    id: Id,
    include: PolicyBits,
    exclude: PolicyBits,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Screen {
    /// Per client app type: the policies whose `clientAppTypes` contain it. Policies with an
    /// unsupported condition are in none, so they never pass.
    client_app: [PolicyBits; ClientAppType::ALL.len()],
    /// Per platform (and, last, unknown): the policies whose platform condition admits it.
    platform: [PolicyBits; UNKNOWN_PLATFORM + 1],
    /// The policies that include `All` users.
    all_users: PolicyBits,
    /// Sorted by id.
    users: Box<[Named<UserId>]>,
    /// Sorted by id.
    groups: Box<[Named<GroupId>]>,
    /// The policies with a location condition or a device filter (checked one by one).
    per_policy: PolicyBits,
    /// The enabled (enforced) policies.
    pub enabled: PolicyBits,
    /// The policies whose grant is `block`.
    pub blocks: PolicyBits,
    /// Per combination of the controls a request can meet (`met_index`): the policies whose
    /// grant controls that combination satisfies.
    satisfied_when: [PolicyBits; 8],
}

/// The controls a request can meet (compliant device, MFA, domain join) are bits 1-3 of
/// `Controls`; shifted down, they index `Screen::satisfied_when`.
const MET_SHIFT: u32 = 1;
const _: () = assert!(
    Controls::COMPLIANT_DEVICE
        .union(Controls::MFA)
        .union(Controls::DOMAIN_JOINED)
        .0
        == 0b1110
);

fn met_index(met: Controls) -> usize {
    usize::from(met.0 >> MET_SHIFT) & 0b111
}

impl Screen {
    /// Compiles the screen for `policies` (indices are positions in the slice).
    pub fn new(policies: &[Policy]) -> Self {
        let mut s = Self::default();
        let mut users: Vec<Named<UserId>> = Vec::new();
        let mut groups: Vec<Named<GroupId>> = Vec::new();
        for (i, p) in policies.iter().enumerate() {
            if p.unsupported_condition {
                continue;
            }
            for t in ClientAppType::ALL {
                if p.client_apps.contains(t) {
                    s.client_app[t as usize].insert(i);
                }
            }
            for (k, mask) in s.platform.iter_mut().enumerate() {
                let admitted = match (&p.platforms, Platform::ALL.get(k)) {
                    (None, _) => true,
                    (Some(c), None) => c.include_all,
                    (Some(c), Some(&pf)) => {
                        (c.include_all || c.include.contains(pf)) && !c.exclude.contains(pf)
                    }
                };
                if admitted {
                    mask.insert(i);
                }
            }
            let u = &p.users;
            if u.include_all {
                s.all_users.insert(i);
            }
            name(&mut users, &u.include_users, i, true);
            name(&mut users, &u.exclude_users, i, false);
            name(&mut groups, &u.include_groups, i, true);
            name(&mut groups, &u.exclude_groups, i, false);
            if p.locations.is_some() || p.device_filter.is_some() {
                s.per_policy.insert(i);
            }
            if p.state == PolicyState::Enabled {
                s.enabled.insert(i);
            }
            if p.grant.controls.contains(Controls::BLOCK) {
                s.blocks.insert(i);
            }
            for (k, mask) in s.satisfied_when.iter_mut().enumerate() {
                let met = Controls((k as u8) << MET_SHIFT);
                if grant_outcome(p, met).satisfied {
                    mask.insert(i);
                }
            }
        }
        s.users = users.into_boxed_slice();
        s.groups = groups.into_boxed_slice();
        s
    }

    /// Of `candidates`, the policies whose user, client-app and platform conditions admit
    /// `req`.
    #[inline]
    pub fn admit(&self, candidates: PolicyBits, req: &RequestFacts<'_>) -> PolicyBits {
        let platform = req.platform().map_or(UNKNOWN_PLATFORM, |p| p as usize);
        candidates
            .and(self.client_app[req.client_app as usize])
            .and(self.platform[platform])
            .and(self.users_admit(req))
    }

    /// Of `policies`, those with conditions the screen leaves to a per-policy check.
    #[inline]
    pub fn needing_check(&self, policies: PolicyBits) -> PolicyBits {
        policies.and(self.per_policy)
    }

    /// The policies whose grant controls are satisfied by `met` (`conditions::met_controls`).
    #[inline]
    pub fn satisfied_by(&self, met: Controls) -> PolicyBits {
        self.satisfied_when[met_index(met)]
    }

    /// The policies that include the request's user (directly, by group or as `All`) and do
    /// not exclude them. Anonymous requests: only `All`, which no exclusion can name.
    #[inline]
    fn users_admit(&self, req: &RequestFacts<'_>) -> PolicyBits {
        let Some(user) = req.user else {
            return self.all_users;
        };
        let mut include = self.all_users;
        let mut exclude = PolicyBits::EMPTY;
        let mut add = |(inc, exc): (PolicyBits, PolicyBits)| {
            include = include.or(inc);
            exclude = exclude.or(exc);
        };
        if let Some(n) = find(&self.users, user) {
            add(n);
        }
        if !self.groups.is_empty() {
            for &g in req.groups {
                if let Some(n) = find(&self.groups, g) {
                    add(n);
                }
            }
        }
        include.and_not(exclude)
    }
}

/// The policies that include and exclude `id`.
#[inline]
fn find<Id: Ord + Copy>(list: &[Named<Id>], id: Id) -> Option<(PolicyBits, PolicyBits)> {
    let k = list.binary_search_by_key(&id, |n| n.id).ok()?;
    list.get(k).map(|n| (n.include, n.exclude))
}

/// Records that policy `index` includes (or excludes) each of `ids`, keeping `list` sorted.
fn name<Id: Ord + Copy>(list: &mut Vec<Named<Id>>, ids: &[Id], index: usize, include: bool) {
    for &id in ids {
        let k = match list.binary_search_by_key(&id, |n| n.id) {
            Ok(k) => k,
            Err(k) => {
                let empty = PolicyBits::EMPTY;
                list.insert(
                    k,
                    Named {
                        id,
                        include: empty,
                        exclude: empty,
                    },
                );
                k
            }
        };
        let n = &mut list[k];
        if include {
            n.include.insert(index);
        } else {
            n.exclude.insert(index);
        }
    }
}
