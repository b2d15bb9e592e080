//! Starting and stopping a gateway: bind every listener (failing before any serves if one
//! cannot bind), run, and drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use rustls::server::danger::ClientCertVerifier;

use super::gateway::{Gateway, GatewayParts};
use super::route::RouteTable;
use super::server::{describe, serve_listener};
use super::tls::{server_config, TlsSetupError};
use super::upstream;
use crate::config::identity::MtlsMode;
use crate::config::{ClientAuth, Config, TlsConfig};
use crate::decision_log::DecisionLog;
use crate::identity::{mtls, Authenticator};
use crate::metrics::Metrics;
use crate::snapshot::SnapshotStore;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} (listener `{name}`): {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("listener `{name}`: {source}")]
    Tls { name: String, source: TlsSetupError },
    #[error("cannot set up the upstream client: {0}")]
    Client(rustls::Error),
    #[error("{0}")]
    Internal(String),
}

/// A running gateway: its bound addresses and the handle to stop it.
pub struct Running {
    /// `(listener name, bound address)` in config order.
    pub addrs: Vec<(String, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// The bound address of the listener named `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// Stops accepting, lets in-flight requests finish (up to `limits.shutdown_grace`), returns
    /// when every listener has drained.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// A signal that makes `shutdown` start from elsewhere.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }

    /// Waits until the listeners have stopped (after a shutdown was signalled).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Builds the gateway for `config` from its shared parts.
pub fn gateway(
    config: &Config,
    metrics: Arc<Metrics>,
    store: Arc<SnapshotStore>,
    auth: Arc<Authenticator>,
    log: Arc<DecisionLog>,
) -> Result<Arc<Gateway>, StartError> {
    let client = upstream::client(&config.limits).map_err(StartError::Client)?;
    Ok(Arc::new(Gateway::new(GatewayParts {
        routes: RouteTable::new(&config.routes, &metrics),
        client,
        limits: config.limits.clone(),
        metrics,
        store,
        auth,
        log,
        trusted_proxies: config.trusted_proxies.clone(),
    })))
}

/// The client-certificate verifier a TLS listener asks with, if any.
pub fn client_verifier(
    config: &Config,
    tls: &TlsConfig,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let mode = match tls.client_auth {
        ClientAuth::Off => return Ok(None),
        ClientAuth::Optional => MtlsMode::Optional,
        ClientAuth::Required => MtlsMode::Required,
    };
    let Some(ca) = tls.client_ca.as_ref() else {
        return Err("client_auth needs client_ca".into());
    };
    mtls::client_verifier(&config.resolve(ca), mode).map_err(|e| e.to_string())
}

/// Binds every listener of `config` and starts serving `gateway` on them.
pub async fn start(config: &Config, gateway: Arc<Gateway>) -> Result<Running, StartError> {
    let mut bound = Vec::new();
    for l in &config.listeners {
        let acceptor = match &l.tls {
            None => None,
            Some(t) => {
                let verifier = client_verifier(config, t)
                    .map_err(|e| StartError::Internal(format!("listener `{}`: {e}", l.name)))?;
                let cfg =
                    server_config(&config.resolve(&t.cert), &config.resolve(&t.key), verifier)
                        .map_err(|source| StartError::Tls {
                            name: l.name.clone(),
                            source,
                        })?;
                Some(TlsAcceptor::from(cfg))
            }
        };
        let listener = TcpListener::bind(l.addr)
            .await
            .map_err(|source| StartError::Bind {
                name: l.name.clone(),
                addr: l.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            name: l.name.clone(),
            addr: l.addr,
            source,
        })?;
        bound.push((l.name.clone(), addr, listener, acceptor));
    }
    let (shutdown, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut addrs = Vec::new();
    for (name, addr, listener, acceptor) in bound {
        tracing::info!(listener = %name, address = %describe(addr, acceptor.is_some()), "listening");
        addrs.push((name.clone(), addr));
        tasks.spawn(serve_listener(
            listener,
            acceptor,
            name.into(),
            gateway.clone(),
            rx.clone(),
        ));
    }
    Ok(Running {
        addrs,
        shutdown,
        tasks,
    })
}
