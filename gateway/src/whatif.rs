//! What-if: explain the decision for a given user, groups, device, app and client type,
//! offline, with the same engine as the hot path (`access::explain` runs the evaluation that
//! `access::decide` runs). Used by `portcullis whatif` and `POST /admin/v1/whatif`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::access::{
    self, platform_from_user_agent, ClientAppType, Explanation, RequestFacts, Unprotected,
};
use crate::config::RouteConfig;
use crate::ids::{AppId, DeviceId, GroupId, UserId};
use crate::snapshot::Snapshot;

/// The question.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatIf {
    pub user: UserId,
    #[serde(default)]
    pub groups: Vec<GroupId>,
    pub device: Option<DeviceId>,
    /// An app id (GUID) or a route's host.
    pub app: String,
    /// `browser`, `mobileAppsAndDesktopClients`, `exchangeActiveSync` or `other`.
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub mfa: bool,
    /// A User-Agent, for the platform when the device is not in the inventory.
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// The answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub snapshot_version: u64,
    pub app_id: String,
    pub route: Option<String>,
    pub client_app: &'static str,
    pub device_state: &'static str,
    pub device_found: bool,
    #[serde(flatten)]
    pub explanation: Explanation,
}

/// Answers `q` against `snapshot`; `routes` resolve a host and say what an uncovered app does.
pub fn ask(snapshot: &Snapshot, routes: &[RouteConfig], q: &WhatIf) -> Result<Answer, String> {
    let (app, route) = match AppId::parse(&q.app) {
        Ok(id) => (id, routes.iter().find(|r| r.app_id == id)),
        Err(_) => {
            let host = q.app.to_ascii_lowercase();
            let route = routes
                .iter()
                .find(|r| r.host.as_deref() == Some(host.as_str()))
                .ok_or_else(|| {
                    format!(
                        "{:?} is neither an app id (GUID) nor the host of a route",
                        q.app
                    )
                })?;
            (route.app_id, Some(route))
        }
    };
    let client_app = match q.client.as_deref() {
        None => ClientAppType::Browser,
        Some(c) => ClientAppType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(c))
            .ok_or_else(|| format!("unknown client type {c:?}: use browser, mobileAppsAndDesktopClients, exchangeActiveSync or other"))?,
    };
    let mut groups = q.groups.clone();
    groups.sort();
    groups.dedup();
    let entry = q.device.and_then(|id| snapshot.devices.get(id));
    let facts = RequestFacts {
        user: Some(q.user),
        groups: &groups,
        mfa: q.mfa,
        app,
        client_app,
        ua_platform: q.user_agent.as_deref().and_then(platform_from_user_agent),
        ip: q.ip.unwrap_or(IpAddr::from([127, 0, 0, 1])),
        device: entry.as_ref().map(|e| e.access_facts()),
        device_presented: q.device.is_some(),
    };
    let unprotected = route.map_or(Unprotected::Deny, |r| r.unprotected);
    let explanation = access::explain(&snapshot.access, &facts, unprotected);
    Ok(Answer {
        snapshot_version: snapshot.version,
        app_id: app.to_string(),
        route: route.map(|r| r.name.clone()),
        client_app: client_app.as_str(),
        device_state: entry.map_or("unknown", |e| e.state().as_str()),
        device_found: entry.is_some(),
        explanation,
    })
}

/// The answer as text: the request as understood, then the decision and each policy.
pub fn render(a: &Answer) -> String {
    format!(
        "app {}{} · client {} · device {} · snapshot v{}\n{}",
        a.app_id,
        a.route
            .as_deref()
            .map(|r| format!(" (route {r})"))
            .unwrap_or_default(),
        a.client_app,
        if a.device_found {
            a.device_state
        } else {
            "not in the inventory"
        },
        a.snapshot_version,
        a.explanation
    )
}
