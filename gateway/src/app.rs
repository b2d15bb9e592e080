//! The whole gateway assembled from a config: metrics, the admin listener and the proxy
//! listeners. `serve`, `demo` and the integration tests all start it through `start`.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::proxy::{self, StartError};

/// A running gateway.
pub struct App {
    pub proxy: proxy::Running,
    /// The admin listener's bound address, when configured.
    pub admin_addr: Option<SocketAddr>,
    pub admin: Arc<AdminState>,
    pub metrics: Arc<Metrics>,
    admin_stop: watch::Sender<bool>,
}

impl App {
    /// The bound address of the proxy listener named `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.proxy.addr(name)
    }

    /// Drains the proxy listeners, then stops the admin listener.
    pub async fn shutdown(self) {
        self.proxy.shutdown().await;
        let _ = self.admin_stop.send(true);
    }
}

/// Starts everything `config` describes. Nothing listens if any part fails.
pub async fn start(config: &Config) -> Result<App, StartError> {
    let metrics =
        Arc::new(Metrics::new().map_err(|e| StartError::Internal(format!("metrics: {e}")))?);
    let token = config.admin.as_ref().and_then(|a| a.token.clone());
    let admin_state = Arc::new(AdminState::new(metrics.clone(), token));
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
    let proxy = proxy::start(config, metrics.clone()).await?;
    // Until the decision core is wired in there is no snapshot to wait for.
    admin_state.set_ready(true);
    let (admin_stop, admin_rx) = watch::channel(false);
    let admin_addr = match admin_listener {
        Some(l) => {
            let addr = l.local_addr().ok();
            tracing::info!(address = ?addr, "admin listening");
            tokio::spawn(admin::serve(l, admin_state.clone(), admin_rx));
            addr
        }
        None => None,
    };
    Ok(App {
        proxy,
        admin_addr,
        admin: admin_state,
        metrics,
        admin_stop,
    })
}
