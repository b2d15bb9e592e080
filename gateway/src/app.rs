//! The whole gateway assembled from a config: device snapshot and its sources, identity,
//! metrics, decision log, the admin listener and the proxy listeners. `serve`, `demo` and the
//! integration tests all start it through `start`. Every part is set up before any port is
//! bound, so a bad input never leaves a half-started gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::access::PolicySet;
use crate::admin::{self, AdminState, JournalWriter, SignalJournal};
use crate::clock::UnixMillis;
use crate::compliance::RiskObservation;
use crate::config::sources::StalenessConfig;
use crate::config::Config;
use crate::decision_log::DecisionLog;
use crate::identity::Authenticator;
use crate::metrics::Metrics;
use crate::model::ComplianceState;
use crate::proxy::{self, StartError};
use crate::snapshot::staleness::{assess, Freshness};
use crate::snapshot::{Snapshot, SnapshotStore};
use crate::sources::pulled::{self, Pulls};
use crate::sources::{files, watch as source_watch};

/// Recent decisions kept for `/admin/v1/decisions/{id}`.
const RECENT_DECISIONS: usize = 10_000;

/// A running gateway.
pub struct App {
    pub proxy: proxy::Running,
    /// The admin listener's bound address, when configured.
    pub admin_addr: Option<SocketAddr>,
    pub admin: Arc<AdminState>,
    pub metrics: Arc<Metrics>,
    pub store: Arc<SnapshotStore>,
    stop: watch::Sender<bool>,
    _watcher: Option<source_watch::WatchHandle>,
}

impl App {
    /// The bound address of the proxy listener named `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.proxy.addr(name)
    }

    /// Drains the proxy listeners, then stops the admin listener and background tasks.
    pub async fn shutdown(self) {
        self.proxy.shutdown().await;
        let _ = self.stop.send(true);
    }
}

/// Loads the first snapshot: from the configured sources, or an empty one without sources.
pub fn first_snapshot(config: &Config) -> Result<SnapshotStore, StartError> {
    let now = UnixMillis::now();
    let store = SnapshotStore::new(Snapshot::empty(Arc::new(PolicySet::empty()), now));
    if let Some(sources) = &config.sources {
        let loader = files::access_loader(sources, &config.base_dir);
        files::rebuild(&store, sources, &config.base_dir, &*loader, now)
            .map_err(|e| StartError::Internal(format!("cannot load the sources: {e}")))?;
    }
    Ok(store)
}

/// Opens the signal journal and applies what it holds to the store (nothing pushed is lost
/// on restart).
fn replay_journal(
    path: &std::path::Path,
    store: &SnapshotStore,
) -> Result<SignalJournal, StartError> {
    let (journal, replay) = SignalJournal::open(path).map_err(|e| {
        StartError::Internal(format!(
            "cannot open the signal journal {}: {e}",
            path.display()
        ))
    })?;
    if let Some(tail) = &replay.dropped_tail {
        tracing::warn!(journal = %path.display(), dropped = %tail, "dropped a torn record at the end of the signal journal");
    }
    let batch: Vec<_> = replay
        .signals
        .iter()
        .map(|s| (s.device, RiskObservation::new(s.risk, s.observed_at)))
        .collect();
    let outcome = store.apply_risks(&batch, UnixMillis::now());
    tracing::info!(journal = %path.display(), signals = batch.len(), applied = outcome.updated, "replayed the signal journal");
    Ok(journal)
}

/// Starts everything `config` describes.
pub async fn start(config: &Config) -> Result<App, StartError> {
    let metrics =
        Arc::new(Metrics::new().map_err(|e| StartError::Internal(format!("metrics: {e}")))?);
    let build_started = std::time::Instant::now();
    let store = Arc::new(first_snapshot(config)?);
    metrics
        .snapshot_build_duration
        .observe(build_started.elapsed().as_secs_f64());
    let auth = Authenticator::build(&config.identity, &config.base_dir)
        .await
        .map_err(|e| StartError::Internal(format!("{}: [identity]: {e}", config.path.display())))?;
    let log = Arc::new(match &config.decision_log.path {
        Some(p) => DecisionLog::spawn(
            &config.resolve(p),
            config.decision_log.allow_sample_rate,
            RECENT_DECISIONS,
        )
        .map_err(|e| {
            StartError::Internal(format!("cannot open the decision log {}: {e}", p.display()))
        })?,
        None => DecisionLog::disabled(RECENT_DECISIONS),
    });
    let journal = match config.admin.as_ref().and_then(|a| a.journal.as_ref()) {
        Some(p) => Some(
            JournalWriter::start(replay_journal(&config.resolve(p), &store)?).map_err(|e| {
                StartError::Internal(format!("cannot start the journal writer: {e}"))
            })?,
        ),
        None => None,
    };
    let admin_state = Arc::new(AdminState {
        metrics: metrics.clone(),
        ready: std::sync::atomic::AtomicBool::new(false),
        token: config.admin.as_ref().and_then(|a| a.token.clone()),
        store: store.clone(),
        log: log.clone(),
        routes: config.routes.clone(),
        journal,
        sources: config.sources.clone().map(|s| (s, config.base_dir.clone())),
        pulls: std::sync::Mutex::new(Vec::new()),
    });
    let admin_listener = match &config.admin {
        Some(a) => Some(
            TcpListener::bind(a.addr)
                .await
                .map_err(|source| StartError::Bind {
                    name: "admin".into(),
                    addr: a.addr,
                    source,
                })?,
        ),
        None => None,
    };
    if let Some(cfg) = config.sources.as_ref().and_then(|s| s.staleness.as_ref()) {
        // Decide before the first request whether the data is already too old to serve on.
        let verdict = assess(
            UnixMillis::now(),
            &store.load().sources,
            &heard(&store, &Vec::new()),
            cfg,
        );
        store.set_staleness(verdict.failing_closed(), verdict.note());
    }
    let gateway = proxy::run::gateway(
        config,
        metrics.clone(),
        store.clone(),
        auth.clone(),
        log.clone(),
    )?;
    let proxy = proxy::start(config, gateway).await?;

    let watcher = match &config.sources {
        Some(sources) => Some(
            source_watch::spawn(
                store.clone(),
                sources.clone(),
                config.base_dir.clone(),
                files::access_loader(sources, &config.base_dir),
            )
            .map_err(|e| StartError::Internal(format!("cannot watch the source files: {e}")))?,
        ),
        None => None,
    };
    let _ = auth.spawn_jwks_refresh();
    admin_state.set_ready(true);

    let (stop, stop_rx) = watch::channel(false);
    let pulls = match &config.sources {
        Some(sources) => pulled::spawn(
            sources,
            &config.base_dir,
            store.clone(),
            files::access_loader(sources, &config.base_dir),
            stop_rx.clone(),
        )
        .map_err(|e| StartError::Internal(format!("cannot start the pull sources: {e}")))?,
        None => Vec::new(),
    };
    *admin_state.pulls.lock().unwrap_or_else(|e| e.into_inner()) = pulls.clone();
    tokio::spawn(refresh_gauges(
        store.clone(),
        auth,
        metrics.clone(),
        stop_rx.clone(),
    ));
    if let Some(staleness) = config.sources.as_ref().and_then(|s| s.staleness.clone()) {
        tokio::spawn(watch_staleness(
            store.clone(),
            staleness,
            pulls.clone(),
            admin_state.clone(),
            stop_rx.clone(),
        ));
    }
    let admin_addr = match admin_listener {
        Some(l) => {
            let addr = l.local_addr().ok();
            tracing::info!(address = ?addr, "admin listening");
            tokio::spawn(admin::serve(l, admin_state.clone(), stop_rx));
            addr
        }
        None => None,
    };
    Ok(App {
        proxy,
        admin_addr,
        admin: admin_state,
        metrics,
        store,
        stop,
        _watcher: watcher,
    })
}

/// Assesses the feeds' staleness every `check_every`, failing closed (and not ready) past the
/// configured grace, serving again as soon as the feed is heard from.
async fn watch_staleness(
    store: Arc<SnapshotStore>,
    cfg: StalenessConfig,
    pulls: Pulls,
    admin: Arc<AdminState>,
    mut stop: watch::Receiver<bool>,
) {
    let tick = cfg.check_every.max(Duration::from_millis(50));
    let mut was = Freshness::Fresh;
    loop {
        let verdict = assess(
            UnixMillis::now(),
            &store.load().sources,
            &heard(&store, &pulls),
            &cfg,
        );
        if std::mem::discriminant(&verdict) != std::mem::discriminant(&was) {
            match &verdict {
                Freshness::Fresh => tracing::info!("sources fresh again"),
                Freshness::Stale { note, fail_at } => {
                    tracing::warn!(%note, fail_closed_at = %fail_at.to_rfc3339(), "sources stale, still serving")
                }
                Freshness::FailClosed { note } => {
                    tracing::error!(%note, "sources stale past their grace: failing closed (snapshot_stale)")
                }
            }
        }
        store.set_staleness(verdict.failing_closed(), verdict.note());
        admin.set_ready(!verdict.failing_closed());
        was = verdict;
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
    }
}

/// When each feed was last heard from besides its file changing: pushed signals (risk feed)
/// and pulls that found nothing new.
fn heard(store: &SnapshotStore, pulls: &Pulls) -> Vec<(&'static str, UnixMillis)> {
    let mut out: Vec<(&'static str, UnixMillis)> = pulls
        .iter()
        .filter_map(|(kind, status)| status.view().last_success_at.map(|t| (*kind, t)))
        .collect();
    if let Some(t) = store.last_signal() {
        out.push(("defender_machines", t));
    }
    out
}

/// Keeps the snapshot and cache gauges current (once a second; device counts only when the
/// snapshot version changed).
async fn refresh_gauges(
    store: Arc<SnapshotStore>,
    auth: Arc<Authenticator>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut counted_version = u64::MAX;
    let mut failures_seen = 0;
    loop {
        let snapshot = store.load_full();
        let now = UnixMillis::now();
        metrics
            .snapshot_version
            .set(i64::try_from(snapshot.version).unwrap_or(i64::MAX));
        let health = store.health();
        let fresh = health
            .last_success
            .map_or(snapshot.built_at, |t| t.max(snapshot.published_at));
        metrics
            .snapshot_age_seconds
            .set((now.0 - fresh.0).max(0) / 1000);
        if health.failures_total > failures_seen {
            metrics
                .snapshot_build_failures
                .inc_by(health.failures_total - failures_seen);
            failures_seen = health.failures_total;
        }
        if snapshot.version != counted_version {
            counted_version = snapshot.version;
            let counts = snapshot.devices.count_by_state();
            for (state, n) in ComplianceState::ALL.iter().zip(counts) {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                metrics.devices.with_label_values(&[state.as_str()]).set(n);
            }
        }
        let stats = auth.cache_stats();
        for (label, total) in [("hit", stats.hits), ("miss", stats.misses)] {
            let c = metrics.token_cache_requests.with_label_values(&[label]);
            c.inc_by(total.saturating_sub(c.get()));
        }
        drop(snapshot);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}
