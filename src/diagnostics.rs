//! What building found: quarantined objects, conflicts and warnings, each naming the object and
//! the field it is about.
//!
//! These types sit below every compiling module (routes, TLS names, dispatch, reconciliation):
//! each reports in them, and a [`Snapshot`](crate::Snapshot) gathers them.

use std::fmt;

use crate::model::{ObjectRef, PathType, SecretRef};
use crate::validate::ValidationError;

/// An Ingress the table left out, with every reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The Ingress.
    pub object: ObjectRef,
    /// What the apiserver would say about it.
    pub errors: Vec<ValidationError>,
}

/// One path rule of one Ingress, by field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// The Ingress.
    pub ingress: ObjectRef,
    /// The rule's field path, `spec.rules[i].http.paths[j]`.
    pub field: String,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.ingress, self.field)
    }
}

/// Several rules for the same host, path and path type: one wins, the others never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The host as written, `None` for host-less rules.
    pub host: Option<String>,
    /// The path as written.
    pub path: String,
    /// How the path is matched (after applying `TableOptions::implementation_specific`).
    pub path_type: PathType,
    /// The rule that routes.
    pub winner: RuleRef,
    /// The rules that lost, oldest first.
    pub losers: Vec<RuleRef>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let losers: Vec<String> = self.losers.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{} {:?} on host {:?}: {} wins over {}",
            self.path_type,
            self.path,
            self.host.as_deref().unwrap_or("*"),
            self.winner,
            losers.join(", ")
        )
    }
}

/// Something about an object that routes, but not as its author probably meant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {message}")]
pub struct Warning {
    /// The object.
    pub object: ObjectRef,
    /// The field path the warning is about.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// What building a table found: quarantined Ingresses, conflicts, warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// Invalid Ingresses, which contribute no routes.
    pub quarantined: Vec<Quarantined>,
    /// Identical rules from several places, and which one won.
    pub conflicts: Vec<Conflict>,
    /// Rules that can never match and other surprises.
    pub warnings: Vec<Warning>,
    /// TLS hosts named with different certificates, and which one is served.
    pub tls_conflicts: Vec<TlsConflict>,
}

impl Diagnostics {
    /// Whether nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.quarantined.is_empty()
            && self.conflicts.is_empty()
            && self.warnings.is_empty()
            && self.tls_conflicts.is_empty()
    }
}

/// One entry's claim on a name, for [`TlsConflict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSource {
    /// The Ingress.
    pub ingress: ObjectRef,
    /// The field path, `spec.tls[i].hosts[j]`.
    pub field: String,
    /// The Secret it names; `None` for the default certificate.
    pub secret: Option<SecretRef>,
}

impl fmt::Display for TlsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (", self.ingress, self.field)?;
        match &self.secret {
            Some(secret) => write!(f, "secret {secret})"),
            None => f.write_str("default certificate)"),
        }
    }
}

/// Several TLS entries name one host with different certificates: the oldest wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConflict {
    /// The host as written (`*.example.com` for a wildcard).
    pub host: String,
    /// The entry whose certificate is served.
    pub winner: TlsSource,
    /// The entries that lost, oldest first.
    pub losers: Vec<TlsSource>,
}

impl fmt::Display for TlsConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let losers: Vec<String> = self.losers.iter().map(ToString::to_string).collect();
        write!(
            f,
            "TLS host {:?}: {} wins over {}",
            self.host,
            self.winner,
            losers.join(", ")
        )
    }
}
