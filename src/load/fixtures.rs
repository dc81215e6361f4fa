//! Manifests shared by the loader's tests.

pub(super) const INGRESS_JSON: &str = r#"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
    "metadata":{"name":"a"},"spec":{"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}}"#;

pub(super) const GOOD_JSON: &str = r#"{"kind":"Ingress","metadata":{"name":"good"},"spec":{"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}}"#;

#[cfg(feature = "yaml")]
pub(super) const GOOD_YAML: &str =
    "kind: Ingress\nmetadata: {name: good}\nspec: {defaultBackend: {service: {name: web, port: {number: 80}}}}\n";
