//! Turns Graph `conditionalAccessPolicy` records into compiled `Policy` values and builds the
//! per-app index. Bad values are errors naming the policy, field and position; conditions
//! Portcullis cannot evaluate are kept as warnings.

use std::collections::HashSet;

use crate::access::error::{DocumentKind, PolicyError};
use crate::access::filter::{DeviceFilter, FilterExpr, FilterMode};
use crate::access::graph::{self, RawConditions, RawGrant, RawPolicy, Record};
use crate::access::locations::NamedLocations;
use crate::access::policy::{
    AppCondition, ClientAppSet, Controls, Grant, GrantOperator, LocationCondition, LocationSet,
    PlatformCondition, PlatformSet, Policy, PolicyState, UserCondition,
};
use crate::access::request::ClientAppType;
use crate::ids::{apps, AppId, GroupId, UserId};
use crate::model::Platform;

/// At most this many policies (Entra allows 195 per tenant); decisions keep per-policy
/// results in fixed-size bitsets.
pub const MAX_POLICIES: usize = 256;

/// Where a record's errors point.
struct Ctx<'a> {
    doc: &'a str,
    record: &'a Record<'a>,
    label: String,
}

impl Ctx<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> PolicyError {
        let key = field
            .rsplit('.')
            .next()
            .map(|k| k.split('[').next().unwrap_or(k));
        PolicyError {
            document: DocumentKind::ConditionalAccess,
            record: Some(self.label.clone()),
            field: Some(field.to_owned()),
            position: Some(self.record.position_of(self.doc, key)),
            message: message.into(),
        }
    }
}

pub(crate) fn compile_policies(
    doc: &str,
    locations: &NamedLocations,
) -> Result<Vec<Policy>, PolicyError> {
    let records = graph::records(doc, DocumentKind::ConditionalAccess)?;
    if records.len() > MAX_POLICIES {
        return Err(PolicyError {
            document: DocumentKind::ConditionalAccess,
            record: None,
            field: None,
            position: None,
            message: format!(
                "{} policies; at most {MAX_POLICIES} are supported",
                records.len()
            ),
        });
    }
    let mut ids = HashSet::new();
    let mut out = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let label = label_of(record.text, index);
        let ctx = Ctx { doc, record, label };
        let raw: RawPolicy = serde_json::from_str(record.text).map_err(|e| {
            let (line, column) = record.position_of(doc, None);
            PolicyError {
                document: DocumentKind::ConditionalAccess,
                record: Some(ctx.label.clone()),
                field: None,
                position: Some(if e.line() <= 1 {
                    (line, column + e.column().saturating_sub(1))
                } else {
                    (line + e.line() - 1, e.column())
                }),
                message: without_position(&e),
            }
        })?;
        let policy = compile_one(raw, &ctx, locations, index)?;
        if !ids.insert(policy.id.to_ascii_lowercase()) {
            return Err(ctx.err("id", format!("duplicate policy id {:?}", policy.id)));
        }
        out.push(policy);
    }
    Ok(out)
}

/// serde_json's message without its own (record-relative) position.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn label_of(text: &str, index: usize) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Label {
        id: Option<serde_json::Value>,
        display_name: Option<serde_json::Value>,
    }
    let as_text = |v: Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    match serde_json::from_str::<Label>(text) {
        Ok(l) => match (as_text(l.display_name), as_text(l.id)) {
            (Some(n), Some(id)) => format!("{n:?} ({id})"),
            (Some(n), None) => format!("{n:?} (#{})", index + 1),
            (None, Some(id)) => format!("{id} (#{})", index + 1),
            (None, None) => format!("#{}", index + 1),
        },
        Err(_) => format!("#{}", index + 1),
    }
}

fn compile_one(
    raw: RawPolicy,
    ctx: &Ctx<'_>,
    locations: &NamedLocations,
    index: usize,
) -> Result<Policy, PolicyError> {
    let mut warnings = Vec::new();
    let id = raw.id.unwrap_or_else(|| format!("#{}", index + 1));
    let state = match raw.state.as_deref().map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("enabled") => PolicyState::Enabled,
        Some(s) if s.eq_ignore_ascii_case("disabled") => PolicyState::Disabled,
        Some(s) if s.eq_ignore_ascii_case("enabledForReportingButNotEnforced") => {
            PolicyState::ReportOnly
        }
        Some(other) => {
            return Err(ctx.err(
                "state",
                format!(
                    "{other:?} is not a state; expected enabled, disabled or \
                     enabledForReportingButNotEnforced"
                ),
            ))
        }
        None => return Err(ctx.err("state", "missing")),
    };
    let c = raw.conditions.unwrap_or_default();
    let unsupported_condition = unsupported_conditions(&c, &mut warnings);
    let users = users(&c, ctx, &mut warnings)?;
    let apps = applications(&c, ctx, &mut warnings)?;
    let client_apps = client_apps(&c, ctx)?;
    let platforms = platforms(&c, ctx, &mut warnings)?;
    let locations = location_condition(&c, ctx, locations, &mut warnings)?;
    let device_filter = device_filter(&c, ctx, &mut warnings)?;
    let grant = grant(raw.grant_controls, ctx, &mut warnings)?;
    Ok(Policy {
        id: id.into(),
        display_name: raw.display_name.unwrap_or_default().into(),
        state,
        users,
        apps,
        client_apps,
        platforms,
        locations,
        device_filter,
        grant,
        unsupported_condition,
        warnings,
    })
}

fn unsupported_conditions(c: &RawConditions, warnings: &mut Vec<String>) -> bool {
    let mut any = false;
    let mut flag = |set: bool, name: &str| {
        if set {
            any = true;
            warnings.push(format!(
                "conditions.{name} is not supported; the policy never applies"
            ));
        }
    };
    let non_empty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    let configured = |v: &Option<serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Array(a)) => !a.is_empty(),
        Some(serde_json::Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    };
    flag(non_empty(&c.user_risk_levels), "userRiskLevels");
    flag(non_empty(&c.sign_in_risk_levels), "signInRiskLevels");
    flag(
        non_empty(&c.service_principal_risk_levels),
        "servicePrincipalRiskLevels",
    );
    flag(configured(&c.insider_risk_levels), "insiderRiskLevels");
    flag(configured(&c.client_applications), "clientApplications");
    flag(configured(&c.authentication_flows), "authenticationFlows");
    flag(
        c.applications
            .as_ref()
            .is_some_and(|a| configured(&a.application_filter)),
        "applications.applicationFilter",
    );
    any
}

fn guid_list<T>(
    values: &Option<Vec<String>>,
    field: &str,
    ctx: &Ctx<'_>,
    mut keyword: impl FnMut(&str) -> Option<Result<(), String>>,
    parse: impl Fn(&str) -> Result<T, crate::ids::GuidError>,
) -> Result<Vec<T>, PolicyError> {
    let mut out = Vec::new();
    for (i, v) in values.iter().flatten().enumerate() {
        match keyword(v.trim()) {
            Some(Ok(())) => continue,
            Some(Err(message)) => return Err(ctx.err(&format!("{field}[{i}]"), message)),
            None => {}
        }
        let id = parse(v).map_err(|e| ctx.err(&format!("{field}[{i}]"), e.to_string()))?;
        out.push(id);
    }
    Ok(out)
}

fn users(
    c: &RawConditions,
    ctx: &Ctx<'_>,
    warnings: &mut Vec<String>,
) -> Result<UserCondition, PolicyError> {
    let Some(u) = &c.users else {
        warnings.push("conditions.users is absent; treated as all users".into());
        return Ok(UserCondition {
            include_all: true,
            ..UserCondition::default()
        });
    };
    let mut include_all = false;
    let mut notes = Vec::new();
    let include_users = guid_list(
        &u.include_users,
        "conditions.users.includeUsers",
        ctx,
        |v| {
            if v.eq_ignore_ascii_case("All") {
                include_all = true;
                Some(Ok(()))
            } else if v.eq_ignore_ascii_case("None") {
                Some(Ok(()))
            } else if v.eq_ignore_ascii_case("GuestsOrExternalUsers") {
                notes.push("conditions.users.includeUsers: GuestsOrExternalUsers is not supported; it includes nobody".to_string());
                Some(Ok(()))
            } else {
                None
            }
        },
        UserId::parse,
    )?;
    let exclude_users = guid_list(
        &u.exclude_users,
        "conditions.users.excludeUsers",
        ctx,
        |v| {
            if v.eq_ignore_ascii_case("GuestsOrExternalUsers") {
                notes.push("conditions.users.excludeUsers: GuestsOrExternalUsers is not supported; it excludes nobody".to_string());
                Some(Ok(()))
            } else if v.eq_ignore_ascii_case("All") || v.eq_ignore_ascii_case("None") {
                Some(Err(format!("{v:?} cannot be excluded")))
            } else {
                None
            }
        },
        UserId::parse,
    )?;
    warnings.extend(notes);
    let groups = |list: &Option<Vec<String>>, field: &str| {
        guid_list(list, field, ctx, |_| None, GroupId::parse)
    };
    let include_groups = groups(&u.include_groups, "conditions.users.includeGroups")?;
    let exclude_groups = groups(&u.exclude_groups, "conditions.users.excludeGroups")?;
    for (list, name, effect) in [
        (&u.include_roles, "includeRoles", "includes nobody"),
        (&u.exclude_roles, "excludeRoles", "excludes nobody"),
    ] {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            warnings.push(format!(
                "conditions.users.{name}: directory roles are not supported; it {effect}"
            ));
        }
    }
    for (value, name) in [
        (
            &u.include_guests_or_external_users,
            "includeGuestsOrExternalUsers",
        ),
        (
            &u.exclude_guests_or_external_users,
            "excludeGuestsOrExternalUsers",
        ),
    ] {
        if value.as_ref().is_some_and(|v| !v.is_null()) {
            warnings.push(format!(
                "conditions.users.{name} is not supported and is ignored"
            ));
        }
    }
    Ok(UserCondition {
        include_all,
        include_users: include_users.into(),
        include_groups: include_groups.into(),
        exclude_users: exclude_users.into(),
        exclude_groups: exclude_groups.into(),
    })
}

fn applications(
    c: &RawConditions,
    ctx: &Ctx<'_>,
    warnings: &mut Vec<String>,
) -> Result<AppCondition, PolicyError> {
    let Some(a) = &c.applications else {
        warnings.push("conditions.applications is absent; treated as all apps".into());
        return Ok(AppCondition {
            include_all: true,
            ..AppCondition::default()
        });
    };
    let mut include_all = false;
    let mut office = [false; 2];
    let mut notes = Vec::new();
    let mut keyword = |v: &str, exclude: bool, office: &mut bool| -> Option<Result<(), String>> {
        if v.eq_ignore_ascii_case("All") {
            if exclude {
                return Some(Err("\"All\" cannot be excluded".into()));
            }
            include_all = true;
            Some(Ok(()))
        } else if v.eq_ignore_ascii_case("None") {
            Some(Ok(()))
        } else if v.eq_ignore_ascii_case("Office365") {
            *office = true;
            Some(Ok(()))
        } else if AppId::parse(v).is_err() && v.chars().all(|c| c.is_ascii_alphanumeric()) {
            notes.push(format!(
                "conditions.applications: app group {v:?} is not supported; it matches no app"
            ));
            Some(Ok(()))
        } else {
            None
        }
    };
    let [inc_office, exc_office] = &mut office;
    let mut include = guid_list(
        &a.include_applications,
        "conditions.applications.includeApplications",
        ctx,
        |v| keyword(v, false, inc_office),
        AppId::parse,
    )?;
    let mut exclude = guid_list(
        &a.exclude_applications,
        "conditions.applications.excludeApplications",
        ctx,
        |v| keyword(v, true, exc_office),
        AppId::parse,
    )?;
    warnings.extend(notes);
    for (list, yes) in [(&mut include, office[0]), (&mut exclude, office[1])] {
        if yes {
            list.extend([apps::SHAREPOINT_ONLINE, apps::EXCHANGE_ONLINE]);
        }
        list.sort();
        list.dedup();
    }
    for (list, name) in [
        (&a.include_user_actions, "includeUserActions"),
        (
            &a.include_authentication_context_class_references,
            "includeAuthenticationContextClassReferences",
        ),
    ] {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            warnings.push(format!(
                "conditions.applications.{name} is not supported and matches no request"
            ));
        }
    }
    Ok(AppCondition {
        include_all,
        include: include.into(),
        exclude: exclude.into(),
    })
}

fn client_apps(c: &RawConditions, ctx: &Ctx<'_>) -> Result<ClientAppSet, PolicyError> {
    let Some(list) = c.client_app_types.as_ref().filter(|l| !l.is_empty()) else {
        return Ok(ClientAppSet::ALL);
    };
    let mut set = ClientAppSet::EMPTY;
    for (i, v) in list.iter().enumerate() {
        let t = match v.trim().to_ascii_lowercase().as_str() {
            "all" => return Ok(ClientAppSet::ALL),
            "browser" => ClientAppType::Browser,
            "mobileappsanddesktopclients" => ClientAppType::MobileAppsAndDesktopClients,
            "exchangeactivesync" | "eassupported" => ClientAppType::ExchangeActiveSync,
            "other" => ClientAppType::Other,
            _ => {
                return Err(ctx.err(
                    &format!("conditions.clientAppTypes[{i}]"),
                    format!(
                        "{v:?} is not a client app type; expected all, browser, \
                         mobileAppsAndDesktopClients, exchangeActiveSync or other"
                    ),
                ))
            }
        };
        set = set.with(t);
    }
    Ok(set)
}

fn platforms(
    c: &RawConditions,
    ctx: &Ctx<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<PlatformCondition>, PolicyError> {
    let Some(p) = &c.platforms else {
        return Ok(None);
    };
    let mut read = |list: &Option<Vec<String>>, field: &str| {
        let mut all = false;
        let mut set = PlatformSet::EMPTY;
        for (i, v) in list.iter().flatten().enumerate() {
            let platform = match v.trim().to_ascii_lowercase().as_str() {
                "all" => {
                    all = true;
                    continue;
                }
                "android" => Platform::Android,
                "ios" => Platform::Ios,
                "windows" => Platform::Windows,
                "macos" => Platform::MacOs,
                "linux" => Platform::Linux,
                "windowsphone" => {
                    warnings.push(format!("{field}: windowsPhone is not supported; ignored"));
                    continue;
                }
                _ => {
                    return Err(ctx.err(
                        &format!("{field}[{i}]"),
                        format!(
                            "{v:?} is not a platform; expected all, android, iOS, windows, \
                             macOS or linux"
                        ),
                    ))
                }
            };
            set = set.with(platform);
        }
        Ok((all, set))
    };
    let (include_all, include) = read(
        &p.include_platforms,
        "conditions.platforms.includePlatforms",
    )?;
    let (exclude_all, exclude) = read(
        &p.exclude_platforms,
        "conditions.platforms.excludePlatforms",
    )?;
    if exclude_all {
        return Err(ctx.err(
            "conditions.platforms.excludePlatforms",
            "\"all\" cannot be excluded",
        ));
    }
    if !include_all && include == PlatformSet::EMPTY {
        if exclude == PlatformSet::EMPTY {
            return Ok(None);
        }
        return Err(ctx.err(
            "conditions.platforms.includePlatforms",
            "excludePlatforms is set but includePlatforms is empty",
        ));
    }
    Ok(Some(PlatformCondition {
        include_all,
        include,
        exclude,
    }))
}

fn location_condition(
    c: &RawConditions,
    ctx: &Ctx<'_>,
    named: &NamedLocations,
    warnings: &mut Vec<String>,
) -> Result<Option<LocationCondition>, PolicyError> {
    let Some(l) = &c.locations else {
        return Ok(None);
    };
    let mut read = |list: &Option<Vec<String>>, field: &str| {
        let mut all = false;
        let mut ranges = Vec::new();
        for (i, v) in list.iter().flatten().enumerate() {
            let v = v.trim();
            if v.eq_ignore_ascii_case("All") {
                all = true;
            } else if v.eq_ignore_ascii_case("AllTrusted") {
                ranges.extend(named.trusted_ranges());
            } else if let Some(loc) = named.get(v) {
                if let Some(why) = &loc.unsupported {
                    warnings.push(format!("{field}[{i}] {:?}: {why}", loc.display_name));
                }
                ranges.extend(loc.ranges.iter().copied());
            } else if v == "00000000-0000-0000-0000-000000000000" {
                warnings.push(format!(
                    "{field}[{i}]: the legacy MFA trusted IPs location is not supported; it \
                     matches no address"
                ));
            } else {
                return Err(ctx.err(
                    &format!("{field}[{i}]"),
                    format!("unknown named location {v:?} (not in the named-locations document)"),
                ));
            }
        }
        ranges.sort();
        ranges.dedup();
        Ok(LocationSet::new(all, ranges))
    };
    let include = read(
        &l.include_locations,
        "conditions.locations.includeLocations",
    )?;
    let exclude = read(
        &l.exclude_locations,
        "conditions.locations.excludeLocations",
    )?;
    let unset = |l: &Option<Vec<String>>| l.as_ref().is_none_or(|l| l.is_empty());
    if unset(&l.include_locations) {
        if unset(&l.exclude_locations) {
            return Ok(None);
        }
        return Err(ctx.err(
            "conditions.locations.includeLocations",
            "excludeLocations is set but includeLocations is empty",
        ));
    }
    Ok(Some(LocationCondition { include, exclude }))
}

fn device_filter(
    c: &RawConditions,
    ctx: &Ctx<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<DeviceFilter>, PolicyError> {
    let Some(f) = c.devices.as_ref().and_then(|d| d.device_filter.as_ref()) else {
        return Ok(None);
    };
    let mode = match f.mode.as_deref().map(str::trim) {
        Some(m) if m.eq_ignore_ascii_case("include") => FilterMode::Include,
        Some(m) if m.eq_ignore_ascii_case("exclude") => FilterMode::Exclude,
        Some(other) => {
            return Err(ctx.err(
                "conditions.devices.deviceFilter.mode",
                format!("{other:?} is not a mode; expected include or exclude"),
            ))
        }
        None => return Err(ctx.err("conditions.devices.deviceFilter.mode", "missing")),
    };
    let Some(source) = f.rule.as_deref() else {
        return Err(ctx.err("conditions.devices.deviceFilter.rule", "missing"));
    };
    let rule = FilterExpr::parse(source)
        .map_err(|e| ctx.err("conditions.devices.deviceFilter.rule", e.to_string()))?;
    let mut unsupported = Vec::new();
    rule.unsupported_attributes(&mut unsupported);
    for name in unsupported {
        warnings.push(format!(
            "conditions.devices.deviceFilter.rule: device.{name} is not supported; it is \
             always null"
        ));
    }
    Ok(Some(DeviceFilter {
        mode,
        rule,
        source: source.into(),
    }))
}

fn grant(
    raw: Option<RawGrant>,
    ctx: &Ctx<'_>,
    warnings: &mut Vec<String>,
) -> Result<Grant, PolicyError> {
    let Some(g) = raw else {
        return Ok(Grant::default());
    };
    let operator = match g.operator.as_deref().map(str::trim) {
        None => GrantOperator::Or,
        Some(o) if o.eq_ignore_ascii_case("OR") => GrantOperator::Or,
        Some(o) if o.eq_ignore_ascii_case("AND") => GrantOperator::And,
        Some(other) => {
            return Err(ctx.err(
                "grantControls.operator",
                format!("{other:?} is not an operator; expected AND or OR"),
            ))
        }
    };
    let mut controls = Controls::NONE;
    let mut unknown: Vec<Box<str>> = Vec::new();
    for v in g.built_in_controls.iter().flatten() {
        let c = match v.trim().to_ascii_lowercase().as_str() {
            "block" => Controls::BLOCK,
            "compliantdevice" => Controls::COMPLIANT_DEVICE,
            "mfa" => Controls::MFA,
            "domainjoineddevice" => Controls::DOMAIN_JOINED,
            _ => {
                unknown.push(v.as_str().into());
                Controls::UNKNOWN
            }
        };
        controls = controls.union(c);
    }
    for (list, name) in [
        (
            &g.custom_authentication_factors,
            "customAuthenticationFactors",
        ),
        (&g.terms_of_use, "termsOfUse"),
    ] {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            unknown.push(name.into());
            controls = controls.union(Controls::UNKNOWN);
        }
    }
    if g.authentication_strength
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        unknown.push("authenticationStrength".into());
        controls = controls.union(Controls::UNKNOWN);
    }
    if controls.contains(Controls::BLOCK) && controls != Controls::BLOCK {
        warnings.push("grantControls: block is combined with other controls; block wins".into());
    }
    if !unknown.is_empty() {
        warnings.push(format!(
            "grantControls: {} cannot be satisfied by this gateway",
            unknown.join(", ")
        ));
    }
    Ok(Grant {
        operator,
        controls,
        unknown: unknown.into(),
    })
}

#[cfg(test)]
mod tests {
    use crate::access::decision::tests::LOCATIONS;
    use crate::access::PolicySet;

    fn check(doc: &str, expected: Result<usize, &str>) {
        match (PolicySet::parse(doc, Some(LOCATIONS)), expected) {
            (Ok(set), Ok(n)) => assert_eq!(set.len(), n, "{doc}"),
            (Err(e), Err(fragment)) => {
                assert!(
                    e.to_string().contains(fragment),
                    "{e}\n  wanted: {fragment}"
                )
            }
            (Ok(_), Err(f)) => panic!("{doc}: parsed, wanted error {f}"),
            (Err(e), Ok(_)) => panic!("{doc}: {e}"),
        }
    }

    #[test]
    fn parse_errors_name_policy_field_and_position() {
        for (doc, expected) in [
            (r#"{"value": []}"#, Ok(0)),
            (r#"[{"id":"a","state":"enabled"}]"#, Ok(1)),
            (r#"[{"id":"a","state":"enabled","unknownField":{"x":1}}]"#, Ok(1)),
            (
                "[\n {\"id\": \"p1\", \"displayName\": \"Block\",\n  \"state\": \"on\"}]",
                Err(r#"conditional-access policies, policy "Block" (p1), field state (line 3, column 3): "on" is not a state"#),
            ),
            (r#"[{"displayName":"x"}]"#, Err(r#"policy "x" (#1), field state"#)),
            (r#"[{"state":"enabled"},{"state":"enabled","conditions":{"users":{"includeUsers":["not-a-guid"]}}}]"#,
                Err("policy #2, field conditions.users.includeUsers[0]")),
            (r#"[{"id":"p","state":"enabled","conditions":{"users":{"includeGroups":["All"]}}}]"#,
                Err("field conditions.users.includeGroups[0]")),
            (r#"[{"id":"p","state":"enabled","conditions":{"users":{"excludeUsers":["All"]}}}]"#,
                Err("cannot be excluded")),
            (r#"[{"id":"p","state":"enabled","conditions":{"applications":{"includeApplications":["0000-bad"]}}}]"#,
                Err("field conditions.applications.includeApplications[0]")),
            (r#"[{"id":"p","state":"enabled","conditions":{"clientAppTypes":["browser","fax"]}}]"#,
                Err(r#"field conditions.clientAppTypes[1] (line 1, column 44): "fax" is not a client app type"#)),
            (r#"[{"id":"p","state":"enabled","conditions":{"platforms":{"includePlatforms":["beos"]}}}]"#,
                Err("field conditions.platforms.includePlatforms[0]")),
            (r#"[{"id":"p","state":"enabled","conditions":{"locations":{"includeLocations":["nowhere"]}}}]"#,
                Err(r#"unknown named location "nowhere""#)),
            (r#"[{"id":"p","state":"enabled","conditions":{"devices":{"deviceFilter":{"mode":"include","rule":"device.model -eq"}}}}]"#,
                Err("field conditions.devices.deviceFilter.rule (line 1, column 88): device filter rule, column 17: expected a quoted string"),
            ),
            (r#"[{"id":"p","state":"enabled","conditions":{"devices":{"deviceFilter":{"mode":"sometimes","rule":"x"}}}}]"#,
                Err("field conditions.devices.deviceFilter.mode")),
            (r#"[{"id":"p","state":"enabled","grantControls":{"operator":"XOR","builtInControls":["mfa"]}}]"#,
                Err("field grantControls.operator")),
            (r#"[{"id":"p","state":"enabled"},{"id":"P","state":"enabled"}]"#, Err("duplicate policy id")),
            (r#"[{"id":"p","displayName":"Shape","state":"enabled","conditions":{"users":{"includeUsers":"All"}}}]"#,
                Err(r#"policy "Shape" (p) (line 1, column 94): invalid type: string "All", expected a sequence"#)),
            ("[{\"id\": 1,}]", Err("conditional-access policies (line 1, column 11)")),
            ("42", Err("expected a JSON object")),
        ] {
            check(doc, expected);
        }
    }

    #[test]
    fn unsupported_values_are_warnings() {
        let set = PolicySet::parse(
            r#"[{"id":"p","displayName":"w","state":"enabled","conditions":{
                "users":{"includeUsers":["GuestsOrExternalUsers"],"includeRoles":["62e90394-69f5-4237-9190-012177145e10"]},
                "applications":{"includeApplications":["MicrosoftAdminPortals"]},
                "platforms":{"includePlatforms":["all","windowsPhone"]},
                "devices":{"deviceFilter":{"mode":"exclude","rule":"device.profileType -eq \"x\""}},
                "userRiskLevels":["high"]},
              "grantControls":{"operator":"OR","builtInControls":["approvedApplication"],"termsOfUse":["t"]}}]"#,
            None,
        )
        .unwrap();
        let warnings: Vec<&str> = set.warnings().map(|(_, w)| w).collect();
        for fragment in [
            "userRiskLevels is not supported",
            "GuestsOrExternalUsers is not supported",
            "includeRoles",
            "MicrosoftAdminPortals",
            "windowsPhone",
            "device.profileType is not supported",
            "approvedApplication, termsOfUse cannot be satisfied",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(fragment)),
                "{fragment} not in {warnings:#?}"
            );
        }
    }

    #[test]
    fn demo_documents_parse() {
        let set = PolicySet::parse(
            include_str!("../../../config/demo/conditional-access.json"),
            Some(include_str!("../../../config/demo/named-locations.json")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.len(), 6);
        assert_eq!(set.warnings().count(), 0);
    }
}
