//! What building found: quarantined objects, conflicts and warnings.
//!
//! See [Diagnostics] for the model.

use std::fmt;

use crate::model::{ObjectRef, PathType, SecretRef};

mod quote;

pub(crate) use quote::go_quote;

/// An Ingress the table left out, with every reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quarantined {
    /// The Ingress.
    pub object: ObjectRef,
    /// What the apiserver would say about it.
    pub errors: Vec<ValidationError>,
}

/// One path rule of one Ingress, by field path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
pub struct Warning {
    /// The object.
    pub object: ObjectRef,
    /// The field path the warning is about.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// What building found: quarantined objects, conflicts and warnings, each naming the object and
/// the field it is about.
///
/// These types sit below every compiling module (routes, TLS names, dispatch, reconciliation):
/// each reports in them, and a [`Snapshot`](crate::Snapshot) gathers them.
///
/// What building a table found: quarantined Ingresses, conflicts, warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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

/// What is wrong with a field, in the apiserver's terms (its `field.ErrorType`s).
///
/// Displays the way `kubectl` shows the apiserver's field errors, e.g.
/// `Invalid value: "/a//b": must not contain '//'`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A required field is missing or empty. Displays `Required value` or
    /// `Required value: <detail>`.
    Required {
        /// Why the value is required; may be empty.
        detail: String,
    },
    /// The value is malformed. Displays `Invalid value: <value>: <detail>`.
    Invalid {
        /// The offending value as the apiserver prints it: a string in double quotes with Go's
        /// escapes (`"Foo.com"`), a number bare (`65536`), `null` for an absent list. Build it
        /// with [`Violation::invalid`] or [`Violation::invalid_number`].
        value: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The value is not one of a fixed set. Displays
    /// `Unsupported value: "<value>": supported values: "A", "B"`.
    NotSupported {
        /// The value given (unquoted).
        value: String,
        /// The values that are accepted.
        supported: &'static [&'static str],
    },
    /// The field may not be set in this situation. Displays `Forbidden: <detail>`.
    Forbidden {
        /// Why it is forbidden.
        detail: String,
    },
    /// The value is longer than allowed. Displays `Too long: may not be more than <max> bytes`.
    TooLong {
        /// The maximum length in bytes.
        max: usize,
    },
}

impl Violation {
    /// An [`Violation::Invalid`] for a string value, quoted the way the apiserver prints it.
    pub fn invalid(value: &str, detail: impl Into<String>) -> Self {
        Violation::Invalid {
            value: go_quote(value),
            detail: detail.into(),
        }
    }

    /// An [`Violation::Invalid`] for a number, printed bare the way the apiserver prints it.
    pub fn invalid_number(value: i64, detail: impl Into<String>) -> Self {
        Violation::Invalid {
            value: value.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn required(detail: &str) -> Self {
        Violation::Required {
            detail: detail.to_owned(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, detail) = match self {
            Violation::Required { detail } => ("Required value".to_owned(), detail.as_str()),
            Violation::Invalid { value, detail } => {
                (format!("Invalid value: {value}"), detail.as_str())
            }
            Violation::NotSupported { value, supported } => {
                write!(f, "Unsupported value: {}", go_quote(value))?;
                for (i, s) in supported.iter().enumerate() {
                    let sep = if i == 0 { ": supported values: " } else { ", " };
                    write!(f, "{sep}{}", go_quote(s))?;
                }
                return Ok(());
            }
            Violation::Forbidden { detail } => ("Forbidden".to_owned(), detail.as_str()),
            Violation::TooLong { max } => {
                let unit = if *max == 1 { "byte" } else { "bytes" };
                return write!(f, "Too long: may not be more than {max} {unit}");
            }
        };
        f.write_str(&head)?;
        if !detail.is_empty() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

/// One validation error: which object, which field, what is wrong.
///
/// Displays as `<object>: <field>: <violation>`, e.g.
/// `default/site: spec.rules[0].http.paths[2].path: Invalid value: "/a//b": must not contain '//'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {violation}")]
pub struct ValidationError {
    /// The object the error is about.
    pub object: ObjectRef,
    /// The field, as the apiserver names it (`spec.rules[0].host`).
    pub field: String,
    /// What is wrong with the field.
    pub violation: Violation,
}

impl ValidationError {
    /// What is wrong, without the object and field, e.g.
    /// `Invalid value: "/a//b": must not contain '//'`.
    pub fn message(&self) -> String {
        self.violation.to_string()
    }
}
