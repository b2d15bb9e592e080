//! `/admin/v1/*`: snapshot status, device explain, what-if, risk-signal push (journaled before
//! the answer), reload, and recent decisions by correlation id.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::AdminState;
use crate::clock::UnixMillis;
use crate::compliance::RiskObservation;
use crate::ids::DeviceId;
use crate::model::ComplianceState;
use crate::proxy::body::ProxyBody;
use crate::signals::{parse_signals, ParseLimits};
use crate::sources::files;
use crate::whatif::{self, WhatIf};

/// Largest admin request body.
const MAX_BODY: usize = 8 * 1024 * 1024;

pub async fn handle(state: &Arc<AdminState>, req: Request<Incoming>) -> Response<ProxyBody> {
    if !authorized(state, &req) {
        let mut resp = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({ "error": "a valid admin bearer token is required" }),
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"portcullis-admin\""),
        );
        return resp;
    }
    let path = req.uri().path().to_string();
    let rest = path.trim_start_matches("/admin/v1/");
    match (req.method().clone(), rest) {
        (Method::GET, "snapshot") => json_response(StatusCode::OK, &snapshot_status(state)),
        (Method::GET, p) if p.starts_with("devices/") => device(state, &p["devices/".len()..]),
        (Method::GET, p) if p.starts_with("decisions/") => {
            match state.log.find(&p["decisions/".len()..]) {
                Some(v) => json_response(StatusCode::OK, &v),
                None => error(
                    StatusCode::NOT_FOUND,
                    "no recent decision with this correlation id",
                ),
            }
        }
        (Method::POST, "whatif") => match body(req).await {
            Ok((bytes, _)) => match serde_json::from_slice::<WhatIf>(&bytes) {
                Ok(q) => match whatif::ask(&state.store.load(), &state.routes, &q) {
                    Ok(answer) => json_response(
                        StatusCode::OK,
                        &serde_json::to_value(answer).unwrap_or(Value::Null),
                    ),
                    Err(e) => error(StatusCode::BAD_REQUEST, &e),
                },
                Err(e) => error(StatusCode::BAD_REQUEST, &format!("bad what-if body: {e}")),
            },
            Err(resp) => resp,
        },
        (Method::POST, "signals") => match body(req).await {
            Ok((bytes, content_type)) => signals(state, &bytes, content_type.as_deref()).await,
            Err(resp) => resp,
        },
        (Method::POST, "reload") => {
            let state = state.clone();
            tokio::task::spawn_blocking(move || reload(&state))
                .await
                .unwrap_or_else(|e| {
                    error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("reload task failed: {e}"),
                    )
                })
        }
        _ => error(StatusCode::NOT_FOUND, "no such admin endpoint"),
    }
}

fn authorized(state: &AdminState, req: &Request<Incoming>) -> bool {
    let Some(expected) = &state.token else {
        return false;
    };
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Constant-time comparison: the length may leak, the content does not.
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn body(req: Request<Incoming>) -> Result<(Bytes, Option<String>), Response<ProxyBody>> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok((collected.to_bytes(), content_type)),
        Err(e) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("cannot read the body: {e}"),
        )),
    }
}

fn snapshot_status(state: &AdminState) -> Value {
    let snap = state.store.load();
    let now = UnixMillis::now();
    let counts = snap.devices.count_by_state();
    let health = state.store.health();
    json!({
        "version": snap.version,
        "builtAt": snap.built_at.to_rfc3339(),
        "publishedAt": snap.published_at.to_rfc3339(),
        "ageSeconds": (now.0 - snap.published_at.0).max(0) / 1000,
        "devices": snap.devices.len(),
        "devicesByState": ComplianceState::ALL.iter().zip(counts).map(|(s, n)| (s.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "policies": snap.access.len(),
        "sources": snap.sources.iter().map(|s| json!({
            "kind": s.kind,
            "path": s.path.display().to_string(),
            "records": s.records,
            "modified": s.modified.map(|m| m.to_rfc3339()),
            "loadedAt": s.loaded_at.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "pulls": state.pulls.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(kind, status)| {
            let mut v = serde_json::to_value(status.view()).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("kind".into(), json!(kind));
            }
            v
        }).collect::<Vec<_>>(),
        "lastRebuild": {
            "attempt": health.last_attempt.map(|t| t.to_rfc3339()),
            "success": health.last_success.map(|t| t.to_rfc3339()),
            "error": health.last_error,
            "failuresTotal": health.failures_total,
        },
        "ready": state.ready.load(std::sync::atomic::Ordering::Acquire),
        "staleness": {
            "failingClosed": state.store.failing_closed(),
            "note": state.store.stale_note(),
            "lastSignalPushed": state.store.last_signal().map(|t| t.to_rfc3339()),
        },
    })
}

fn device(state: &AdminState, id: &str) -> Response<ProxyBody> {
    let Ok(id) = DeviceId::parse(id) else {
        return error(StatusCode::BAD_REQUEST, "the device id is not a GUID");
    };
    let snap = state.store.load();
    let Some(e) = snap.devices.get(id) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({ "id": id.to_string(), "state": "unknown", "reasons": ["device_unknown"], "snapshotVersion": snap.version }),
        );
    };
    let c = e.compliance();
    let risk = e.risk();
    json_response(
        StatusCode::OK,
        &json!({
            "id": id.to_string(),
            "displayName": e.display_name(),
            "operatingSystem": e.platform().as_str(),
            "osVersion": e.os_version(),
            "managed": e.managed(),
            "userId": e.user_id().map(|u| u.to_string()),
            "groups": e.groups().iter().map(|g| g.to_string()).collect::<Vec<_>>(),
            "lastSyncDateTime": e.last_sync().map(|t| t.to_rfc3339()),
            "risk": { "level": risk.risk.as_str(), "observedAt": risk.observed_at.map(|t| t.to_rfc3339()) },
            "state": c.state.as_str(),
            "reasons": c.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "explanation": c.reasons.iter().map(|r| r.describe()).collect::<Vec<_>>(),
            "details": {
                "observedRisk": c.details.observed_risk.as_str(),
                "allowedRisk": c.details.allowed_risk.map(|r| r.as_str()),
                "graceUntil": c.details.grace_until.map(|t| t.to_rfc3339()),
            },
            "snapshotVersion": snap.version,
        }),
    )
}

async fn signals(
    state: &Arc<AdminState>,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Response<ProxyBody> {
    let accepted_at = Instant::now();
    let now = UnixMillis::now();
    let parsed = match parse_signals(bytes, content_type, now, &ParseLimits::default()) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let rejected: Vec<Value> = parsed
        .bad
        .iter()
        .map(|b| json!({ "line": b.line, "error": b.message }))
        .collect();
    if !parsed.good.is_empty() {
        if let Some(journal) = &state.journal {
            if let Err(e) = journal.append(parsed.good.clone()).await {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("the signal journal could not be written; nothing was applied: {e}"),
                );
            }
        }
    }
    let batch: Vec<(DeviceId, RiskObservation)> = parsed
        .good
        .iter()
        .map(|s| (s.device, RiskObservation::new(s.risk, s.observed_at)))
        .collect();
    if !batch.is_empty() {
        state.store.note_signal(now);
    }
    let outcome = state.store.apply_risks(&batch, now);
    if outcome.version.is_some() {
        state
            .metrics
            .signal_to_enforcement
            .observe(accepted_at.elapsed().as_secs_f64());
    }
    let status = if parsed.good.is_empty() && !rejected.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    json_response(
        status,
        &json!({
            "accepted": parsed.good.len(),
            "applied": outcome.updated,
            "ignoredOlder": outcome.ignored_older,
            "unknownDevices": outcome.unknown.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "rejected": rejected,
            "snapshotVersion": outcome.version.unwrap_or_else(|| state.store.load().version),
        }),
    )
}

fn reload(state: &AdminState) -> Response<ProxyBody> {
    let Some((sources, base_dir)) = &state.sources else {
        return error(
            StatusCode::CONFLICT,
            "no [sources] configured: nothing to reload",
        );
    };
    let started = Instant::now();
    let loader = files::access_loader(sources, base_dir);
    match files::rebuild(&state.store, sources, base_dir, &*loader, UnixMillis::now()) {
        Ok(version) => {
            state
                .metrics
                .config_reloads
                .with_label_values(&["success"])
                .inc();
            state
                .metrics
                .snapshot_build_duration
                .observe(started.elapsed().as_secs_f64());
            json_response(
                StatusCode::OK,
                &json!({ "reloaded": true, "version": version }),
            )
        }
        Err(e) => {
            state
                .metrics
                .config_reloads
                .with_label_values(&["failure"])
                .inc();
            json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({ "reloaded": false, "error": e.to_string(), "kept": state.store.load().version }),
            )
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    json_response(status, &json!({ "error": message }))
}

pub fn json_response(status: StatusCode, value: &Value) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
