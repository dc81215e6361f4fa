//! Ingress status: `status.loadBalancer.ingress`, written by the elected leader.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as networking;
use kube::api::{Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::watch;

use super::IngressStatuses;
use crate::model::ObjectRef;

/// One entry of an Ingress's `status.loadBalancer.ingress`: where clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Address {
    /// An IP address (`ip`).
    Ip(String),
    /// A DNS name (`hostname`).
    Hostname(String),
}

impl Address {
    /// An IP when `text` parses as one, else a hostname; `None` when empty.
    pub fn parse(text: &str) -> Option<Address> {
        let text = text.trim();
        if text.is_empty() {
            None
        } else if text.parse::<IpAddr>().is_ok() {
            Some(Address::Ip(text.to_owned()))
        } else {
            Some(Address::Hostname(text.to_ascii_lowercase()))
        }
    }

    /// The addresses of a `status.loadBalancer.ingress` list, as `(ip, hostname)` pairs
    /// (Ingress and Service status have entry types of their own with these two fields).
    pub(super) fn list<'a>(
        entries: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    ) -> Vec<Address> {
        entries
            .into_iter()
            .filter_map(|(ip, hostname)| match (ip, hostname) {
                (Some(ip), _) if !ip.is_empty() => Some(Address::Ip(ip.to_owned())),
                (_, Some(name)) if !name.is_empty() => Some(Address::Hostname(name.to_owned())),
                _ => None,
            })
            .collect()
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Address::Ip(ip) => json!({ "ip": ip }),
            Address::Hostname(name) => json!({ "hostname": name }),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(a) | Address::Hostname(a) => f.write_str(a),
        }
    }
}

/// Where the addresses written into Ingress status come from: the picture of the load
/// balancer in front of the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishAddresses {
    /// These addresses, as configured.
    Fixed(Vec<Address>),
    /// The `status.loadBalancer.ingress` of this Service (of type LoadBalancer), followed as
    /// it changes: namespace and name.
    Service(String, String),
}

/// Writes `status.loadBalancer.ingress` of the Ingresses a [`ClusterWatch`](super::ClusterWatch)
/// serves, and removes it from those it stops serving (feature `kube`).
///
/// The writer is level-triggered: it compares what each Ingress's status holds (as the watch
/// sees it) with what it should hold, and writes only the differences, with server-side apply
/// under one field manager (default `ingress-router`), on the `status` subresource. Removing
/// means applying a status without the field: the apiserver then drops the addresses this
/// field manager owns, and never another writer's. It writes only while `leader` says so
/// (see [`LeaderElection`](super::LeaderElection)); a failed write is retried after a second.
#[derive(Clone)]
pub struct StatusWriter {
    client: Client,
    addresses: PublishAddresses,
    field_manager: String,
    concurrency: usize,
}

impl fmt::Debug for StatusWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusWriter")
            .field("addresses", &self.addresses)
            .field("field_manager", &self.field_manager)
            .finish_non_exhaustive()
    }
}

impl StatusWriter {
    /// A writer of `addresses` through `client`.
    pub fn new(client: Client, addresses: PublishAddresses) -> StatusWriter {
        StatusWriter {
            client,
            addresses,
            field_manager: "ingress-router".to_owned(),
            concurrency: 16,
        }
    }

    /// The server-side apply field manager (default `ingress-router`). Every replica must use
    /// the same one, so that a new leader can remove what an old one wrote.
    pub fn field_manager(mut self, name: impl Into<String>) -> StatusWriter {
        self.field_manager = name.into();
        self
    }

    /// Runs until `statuses` closes: writes while `leader` holds `true`.
    pub async fn run(
        self,
        mut statuses: watch::Receiver<Arc<IngressStatuses>>,
        mut leader: watch::Receiver<bool>,
    ) {
        let (addresses_tx, mut addresses) = watch::channel(match &self.addresses {
            PublishAddresses::Fixed(list) => Some(sorted(list.clone())),
            PublishAddresses::Service(..) => None,
        });
        let follow = match &self.addresses {
            PublishAddresses::Service(namespace, name) => Some(tokio::spawn(follow_service(
                Api::namespaced(self.client.clone(), namespace),
                name.clone(),
                addresses_tx,
            ))),
            PublishAddresses::Fixed(_) => None,
        };
        let mut state = Writes::default();
        let mut retry: Option<tokio::time::Instant> = None;
        loop {
            let is_leader = *leader.borrow_and_update();
            let current = addresses.borrow_and_update().clone();
            if is_leader {
                if let Some(current) = current {
                    let view = statuses.borrow_and_update().clone();
                    let failed = self.write(&view, &current, &mut state).await;
                    retry = failed.then(|| tokio::time::Instant::now() + Duration::from_secs(1));
                }
            } else {
                state = Writes::default();
            }
            let wait_retry = async {
                match retry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = statuses.changed() => if changed.is_err() { break },
                changed = leader.changed() => if changed.is_err() { break },
                changed = addresses.changed() => if changed.is_err() { break },
                () = wait_retry => { retry = None; state.attempted.clear(); }
            }
        }
        if let Some(follow) = follow {
            follow.abort();
        }
    }

    /// Writes every difference; `true` when a write failed.
    async fn write(
        &self,
        view: &IngressStatuses,
        addresses: &[Address],
        state: &mut Writes,
    ) -> bool {
        state
            .attempted
            .retain(|r, _| view.ingresses.contains_key(r));
        let mut writes: Vec<(ObjectRef, Vec<Address>)> = Vec::new();
        for (ingress, (served, observed)) in &view.ingresses {
            let observed = sorted(observed.clone());
            let desired = if *served {
                addresses.to_vec()
            } else if !observed.is_empty() && observed == addresses {
                // Not served, and the addresses are ours: remove them.
                Vec::new()
            } else {
                continue;
            };
            if observed == desired {
                state.attempted.remove(ingress);
                continue;
            }
            let attempt = (desired.clone(), observed);
            if state.attempted.get(ingress) == Some(&attempt) {
                continue; // written already; waiting for the watch to show it
            }
            state.attempted.insert(ingress.clone(), attempt);
            writes.push((ingress.clone(), desired));
        }
        let results: Vec<(ObjectRef, Result<(), kube::Error>)> = futures_util::stream::iter(writes)
            .map(|(ingress, desired)| async move {
                let result = self.apply(&ingress, &desired).await;
                (ingress, result)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut failed = false;
        for (ingress, result) in results {
            match result {
                Ok(()) => tracing::debug!("status of Ingress {ingress} written"),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!("cannot write the status of Ingress {ingress}: {e}");
                    state.attempted.remove(&ingress);
                    failed = true;
                }
            }
        }
        failed
    }

    async fn apply(&self, ingress: &ObjectRef, addresses: &[Address]) -> Result<(), kube::Error> {
        let namespace = ingress.namespace.as_deref().unwrap_or("default");
        let api: Api<networking::Ingress> = Api::namespaced(self.client.clone(), namespace);
        let load_balancer = if addresses.is_empty() {
            json!({})
        } else {
            json!({ "ingress": addresses.iter().map(Address::to_json).collect::<Vec<_>>() })
        };
        let patch = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": { "name": ingress.name, "namespace": namespace },
            "status": { "loadBalancer": load_balancer },
        });
        let params = PatchParams::apply(&self.field_manager).force();
        api.patch_status(&ingress.name, &params, &Patch::Apply(&patch))
            .await
            .map(|_| ())
    }
}

/// What the writer has sent and not yet seen come back: by Ingress, the desired and the
/// observed addresses at the time of the write.
#[derive(Default)]
struct Writes {
    attempted: HashMap<ObjectRef, (Vec<Address>, Vec<Address>)>,
}

fn sorted(mut addresses: Vec<Address>) -> Vec<Address> {
    addresses.sort();
    addresses.dedup();
    addresses
}

/// Follows the load-balancer addresses of Service `name`.
async fn follow_service(
    api: Api<core::Service>,
    name: String,
    addresses: watch::Sender<Option<Vec<Address>>>,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api, config).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        let service = match event {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => Some(s),
            Ok(watcher::Event::Delete(_)) => None,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!("watching the publish Service {name}: {e}");
                continue;
            }
        };
        let list = service
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .map(|entries| {
                Address::list(
                    entries
                        .iter()
                        .map(|e| (e.ip.as_deref(), e.hostname.as_deref())),
                )
            })
            .unwrap_or_default();
        addresses.send_replace(Some(sorted(list)));
    }
}
