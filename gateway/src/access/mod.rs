//! Conditional access (product brief section 5): Graph `conditionalAccessPolicy` documents
//! compiled into an index by app, and the pure per-request evaluation.
//!
//! - `graph`, `compile`, `locations`, `filter::parse`: the edge (serde shapes and their
//!   conversion into core types; errors name policy, field and position).
//! - `policy`: compiled policies. `conditions`: condition and grant matching.
//! - `decision`: `decide` (the hot path: no allocation, no I/O, cannot fail).
//! - `explain`: what-if, through the same evaluation. `log_entry`: the sign-in-log-shaped
//!   decision record. `lint`: findings for `portcullis check`.
//!
//! **Invariant:** `decide` reads only the `PolicySet` and the `RequestFacts` it is handed,
//! allocates nothing and cannot fail.

mod compile;
mod conditions;
pub mod decision;
pub mod error;
pub mod explain;
pub mod filter;
mod graph;
pub mod lint;
pub mod locations;
pub mod log_entry;
pub mod policy;
pub mod request;
mod screen;

use std::collections::HashMap;

use crate::ids::AppId;
use screen::Screen;

pub use compile::MAX_POLICIES;
pub use conditions::Miss;
pub use decision::{decide, Decision, PolicyBits, PolicyResult, Unprotected, Verdict};
pub use error::{DocumentKind, PolicyError};
pub use explain::{explain, Explanation, PolicyExplanation};
pub use lint::{Lint, Severity};
pub use locations::NamedLocations;
pub use log_entry::{DecisionLogEntry, LogContext};
pub use policy::{Policy, PolicyState};
pub use request::{
    platform_from_user_agent, ClientAppType, DeviceAttributes, DeviceFacts, DeviceText,
    RequestFacts,
};

/// The compiled conditional-access policy set, indexed by app.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Box<[Policy]>,
    /// Per app named in any policy: the non-disabled policies that cover it.
    by_app: HashMap<AppId, PolicyBits, foldhash::fast::RandomState>,
    /// For any other app: the non-disabled policies that include `All` apps.
    all_apps: PolicyBits,
    /// The user, client-app and platform conditions as per-value bitsets (`decide`).
    screen: Screen,
}

impl PolicySet {
    /// No policies: every route's `unprotected` setting decides.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses and compiles a Graph `conditionalAccessPolicy` document (`{"value": [...]}` or
    /// a bare array), resolving named locations from a Graph `namedLocation` document.
    pub fn parse(ca_json: &str, named_locations_json: Option<&str>) -> Result<Self, PolicyError> {
        let locations = match named_locations_json {
            Some(doc) => NamedLocations::parse(doc)?,
            None => NamedLocations::default(),
        };
        let policies = compile::compile_policies(ca_json, &locations)?;
        Ok(Self::from_policies(policies))
    }

    /// Builds the set and its per-app index from compiled policies (at most
    /// `MAX_POLICIES`; any beyond are dropped, which `parse` never lets happen).
    pub fn from_policies(mut policies: Vec<Policy>) -> Self {
        policies.truncate(MAX_POLICIES);
        let live = |p: &Policy| p.state != PolicyState::Disabled;
        let mut apps: Vec<AppId> = policies
            .iter()
            .filter(|p| live(p))
            .flat_map(|p| p.apps.include.iter().chain(p.apps.exclude.iter()).copied())
            .collect();
        apps.sort();
        apps.dedup();
        let by_app = apps
            .into_iter()
            .map(|app| {
                let covering = policies
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| live(p) && p.apps.covers(app).is_ok())
                    .map(|(i, _)| i)
                    .collect();
                (app, covering)
            })
            .collect();
        let all_apps = policies
            .iter()
            .enumerate()
            .filter(|(_, p)| live(p) && p.apps.include_all)
            .map(|(i, _)| i)
            .collect();
        Self {
            screen: Screen::new(&policies),
            policies: policies.into_boxed_slice(),
            by_app,
            all_apps,
        }
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policies that can apply to a request for `app` (not disabled, app in scope).
    #[inline]
    pub fn candidates(&self, app: AppId) -> PolicyBits {
        *self.by_app.get(&app).unwrap_or(&self.all_apps)
    }

    pub(crate) fn screen(&self) -> &Screen {
        &self.screen
    }

    /// Every policy's warnings, labelled.
    pub fn warnings(&self) -> impl Iterator<Item = (&Policy, &str)> {
        self.policies
            .iter()
            .flat_map(|p| p.warnings.iter().map(move |w| (p, w.as_str())))
    }
}
