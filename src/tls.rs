//! TLS termination: which certificate each server name gets.
//!
//! See [TlsTable] for the model.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::hash_table::HashTable;

use crate::diagnostics::{TlsConflict, TlsSource, Warning};
use crate::hosts::HostMap;
use crate::model::{Ingress, ObjectRef, SecretRef};

#[cfg(feature = "rustls")]
pub mod resolver;

/// The certificate a server name gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Certificate<'a> {
    /// The one in this Secret.
    Secret(&'a SecretRef),
    /// The controller's default certificate.
    Default,
}

impl Certificate<'_> {
    /// The Secret, or `None` for the default certificate.
    pub fn secret(&self) -> Option<&SecretRef> {
        match self {
            Certificate::Secret(secret) => Some(secret),
            Certificate::Default => None,
        }
    }
}

impl fmt::Display for Certificate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Certificate::Secret(secret) => write!(f, "secret {secret}"),
            Certificate::Default => f.write_str("the default certificate"),
        }
    }
}

/// A name with TLS configured: which entry configured it and which certificate it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsHost<'a> {
    /// The name as the entry wrote it: `shop.example.com` or `*.example.com`.
    pub name: &'a str,
    /// The certificate served for it.
    pub certificate: Certificate<'a>,
    /// The Ingress whose entry won.
    pub ingress: &'a ObjectRef,
    /// The entry's field path: `spec.tls[i].hosts[j]`, or `spec.tls[i]` for a host implied by
    /// an entry without hosts.
    pub field: &'a str,
}

type Id = u32;

#[derive(Debug, Clone)]
struct TlsEntry {
    name: Box<str>,
    secret: Option<Id>,
    ingress: Id,
    field: Box<str>,
}

/// TLS termination: which certificate each server name gets, from the served Ingresses'
/// `spec.tls`.
///
/// Every [`Snapshot`](crate::Snapshot) carries a [`TlsTable`] compiled from the same
/// Ingresses as its routes, so the certificates a controller serves are always those of the
/// Ingresses it routes, and both change in one swap. The table maps a server name (the SNI of a
/// TLS handshake, or a request's host) to a [`Certificate`]: the `kubernetes.io/tls` Secret an
/// Ingress names, or the controller's default certificate.
///
/// # Rules
///
/// - **Names** are matched as rule hosts are: an exact name first, then a `*.suffix` wildcard
///   covering exactly one label (`*.example.com` covers `a.example.com`, neither `example.com`
///   nor `a.b.example.com`). Matching ignores ASCII case and one trailing dot.
/// - **A host in several entries** (of one Ingress or several): the older Ingress wins, then the
///   earlier entry; when the losers name a different certificate, a [`TlsConflict`] is reported
///   in [`TlsTable::conflicts`] (and [`Diagnostics::tls_conflicts`](crate::Diagnostics::tls_conflicts)
///   of the snapshot).
/// - **An entry without `secretName`** gives its hosts the controller's default certificate
///   (reported as a warning), as ingress-nginx does.
/// - **An entry without `hosts`** gives the controller's default certificate to the Ingress's
///   rule hosts that no entry of any Ingress names; its `secretName`, if any, is not used
///   (reported as a warning). Named hosts always beat these implied ones.
/// - **Any other name** — an unknown SNI, no SNI at all, a host without TLS — gets the default
///   certificate; [`TlsTable::lookup`] says `None` for it, meaning "no TLS configured".
///
/// Which bytes the default certificate holds, and whether there is one, is the caller's setting;
/// with the `rustls` feature, `Certificates` (feature `rustls`) turns this table and the Secrets into a
/// `rustls::server::ResolvesServerCert`.
///
/// # Requests over TLS
///
/// A server that terminates TLS tells the routing layer about the connection by putting a
/// [`TlsInfo`] (the handshake's SNI) into each request's extensions; a request without one
/// is taken to have arrived over plain HTTP. The layer uses it for `ssl-redirect` and for the
/// SNI/Host check ([`TlsTable::same_certificate`]).
///
/// The TLS configuration of a [`RouteTable`](crate::RouteTable): server name → certificate;
/// see the [module docs](crate::TlsTable) for the rules.
///
/// Lookups allocate nothing.
#[derive(Debug, Clone, Default)]
pub struct TlsTable {
    /// The Ingresses with TLS entries, oldest first.
    ingresses: Vec<ObjectRef>,
    secrets: Vec<SecretRef>,
    entries: Vec<TlsEntry>,
    /// Entries by name.
    names: HostMap<Id>,
    /// Indices into `secrets`, hashed by the Secret they stand for.
    secret_ids: SecretIds,
    conflicts: Vec<TlsConflict>,
    warnings: Vec<Warning>,
}

impl TlsTable {
    /// Compiles the `spec.tls` of valid Ingresses given oldest first, with their references.
    pub(crate) fn build(ingresses: &[(&Ingress, &ObjectRef)]) -> TlsTable {
        let mut builder = Builder::default();
        // Only the Ingresses with TLS entries are kept, ranked oldest first among themselves.
        let with_tls: Vec<&Ingress> = ingresses
            .iter()
            .filter(|(ingress, _)| !ingress.spec.tls.is_empty())
            .map(|(ingress, object)| {
                builder.table.ingresses.push((*object).clone());
                *ingress
            })
            .collect();
        for (rank, ingress) in with_tls.iter().enumerate() {
            builder.explicit(rank as Id, ingress);
        }
        for (rank, ingress) in with_tls.iter().enumerate() {
            builder.implied(rank as Id, ingress);
        }
        builder.finish()
    }

    /// Whether no name has TLS configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many names (exact and wildcard) have TLS configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The TLS configuration for `name` (an SNI or a host), or `None` when no entry covers it:
    /// exact names first, then single-label wildcards. ASCII case and one trailing dot are
    /// ignored; names longer than 253 bytes match nothing.
    pub fn lookup(&self, name: &str) -> Option<TlsHost<'_>> {
        if self.entries.is_empty() {
            return None;
        }
        let id = *self.names.get_any_case(name)?;
        Some(self.host(&self.entries[id as usize]))
    }

    /// The index of the entry for `name`, as [`TlsTable::lookup`] finds it.
    #[cfg(feature = "rustls")]
    pub(crate) fn entry_id(&self, name: &str) -> Option<usize> {
        self.names.get_any_case(name).map(|&id| id as usize)
    }

    /// Names claimed with different certificates, and which entry is served.
    pub fn conflicts(&self) -> &[TlsConflict] {
        &self.conflicts
    }

    /// Entries that configure less than they seem to (no `secretName`, no `hosts`).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The certificate for a handshake with `server_name` (`None`: the client sent no SNI):
    /// the configured one, otherwise the default certificate.
    pub fn certificate_for(&self, server_name: Option<&str>) -> Certificate<'_> {
        server_name
            .and_then(|name| self.lookup(name))
            .map_or(Certificate::Default, |host| host.certificate)
    }

    /// Whether a connection whose handshake saw `server_name` may carry requests for `host`:
    /// both get the same certificate, as if the client had sent `host` as its SNI. This is the
    /// SNI/Host check behind `421 Misdirected Request` (RFC 9110 §15.5.20); it keeps a client
    /// from reaching one host through a connection set up for another.
    ///
    /// `host` is `None` for requests without a host name (IP literals), which get the default
    /// certificate.
    ///
    /// "Covers" is judged by the Ingresses' TLS configuration, not by the certificate's subject
    /// alternative names: a host that the certificate happens to cover but that no `spec.tls`
    /// entry gives to it does not pass. This keeps the check exact without the certificates
    /// at hand, and the Ingresses the only authority on which host is served with which
    /// certificate.
    pub fn same_certificate(&self, server_name: Option<&str>, host: Option<&str>) -> bool {
        self.certificate_for(server_name) == self.certificate_for(host)
    }

    /// Every name with TLS configured, exact and wildcard, in no particular order.
    pub fn hosts(&self) -> impl Iterator<Item = TlsHost<'_>> + '_ {
        self.entries.iter().map(|entry| self.host(entry))
    }

    /// Every name with TLS configured, with the index in [`TlsTable::secrets`] of its Secret.
    #[cfg(feature = "rustls")]
    pub(crate) fn hosts_with_secret_ids(
        &self,
    ) -> impl Iterator<Item = (TlsHost<'_>, Option<usize>)> {
        self.entries
            .iter()
            .map(|entry| (self.host(entry), entry.secret.map(|id| id as usize)))
    }

    /// The index of `secret` in [`TlsTable::secrets`], if some name gets its certificate from it.
    #[cfg(feature = "rustls")]
    pub(crate) fn secret_index(&self, secret: &SecretRef) -> Option<usize> {
        self.secret_ids
            .get(&self.secrets, secret)
            .map(|id| id as usize)
    }

    /// Every Secret some name gets its certificate from, each once.
    pub fn secrets(&self) -> &[SecretRef] {
        &self.secrets
    }

    /// Whether an Ingress with TLS entries contributed to the table.
    pub(crate) fn involves(&self, ingress: &ObjectRef) -> bool {
        self.ingresses.contains(ingress)
    }

    fn host<'a>(&'a self, entry: &'a TlsEntry) -> TlsHost<'a> {
        TlsHost {
            name: &entry.name,
            certificate: match entry.secret {
                Some(id) => Certificate::Secret(&self.secrets[id as usize]),
                None => Certificate::Default,
            },
            ingress: &self.ingresses[entry.ingress as usize],
            field: &entry.field,
        }
    }
}

/// The index of each Secret in a table's list: four bytes an entry, the Secrets themselves
/// kept once, in the list.
#[derive(Debug, Clone, Default)]
struct SecretIds {
    hasher: RandomState,
    ids: HashTable<Id>,
}

impl SecretIds {
    fn get(&self, secrets: &[SecretRef], secret: &SecretRef) -> Option<Id> {
        let hash = self.hasher.hash_one(secret);
        self.ids
            .find(hash, |&id| secrets[id as usize] == *secret)
            .copied()
    }

    /// Adds `id`, the index `secret` is about to have in `secrets`.
    fn insert(&mut self, secrets: &[SecretRef], secret: &SecretRef, id: Id) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(secret);
        self.ids.insert_unique(hash, id, |&other| {
            hasher.hash_one(secrets.get(other as usize).unwrap_or(secret))
        });
    }
}

#[derive(Default)]
struct Builder {
    table: TlsTable,
    /// Losing claims per entry, for conflicts.
    losers: BTreeMap<Id, Vec<TlsSource>>,
}

impl Builder {
    fn explicit(&mut self, rank: Id, ingress: &Ingress) {
        let namespace = ingress.metadata.namespace();
        for (i, tls) in ingress.spec.tls.iter().enumerate() {
            let secret = tls.secret_name.as_deref().filter(|s| !s.is_empty());
            if tls.hosts.is_empty() {
                if secret.is_some() {
                    self.warn(
                        rank,
                        format!("spec.tls[{i}].hosts"),
                        "no hosts: the secret is not used; the Ingress's rule hosts get the \
                         controller's default certificate"
                            .into(),
                    );
                }
                continue;
            }
            if secret.is_none() {
                self.warn(
                    rank,
                    format!("spec.tls[{i}].secretName"),
                    "no secretName: these hosts get the controller's default certificate".into(),
                );
            }
            let secret = secret.map(|name| self.secret(SecretRef::new(namespace, name)));
            for (j, host) in tls.hosts.iter().enumerate() {
                let field = format!("spec.tls[{i}].hosts[{j}]");
                self.claim(host, secret, rank, field, true);
            }
        }
    }

    fn implied(&mut self, rank: Id, ingress: &Ingress) {
        for (i, tls) in ingress.spec.tls.iter().enumerate() {
            if !tls.hosts.is_empty() {
                continue;
            }
            for rule in &ingress.spec.rules {
                if let Some(host) = rule.host() {
                    self.claim(host, None, rank, format!("spec.tls[{i}]"), false);
                }
            }
        }
    }

    fn secret(&mut self, secret: SecretRef) -> Id {
        let table = &mut self.table;
        if let Some(id) = table.secret_ids.get(&table.secrets, &secret) {
            return id;
        }
        let id = table.secrets.len() as Id;
        table.secret_ids.insert(&table.secrets, &secret, id);
        table.secrets.push(secret);
        id
    }

    /// Gives `host` to this entry unless an earlier one has it; a named claim that loses to
    /// a different certificate is a conflict.
    fn claim(&mut self, host: &str, secret: Option<Id>, rank: Id, field: String, named: bool) {
        let name = host.to_ascii_lowercase();
        let next = self.table.entries.len() as Id;
        match self.table.names.get_written(&name).copied() {
            None => {
                self.table.names.insert(&name, next);
                self.table.entries.push(TlsEntry {
                    name: name.into(),
                    secret,
                    ingress: rank,
                    field: field.into(),
                });
            }
            Some(winner) => {
                if named && self.table.entries[winner as usize].secret != secret {
                    let source = TlsSource {
                        ingress: self.table.ingresses[rank as usize].clone(),
                        field,
                        secret: secret.map(|id| self.table.secrets[id as usize].clone()),
                    };
                    self.losers.entry(winner).or_default().push(source);
                }
            }
        }
    }

    fn warn(&mut self, rank: Id, field: String, message: String) {
        self.table.warnings.push(Warning {
            object: self.table.ingresses[rank as usize].clone(),
            field,
            message,
        });
    }

    fn finish(mut self) -> TlsTable {
        for (winner, losers) in std::mem::take(&mut self.losers) {
            let entry = &self.table.entries[winner as usize];
            self.table.conflicts.push(TlsConflict {
                host: entry.name.to_string(),
                winner: TlsSource {
                    ingress: self.table.ingresses[entry.ingress as usize].clone(),
                    field: entry.field.to_string(),
                    secret: entry
                        .secret
                        .map(|id| self.table.secrets[id as usize].clone()),
                },
                losers,
            });
        }
        self.table
    }
}

/// How a request reached the server, when it came over TLS: put into each request's extensions
/// by the server that terminated TLS (see the [module docs](crate::TlsTable)).
///
/// Cloning it is cheap; create one per connection and clone it into every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    server_name: Option<Arc<str>>,
}

impl TlsInfo {
    /// A TLS connection whose client sent `server_name` as its SNI (`None`: no SNI).
    pub fn new(server_name: Option<&str>) -> TlsInfo {
        TlsInfo {
            server_name: server_name.map(Into::into),
        }
    }

    /// The SNI the client sent, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::*;
    use crate::{Manifests, Snapshot, TableOptions};

    fn table(yaml: &str) -> Snapshot {
        let manifests = Manifests::parse(yaml);
        assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
        Snapshot::build(&manifests.ingresses, TableOptions::default())
    }

    fn secret(table: &TlsTable, name: &str) -> Option<String> {
        table
            .certificate_for(Some(name))
            .secret()
            .map(ToString::to_string)
    }

    const TWO: &str = r#"
kind: Ingress
metadata: {name: old, namespace: a, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  tls:
  - {hosts: [shop.example.com, "*.example.com"], secretName: shop-tls}
  - {hosts: [plain.example.com]}
  rules:
  - host: shop.example.com
---
kind: Ingress
metadata: {name: new, namespace: b, creationTimestamp: "2025-01-01T00:00:00Z"}
spec:
  tls:
  - {hosts: [shop.example.com, blog.example.com], secretName: other-tls}
  - {hosts: ["*.example.com"], secretName: shop-tls}
  - secretName: unused-tls
  rules:
  - host: blog.example.com
  - host: implied.example.org
  - host: "*.wild.example.org"
"#;

    #[test]
    fn exact_names_beat_wildcards_and_wildcards_cover_one_label() {
        let routes = table(TWO);
        let tls = routes.tls();
        assert_eq!(secret(tls, "shop.example.com").unwrap(), "a/shop-tls");
        assert_eq!(secret(tls, "blog.example.com").unwrap(), "b/other-tls");
        assert_eq!(secret(tls, "x.example.com").unwrap(), "a/shop-tls");
        assert_eq!(secret(tls, "X.Example.COM.").unwrap(), "a/shop-tls");
        assert_eq!(tls.lookup("x.example.com").unwrap().name, "*.example.com");
        assert!(tls.lookup("example.com").is_none());
        assert!(tls.lookup("a.b.example.com").is_none());
        assert!(tls.lookup("").is_none());
        assert!(tls.lookup(".").is_none());
        assert!(tls.lookup(&"a".repeat(300)).is_none());
        assert_eq!(tls.certificate_for(None), Certificate::Default);
        assert_eq!(
            tls.certificate_for(Some("unknown.org")),
            Certificate::Default
        );
    }

    #[test]
    fn the_older_ingress_wins_and_different_certificates_conflict() {
        let routes = table(TWO);
        let conflicts = &routes.diagnostics().tls_conflicts;
        assert_eq!(conflicts.len(), 2, "{conflicts:?}");
        let conflict = &conflicts[0];
        assert_eq!(conflict.host, "shop.example.com");
        assert_eq!(conflict.winner.ingress.to_string(), "a/old");
        assert_eq!(conflict.winner.field, "spec.tls[0].hosts[0]");
        assert_eq!(conflict.losers.len(), 1);
        assert_eq!(conflict.losers[0].field, "spec.tls[0].hosts[0]");
        assert_eq!(
            conflict.losers[0].secret.as_ref().unwrap().to_string(),
            "b/other-tls"
        );
        assert!(conflict.to_string().contains("a/old"));
        // The same Secret name in another namespace is another Secret.
        assert_eq!(conflicts[1].host, "*.example.com");
        assert_eq!(conflicts[1].losers[0].field, "spec.tls[1].hosts[0]");
    }

    #[test]
    fn same_secret_in_the_same_namespace_is_no_conflict() {
        let routes = table(
            r#"
kind: Ingress
metadata: {name: one, namespace: a}
spec:
  tls: [{hosts: [x.example.com], secretName: s}]
  rules: [{host: x.example.com}]
---
kind: Ingress
metadata: {name: two, namespace: a}
spec:
  tls: [{hosts: [x.example.com], secretName: s}]
  rules: [{host: x.example.com}]
"#,
        );
        assert!(routes.diagnostics().tls_conflicts.is_empty());
        assert_eq!(routes.tls().len(), 1);
        assert_eq!(
            routes.tls().lookup("x.example.com").unwrap().ingress.name,
            "one"
        );
    }

    #[test]
    fn entries_without_secret_or_hosts_get_the_default_certificate() {
        let routes = table(TWO);
        let tls = routes.tls();
        let plain = tls.lookup("plain.example.com").unwrap();
        assert_eq!(plain.certificate, Certificate::Default);
        assert_eq!(plain.field, "spec.tls[1].hosts[0]");
        // Implied by `new`'s host-less entry: its rule hosts that no entry names.
        let implied = tls.lookup("implied.example.org").unwrap();
        assert_eq!(implied.certificate, Certificate::Default);
        assert_eq!(implied.field, "spec.tls[2]");
        assert_eq!(
            tls.lookup("a.wild.example.org").unwrap().certificate,
            Certificate::Default
        );
        // A named host beats an implied one, whatever the age.
        assert_eq!(secret(tls, "blog.example.com").unwrap(), "b/other-tls");
        let warnings: Vec<String> = routes
            .diagnostics()
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(warnings
            .iter()
            .any(|w| w.contains("a/old: spec.tls[1].secretName")));
        assert!(warnings
            .iter()
            .any(|w| w.contains("b/new: spec.tls[2].hosts: no hosts")));
        assert!(!tls.secrets().iter().any(|s| s.name == "unused-tls"));
    }

    #[test]
    fn same_certificate_compares_what_sni_and_host_would_get() {
        let routes = table(TWO);
        let tls = routes.tls();
        assert!(tls.same_certificate(Some("shop.example.com"), Some("shop.example.com")));
        // One wildcard certificate covers both names: HTTP/2 connection reuse is fine.
        assert!(tls.same_certificate(Some("a.example.com"), Some("b.example.com")));
        assert!(tls.same_certificate(Some("a.example.com"), Some("shop.example.com")));
        assert!(!tls.same_certificate(Some("shop.example.com"), Some("blog.example.com")));
        assert!(!tls.same_certificate(None, Some("shop.example.com")));
        assert!(tls.same_certificate(None, Some("unknown.org")));
        assert!(tls.same_certificate(Some("plain.example.com"), None));
    }

    #[test]
    fn invalid_ingresses_configure_no_tls() {
        let routes = table(
            r#"
kind: Ingress
metadata: {name: bad}
spec:
  tls: [{hosts: [x.example.com], secretName: Not_Valid}]
  rules: [{host: x.example.com}]
"#,
        );
        assert!(routes.tls().is_empty());
        assert_eq!(routes.diagnostics().quarantined.len(), 1);
    }

    #[test]
    fn secret_debug_hides_values() {
        let manifests = Manifests::parse(
            r#"
kind: Secret
type: kubernetes.io/tls
metadata: {name: s, namespace: n}
data: {tls.crt: Q0VSVA==, tls.key: S0VZ}
"#,
        );
        let secret = &manifests.secrets[0];
        assert!(secret.is_tls());
        assert_eq!(secret.secret_ref().to_string(), "n/s");
        let debug = format!("{secret:?}");
        assert!(
            debug.contains("tls.key") && !debug.contains("S0VZ"),
            "{debug}"
        );
    }
}
