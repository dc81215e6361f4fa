//! Secret (`v1`): only `kubernetes.io/tls` Secrets are used, for their certificate and key.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ObjectMeta;

/// The `type` of a Secret holding a TLS certificate and its key.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// A Secret named by an Ingress's `spec.tls[].secretName`, in the Ingress's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    /// The namespace (the Ingress's).
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
}

impl SecretRef {
    /// The Secret `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> SecretRef {
        SecretRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A `v1` Secret, as `kubectl get secret -o yaml` prints it. Only `kubernetes.io/tls` Secrets
/// are used, for their `tls.crt` and `tls.key`.
///
/// `Debug` shows the keys of `data` and `stringData`, never their values.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Name, namespace, …
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The Secret's type, e.g. [`TLS_SECRET_TYPE`]; `Opaque` when unset.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Base64-encoded values by key, as the apiserver stores them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Plain-text values by key (write-only in the API, but common in hand-written
    /// manifests); they override `data` with the same key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
}

impl Secret {
    /// The Secret's `namespace/name`.
    pub fn secret_ref(&self) -> SecretRef {
        SecretRef::new(self.metadata.namespace(), &self.metadata.name)
    }

    /// Whether the type is [`TLS_SECRET_TYPE`].
    pub fn is_tls(&self) -> bool {
        self.type_.as_deref() == Some(TLS_SECRET_TYPE)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("metadata", &self.metadata)
            .field("type_", &self.type_)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .field("string_data", &self.string_data.keys().collect::<Vec<_>>())
            .finish()
    }
}
