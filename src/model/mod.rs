//! The Kubernetes object model: every kind the crate reads — `networking.k8s.io/v1` Ingress and
//! IngressClass, `v1` Service and Secret, `discovery.k8s.io/v1` EndpointSlice.
//!
//! These types read objects exactly as `kubectl get -o yaml|json` prints them: camelCase field
//! names, unknown fields ignored, every optional field optional. They hold what the apiserver
//! would hold, valid or not; [`validate_ingress`](crate::validate_ingress) decides whether an object is acceptable. Nothing
//! here knows about HTTP requests or the compiled table.
//!
//! ```
//! use ingress_router::model::Ingress;
//!
//! let ingress: Ingress = serde_json::from_str(r#"{
//!   "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
//!   "metadata": {"name": "site", "namespace": "shop"},
//!   "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [
//!     {"path": "/", "pathType": "Prefix",
//!      "backend": {"service": {"name": "web", "port": {"number": 8080}}}}]}}]}
//! }"#).unwrap();
//! assert_eq!(ingress.metadata.namespace(), "shop");
//! assert_eq!(ingress.spec.rules[0].host.as_deref(), Some("shop.example.com"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod secret;
mod service;

pub use secret::{Secret, SecretRef, TLS_SECRET_TYPE};
pub use service::{
    ConfigMap, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, IntOrString, Service,
    ServicePortSpec, ServiceSpec, SERVICE_NAME_LABEL,
};

/// The namespace an object lives in when its metadata names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The legacy annotation that selects an Ingress's class (before `spec.ingressClassName`).
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The annotation that marks an IngressClass as the cluster default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The kinds of object this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// `networking.k8s.io/v1` Ingress (namespaced).
    Ingress,
    /// `networking.k8s.io/v1` IngressClass (cluster-scoped).
    IngressClass,
    /// `v1` Service (namespaced).
    Service,
    /// `discovery.k8s.io/v1` EndpointSlice (namespaced).
    EndpointSlice,
    /// `v1` Secret (namespaced); only `kubernetes.io/tls` ones are used.
    Secret,
}

impl ObjectKind {
    /// The kind as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Ingress => "Ingress",
            ObjectKind::IngressClass => "IngressClass",
            ObjectKind::Service => "Service",
            ObjectKind::EndpointSlice => "EndpointSlice",
            ObjectKind::Secret => "Secret",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which object a diagnostic or a route is about: kind, namespace and name.
///
/// Displays as `namespace/name` for namespaced kinds and `name` for an IngressClass, the way
/// `kubectl` names objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The object's kind.
    pub kind: ObjectKind,
    /// The namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl ObjectRef {
    /// A namespaced object of `kind`.
    pub fn namespaced(kind: ObjectKind, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            kind,
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        }
    }
}

impl Ingress {
    /// This Ingress as `Ingress namespace/name`.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::namespaced(
            ObjectKind::Ingress,
            self.metadata.namespace(),
            &self.metadata.name,
        )
    }
}

impl Service {
    /// This Service as `Service namespace/name`.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::namespaced(
            ObjectKind::Service,
            self.metadata.namespace(),
            &self.metadata.name,
        )
    }
}

impl EndpointSlice {
    /// This EndpointSlice as `EndpointSlice namespace/name`.
    pub fn object_ref(&self) -> ObjectRef {
        let meta = &self.metadata;
        ObjectRef::namespaced(ObjectKind::EndpointSlice, meta.namespace(), &meta.name)
    }

    /// The Service the slice belongs to (its `kubernetes.io/service-name` label), if labelled.
    pub fn service_name(&self) -> Option<&str> {
        self.metadata
            .labels
            .get(SERVICE_NAME_LABEL)
            .map(String::as_str)
    }
}

impl Secret {
    /// This Secret as `Secret namespace/name`.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::namespaced(
            ObjectKind::Secret,
            self.metadata.namespace(),
            &self.metadata.name,
        )
    }
}

impl IngressClass {
    /// This IngressClass as `IngressClass name`.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: ObjectKind::IngressClass,
            namespace: None,
            name: self.metadata.name.clone(),
        }
    }

    /// Whether the class carries `ingressclass.kubernetes.io/is-default-class: "true"`.
    pub fn is_default(&self) -> bool {
        self.metadata
            .annotations
            .get(DEFAULT_CLASS_ANNOTATION)
            .is_some_and(|v| v == "true")
    }
}

/// An Ingress: rules that map host and path to backends (`networking.k8s.io/v1`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingress {
    /// Name, namespace, creation time, annotations and labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the Ingress asks for.
    #[serde(default)]
    pub spec: IngressSpec,
}

/// An IngressClass: names the controller that serves the Ingresses of this class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressClass {
    /// Name, annotations (including the default-class marker) and labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The controller and its parameters.
    #[serde(default)]
    pub spec: IngressClassSpec,
}

/// The metadata fields this crate keeps from an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name, unique per namespace and kind.
    #[serde(default)]
    pub name: String,
    /// Namespace; `None` means [`DEFAULT_NAMESPACE`] (see [`ObjectMeta::namespace`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's UID, when the manifest carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The apiserver's resource version, when the manifest carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The generation of the spec, when the manifest carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When the object was created; orders Ingresses ("older wins").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Timestamp>,
    /// Annotations, e.g. [`INGRESS_CLASS_ANNOTATION`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// The namespace, [`DEFAULT_NAMESPACE`] when unset or empty.
    pub fn namespace(&self) -> &str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => DEFAULT_NAMESPACE,
        }
    }
}

/// The spec of an Ingress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// The IngressClass this Ingress belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    /// Where requests go that no rule path matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<IngressBackend>,
    /// TLS configuration (hosts and secret names); kept and validated, not used for routing.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub tls: Vec<IngressTls>,
    /// Host rules, in order.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub rules: Vec<IngressRule>,
}

/// One TLS entry of an Ingress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    /// Hosts the certificate covers.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub hosts: Vec<String>,
    /// The Secret holding the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// A host rule: requests for `host` (all hosts when `None`) are routed by `http`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    /// A DNS name or a `*.`-wildcard; `None` or empty means every host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The path rules; `None` sends the whole host to the Ingress's defaultBackend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpIngressRuleValue>,
}

impl IngressRule {
    /// The rule's host, `None` when absent or empty (a host-less rule).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref().filter(|h| !h.is_empty())
    }
}

/// The path rules of a host rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpIngressRuleValue {
    /// Path rules, in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub paths: Vec<HttpIngressPath>,
}

/// One path rule: requests whose path matches go to `backend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpIngressPath {
    /// The path; empty or absent only for `ImplementationSpecific`, where it means `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How `path` is matched: `Exact`, `Prefix` or `ImplementationSpecific`. Kept as written
    /// so that an unsupported value is a validation error with a field path, not a parse error;
    /// see [`HttpIngressPath::path_type`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_type: Option<String>,
    /// Where matching requests go.
    #[serde(default)]
    pub backend: IngressBackend,
}

impl HttpIngressPath {
    /// The path type, when it is set and one Kubernetes supports.
    pub fn path_type(&self) -> Option<PathType> {
        self.path_type.as_deref().and_then(|t| t.parse().ok())
    }
}

/// How a rule path is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathType {
    /// The request path equals the rule path, byte for byte.
    Exact,
    /// The rule path is a prefix of the request path, element by element on `/`.
    Prefix,
    /// Left to the controller: `Prefix` here unless the table is built with `Exact`.
    ImplementationSpecific,
}

impl PathType {
    /// The name as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PathType::Exact => "Exact",
            PathType::Prefix => "Prefix",
            PathType::ImplementationSpecific => "ImplementationSpecific",
        }
    }
}

impl fmt::Display for PathType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`PathType`] from a string Kubernetes does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported path type {0:?}: supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"")]
pub struct UnsupportedPathType(pub String);

impl FromStr for PathType {
    type Err = UnsupportedPathType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Exact" => Ok(PathType::Exact),
            "Prefix" => Ok(PathType::Prefix),
            "ImplementationSpecific" => Ok(PathType::ImplementationSpecific),
            other => Err(UnsupportedPathType(other.to_owned())),
        }
    }
}

/// Where traffic goes: a Service port or another resource (exactly one of the two).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressBackend {
    /// A Service in the Ingress's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<IngressServiceBackend>,
    /// Any other object in the Ingress's namespace, e.g. a storage bucket. Boxed: it is rare,
    /// and inline it would take 64 more bytes in every path of every Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Box<TypedLocalObjectReference>>,
}

/// A Service backend: name and port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressServiceBackend {
    /// The Service's name.
    #[serde(default)]
    pub name: String,
    /// The Service port, by number or by name.
    #[serde(default)]
    pub port: ServiceBackendPort,
}

/// A Service port: exactly one of `name` and `number`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBackendPort {
    /// The port's name in the Service (an IANA service name such as `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The port number; `0` counts as unset, as in Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
}

/// A reference to an object in the same namespace, by API group, kind and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypedLocalObjectReference {
    /// The API group; `None` means the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// The kind, e.g. `StorageBucket`.
    #[serde(default)]
    pub kind: String,
    /// The object's name.
    #[serde(default)]
    pub name: String,
}

/// The spec of an IngressClass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassSpec {
    /// The controller that serves this class, a domain-prefixed path (`example.com/ingress`).
    #[serde(default)]
    pub controller: String,
    /// Controller-specific settings for this class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<IngressClassParametersReference>,
}

/// Where a controller finds its settings for an IngressClass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassParametersReference {
    /// The API group of the referenced object; `None` means the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// The kind of the referenced object.
    #[serde(default)]
    pub kind: String,
    /// The name of the referenced object.
    #[serde(default)]
    pub name: String,
    /// `Cluster` (the default when unset) or `Namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The namespace of the referenced object; required when the scope is `Namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A point in time from `metadata.creationTimestamp` (RFC 3339), kept to the nanosecond.
///
/// Ordering is chronological, whatever offset the text used.
///
/// ```
/// use ingress_router::model::Timestamp;
///
/// let a: Timestamp = "2024-03-01T10:00:00Z".parse().unwrap();
/// let b: Timestamp = "2024-03-01T12:00:00+01:00".parse().unwrap();
/// assert!(a < b);
/// assert_eq!(b.to_string(), "2024-03-01T11:00:00Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// The error of parsing a [`Timestamp`] that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {0:?}")]
pub struct InvalidTimestamp(pub String);

impl Timestamp {
    /// Seconds since the Unix epoch, UTC.
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// The time from seconds since the Unix epoch.
    pub fn from_unix_seconds(secs: i64) -> Self {
        Timestamp { secs, nanos: 0 }
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day counted from 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl FromStr for Timestamp {
    type Err = InvalidTimestamp;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidTimestamp(text.to_owned());
        let s = text.as_bytes();
        if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
            return Err(bad());
        }
        if !matches!(s[10], b'T' | b't' | b' ') {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| digits(&s[r]).ok_or_else(bad);
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let month_days = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1..=12).contains(&month)
            || day < 1
            || day > month_days[(month - 1) as usize]
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(bad());
        }
        let mut rest = &s[19..];
        let mut nanos = 0u32;
        if let Some(frac) = rest.strip_prefix(b".") {
            let len = frac.iter().take_while(|b| b.is_ascii_digit()).count();
            if len == 0 {
                return Err(bad());
            }
            for (i, d) in frac[..len].iter().enumerate().take(9) {
                nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
            }
            rest = &frac[len..];
        }
        let offset = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let h = digits(&[*h1, *h2]).ok_or_else(bad)?;
                let m = digits(&[*m1, *m2]).ok_or_else(bad)?;
                if h > 23 || m > 59 {
                    return Err(bad());
                }
                let off = h * 3600 + m * 60;
                if *sign == b'-' {
                    -off
                } else {
                    off
                }
            }
            _ => return Err(bad()),
        };
        // A leap second (:60) is counted as the next second, as most clocks do.
        let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
            - offset;
        Ok(Timestamp { secs, nanos })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let tod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            tod / 3600,
            tod % 3600 / 60,
            tod % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Orders two objects by age, older first, as everywhere in this crate: earlier
/// `creationTimestamp` first, `tie` deciding equal timestamps; an object without a timestamp
/// is newer than every object with one, and such objects keep their input `index` order.
pub(crate) fn by_age(
    a: (Option<Timestamp>, usize),
    b: (Option<Timestamp>, usize),
    tie: impl FnOnce() -> std::cmp::Ordering,
) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Greater, Less};
    match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(tie).then(a.1.cmp(&b.1)),
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (None, None) => a.1.cmp(&b.1),
    }
}

// `kubectl` never prints `null` lists, but hand-written manifests do (`rules:` with nothing after).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_and_order_across_offsets() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-02-29T23:59:59Z", 1_709_251_199),
            ("2024-03-01T01:00:00+01:00", 1_709_251_200),
            ("1969-12-31T23:00:00-01:00", 0),
        ];
        for (text, secs) in cases {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.unix_seconds(), secs, "{text}");
        }
        let a: Timestamp = "2024-01-01T00:00:00.5Z".parse().unwrap();
        let b: Timestamp = "2024-01-01T00:00:00.25Z".parse().unwrap();
        assert!(b < a);
        assert_eq!(a.to_string(), "2024-01-01T00:00:00.5Z");
    }

    #[test]
    fn timestamps_reject_garbage() {
        for text in [
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0100",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert!(text.parse::<Timestamp>().is_err(), "{text}");
        }
    }

    #[test]
    fn display_round_trips() {
        for secs in [-86_401, 0, 951_782_400, 4_102_444_800] {
            let t = Timestamp::from_unix_seconds(secs);
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        }
    }

    #[test]
    fn unknown_fields_ignored_and_nulls_tolerated() {
        let ing: Ingress = serde_json::from_str(
            r#"{"metadata":{"name":"a","managedFields":[{}]},"status":{},
                "spec":{"rules":null,"tls":null,"somethingNew":1}}"#,
        )
        .unwrap();
        assert_eq!(ing.metadata.name, "a");
        assert_eq!(ing.metadata.namespace(), DEFAULT_NAMESPACE);
        assert!(ing.spec.rules.is_empty());
    }

    #[test]
    fn path_type_parses_only_supported_values() {
        assert_eq!("Prefix".parse::<PathType>(), Ok(PathType::Prefix));
        assert!("prefix".parse::<PathType>().is_err());
        assert!("Regex".parse::<PathType>().is_err());
    }
}
