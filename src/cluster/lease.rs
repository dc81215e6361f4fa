//! Leader election with a `coordination.k8s.io/v1` Lease.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// Elects one leader among the replicas of a data plane through a `coordination.k8s.io/v1`
/// Lease, as client-go's leader election does (feature `kube`).
///
/// Each candidate reads the Lease every `retry` period. The holder renews it (updates
/// `renewTime`) every `retry` period; a candidate takes it over when it is free, or when its
/// record has not changed for `leaseDurationSeconds` as measured on the candidate's own clock
/// (so clock skew between replicas does not matter). Every write carries the
/// `resourceVersion` it read, so of two candidates only one wins. A leader that cannot renew
/// for `lease_duration - retry` steps down before anyone may take over. [`Leadership::release`]
/// frees the Lease at shutdown, so a successor takes over at its next read rather than after
/// the lease expires.
///
/// The identity needs `get`, `create` and `update` on `leases` in the Lease's namespace.
#[derive(Clone)]
pub struct LeaderElection {
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    lease_duration: Duration,
    retry: Duration,
}

impl fmt::Debug for LeaderElection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderElection")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("lease_duration", &self.lease_duration)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// A running [`LeaderElection`]: whether this replica leads, as it changes.
#[derive(Debug)]
pub struct Leadership {
    leader: watch::Receiver<bool>,
    release: Option<oneshot::Sender<oneshot::Sender<()>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Follows leadership as it changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Stops campaigning and, when leading, frees the Lease so that another replica takes
    /// over at once.
    pub async fn release(mut self) {
        if let Some(release) = self.release.take() {
            let (done_tx, done) = oneshot::channel();
            if release.send(done_tx).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
            }
        }
        self.task.abort();
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LeaderElection {
    /// Campaigns for Lease `namespace/name` as `identity` (unique per replica, such as the
    /// pod's name), with a 15 s lease renewed every 2 s, client-go's defaults.
    pub fn new(
        client: Client,
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> LeaderElection {
        LeaderElection {
            client,
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            retry: Duration::from_secs(2),
        }
    }

    /// How long a Lease that is not renewed holds (default 15 s), and how often it is read or
    /// renewed (default 2 s); `retry` is kept below a third of `lease_duration`.
    pub fn timing(mut self, lease_duration: Duration, retry: Duration) -> LeaderElection {
        self.lease_duration = lease_duration.max(Duration::from_secs(1));
        self.retry = retry
            .min(self.lease_duration / 3)
            .max(Duration::from_millis(100));
        self
    }

    /// Starts campaigning on the current tokio runtime.
    pub fn spawn(self) -> Leadership {
        let (leader_tx, leader) = watch::channel(false);
        let (release_tx, release_rx) = oneshot::channel();
        let task = tokio::spawn(self.run(leader_tx, release_rx));
        Leadership {
            leader,
            release: Some(release_tx),
            task,
        }
    }

    async fn run(
        self,
        leader: watch::Sender<bool>,
        mut release: oneshot::Receiver<oneshot::Sender<()>>,
    ) {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        // The last record seen of another holder, and when it was first seen (our clock).
        let mut observed: Option<(Option<String>, Instant)> = None;
        let mut renewed_at: Option<Instant> = None;
        loop {
            let outcome = self.try_acquire_or_renew(&api, &mut observed).await;
            let now = Instant::now();
            match outcome {
                Ok(true) => renewed_at = Some(now),
                Ok(false) => renewed_at = None,
                Err(e) => {
                    tracing::warn!("leader election {}/{}: {e}", self.namespace, self.name);
                }
            }
            // Lead only while the last renewal is recent enough that nobody can have taken
            // over yet.
            let leading = renewed_at
                .is_some_and(|at| now.duration_since(at) < self.lease_duration - self.retry);
            if !leading {
                renewed_at = None;
            }
            leader.send_if_modified(|current| {
                if *current != leading {
                    tracing::info!(
                        "{} {} the leader (Lease {}/{})",
                        self.identity,
                        if leading { "is now" } else { "is no longer" },
                        self.namespace,
                        self.name
                    );
                    *current = leading;
                    true
                } else {
                    false
                }
            });
            tokio::select! {
                () = tokio::time::sleep(self.retry) => {}
                done = &mut release => {
                    if *leader.borrow() {
                        leader.send_replace(false);
                        if let Err(e) = self.release(&api).await {
                            tracing::warn!("releasing Lease {}/{}: {e}", self.namespace, self.name);
                        }
                    }
                    if let Ok(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    /// One round: `Ok(true)` when this replica holds the Lease after it.
    async fn try_acquire_or_renew(
        &self,
        api: &Api<Lease>,
        observed: &mut Option<(Option<String>, Instant)>,
    ) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let seconds = i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.as_deref() != Some(self.identity.as_str()) {
            if let Some(holder) = &holder {
                // Expired when the record has not changed for its duration, on our clock.
                let record = lease.metadata.resource_version.clone();
                let first_seen = match observed {
                    Some((seen, at)) if *seen == record => *at,
                    _ => {
                        *observed = Some((record, Instant::now()));
                        Instant::now()
                    }
                };
                let duration = spec
                    .lease_duration_seconds
                    .and_then(|s| u64::try_from(s).ok())
                    .map_or(self.lease_duration, Duration::from_secs);
                if first_seen.elapsed() < duration {
                    tracing::debug!("Lease {}/{} held by {holder}", self.namespace, self.name);
                    return Ok(false);
                }
            }
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        match api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, api: &Api<Lease>) -> Result<(), kube::Error> {
        let Some(mut lease) = api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        api.replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}
