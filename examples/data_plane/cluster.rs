//! The live-cluster source: a `ClusterWatch` feeding the data plane's reconcilers, and the
//! leader-elected status writer.

use std::time::Duration;

use ingress_router::{
    Address, ClusterWatch, LeaderElection, Leadership, PublishAddresses, StatusWriter, WatchHandle,
};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::args::Cluster;
use crate::health::Readiness;
use crate::proxy::DataPlane;

/// The running watch, and the leadership when status is written.
pub struct Running {
    watch: WatchHandle,
    leadership: Option<Leadership>,
    status: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Whether the snapshots are complete, for `/readyz`.
    pub fn readiness(&self) -> Readiness {
        let state = self.watch.state();
        std::sync::Arc::new(move || match state.borrow().not_ready_reason() {
            None => Ok(()),
            Some(reason) => Err(reason),
        })
    }

    /// Stops writing status, and frees the Lease for another replica.
    pub async fn stop(self) {
        if let Some(status) = self.status {
            status.abort();
        }
        if let Some(leadership) = self.leadership {
            leadership.release().await;
        }
        self.watch.abort();
    }
}

/// The client configuration: `--kubeconfig`'s, else the in-cluster one.
async fn client_config(cluster: &Cluster) -> Result<kube::Config, String> {
    Ok(match &cluster.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?,
    })
}

/// The data of the ConfigMap `namespace/name`; `None` when it does not exist.
pub async fn configmap(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>, String> {
    let client = kube::Client::try_from(client_config(cluster).await?)
        .map_err(|e| format!("kube client: {e}"))?;
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client, namespace);
    let map = api
        .get_opt(name)
        .await
        .map_err(|e| format!("ConfigMap {namespace}/{name}: {e}"))?;
    Ok(map.map(|m| m.data.unwrap_or_default()))
}

/// Connects to the apiserver and starts feeding `plane`.
pub async fn start(plane: &DataPlane, cluster: Cluster) -> Result<Running, String> {
    let config = client_config(&cluster).await?;
    tracing::info!("watching the apiserver at {}", config.cluster_url);
    let client = kube::Client::try_from(config).map_err(|e| format!("kube client: {e}"))?;

    let mut watch = ClusterWatch::new(client.clone());
    if let Some(namespace) = &cluster.namespace {
        watch = watch.namespace(namespace);
    }
    if let Some(selector) = &cluster.selector {
        watch = watch.label_selector(selector);
    }
    let watch = watch.spawn(plane.take_reconcilers());
    let mut state = watch.state();
    tokio::spawn(async move {
        let mut reported_ready = false;
        let mut errors = Vec::new();
        while state.changed().await.is_ok() {
            let now = state.borrow_and_update().clone();
            if now.ready && !reported_ready {
                reported_ready = true;
                tracing::info!("ready: every kind listed, snapshots complete");
            }
            if now.errors != errors {
                errors = now.errors.clone();
                for (kind, error) in &errors {
                    tracing::error!("cannot watch {kind:?}: {error}");
                }
            }
        }
    });

    let publish = match (
        &cluster.publish_service,
        cluster.publish_addresses.as_slice(),
    ) {
        (Some((namespace, name)), _) => {
            Some(PublishAddresses::Service(namespace.clone(), name.clone()))
        }
        (None, []) => None,
        (None, addresses) => Some(PublishAddresses::Fixed(
            addresses.iter().filter_map(|a| Address::parse(a)).collect(),
        )),
    };
    let (leadership, status) = match publish {
        None => (None, None),
        Some(publish) => {
            let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_else(|_| "data-plane".to_owned());
                format!("{host}-{}", std::process::id())
            });
            let namespace = cluster
                .election_namespace
                .or(cluster.namespace)
                .unwrap_or_else(|| "default".to_owned());
            tracing::info!(
                "status: written by the holder of Lease {namespace}/{} (this replica: {identity})",
                cluster.election_id
            );
            let retry = (cluster.election_lease / 4).min(Duration::from_secs(2));
            let leadership =
                LeaderElection::new(client.clone(), namespace, cluster.election_id, identity)
                    .timing(cluster.election_lease, retry)
                    .spawn();
            let writer = StatusWriter::new(client, publish);
            let status = tokio::spawn(writer.run(watch.statuses(), leadership.subscribe()));
            (Some(leadership), Some(status))
        }
    };
    Ok(Running {
        watch,
        leadership,
        status,
    })
}
