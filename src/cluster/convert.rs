//! The apiserver's objects, as k8s-openapi reads them, in the crate's model.

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::networking::v1 as networking;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::{ObjectKind, ObjectRef, SecretRef};
use crate::reconcile::Object;

use super::status::Address;

/// One watched object in the crate's model, with what the watch keeps beside it.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) object: Object,
    /// For an Ingress: the addresses its `status.loadBalancer.ingress` holds.
    pub(super) addresses: Vec<Address>,
}

/// Re-reads `from` as `T`: the model types read the same JSON the apiserver serves, so the
/// two agree field for field, and what the model does not hold (managed fields, status,
/// annotations' history) is dropped here.
fn transcode<F: Serialize, T: DeserializeOwned>(from: &F) -> Result<T, String> {
    serde_json::to_value(from)
        .and_then(serde_json::from_value)
        .map_err(|e| e.to_string())
}

/// A watched kind: converts to the crate's model.
pub(super) trait Watched:
    kube::Resource<DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The crate's kind.
    const KIND: ObjectKind;

    /// The object in the crate's model.
    fn to_item(&self) -> Result<Item, String>;

    /// Which object this is (for a delete, whose body may be stale).
    fn to_ref(&self) -> ObjectRef {
        use kube::ResourceExt;
        ObjectRef {
            kind: Self::KIND,
            namespace: self.namespace(),
            name: self.name_any(),
        }
    }
}

fn plain<T>(object: T) -> Item
where
    Object: From<T>,
{
    Item {
        object: Object::from(object),
        addresses: Vec::new(),
    }
}

impl Watched for networking::Ingress {
    const KIND: ObjectKind = ObjectKind::Ingress;

    fn to_item(&self) -> Result<Item, String> {
        let mut spec_only = networking::Ingress {
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status: None,
        };
        spec_only.metadata.managed_fields = None;
        let ingress: crate::model::Ingress = transcode(&spec_only)?;
        let addresses = self
            .status
            .as_ref()
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
        Ok(Item {
            object: Object::Ingress(ingress),
            addresses,
        })
    }
}

impl Watched for networking::IngressClass {
    const KIND: ObjectKind = ObjectKind::IngressClass;

    fn to_item(&self) -> Result<Item, String> {
        let mut class = self.clone();
        class.metadata.managed_fields = None;
        Ok(plain(transcode::<_, crate::model::IngressClass>(&class)?))
    }
}

impl Watched for core::Service {
    const KIND: ObjectKind = ObjectKind::Service;

    fn to_item(&self) -> Result<Item, String> {
        let service = core::Service {
            metadata: lean(&self.metadata),
            spec: self.spec.clone(),
            status: None,
        };
        Ok(plain(transcode::<_, crate::model::Service>(&service)?))
    }
}

impl Watched for discovery::EndpointSlice {
    const KIND: ObjectKind = ObjectKind::EndpointSlice;

    fn to_item(&self) -> Result<Item, String> {
        let mut slice = self.clone();
        slice.metadata.managed_fields = None;
        slice.metadata.annotations = None;
        Ok(plain(transcode::<_, crate::model::EndpointSlice>(&slice)?))
    }
}

impl Watched for core::Secret {
    const KIND: ObjectKind = ObjectKind::Secret;

    fn to_item(&self) -> Result<Item, String> {
        let secret = core::Secret {
            metadata: lean(&self.metadata),
            data: self.data.clone(),
            type_: self.type_.clone(),
            ..core::Secret::default()
        };
        Ok(plain(transcode::<_, crate::model::Secret>(&secret)?))
    }
}

/// Name, namespace and labels: all the model reads of a Service's or Secret's metadata.
fn lean(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        labels: meta.labels.clone(),
        ..Default::default()
    }
}

/// The Secret an object ref names.
pub(super) fn secret_ref(object: &ObjectRef) -> SecretRef {
    SecretRef::new(object.namespace.as_deref().unwrap_or(""), &object.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ingress_reads_as_the_model_reads_it_and_keeps_its_addresses() {
        let ingress: networking::Ingress = serde_json::from_value(serde_json::json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "web", "namespace": "shop", "resourceVersion": "7",
                "annotations": {"kubernetes.io/ingress.class": "edge"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {
                "tls": [{"hosts": ["a.example.com"], "secretName": "a-tls"}],
                "rules": [{"host": "a.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "web", "port": {"number": 80}}}}
                ]}}]
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "lb.example.com"}]}}
        }))
        .unwrap();
        let item = ingress.to_item().unwrap();
        let Object::Ingress(model) = &item.object else {
            panic!("not an Ingress: {:?}", item.object)
        };
        assert_eq!(model.metadata.name, "web");
        assert_eq!(model.metadata.namespace(), "shop");
        assert_eq!(
            model
                .metadata
                .annotations
                .get("kubernetes.io/ingress.class"),
            Some(&"edge".to_owned())
        );
        assert_eq!(model.spec.rules.len(), 1);
        assert_eq!(model.spec.tls[0].secret_name.as_deref(), Some("a-tls"));
        assert_eq!(
            item.addresses,
            vec![
                Address::Ip("192.0.2.1".into()),
                Address::Hostname("lb.example.com".into())
            ]
        );
        assert_eq!(
            ingress.to_ref(),
            ObjectRef::namespaced(ObjectKind::Ingress, "shop", "web")
        );
    }

    #[test]
    fn a_secret_keeps_its_type_and_data_and_nothing_else() {
        let secret: core::Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a-tls", "namespace": "shop",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}
        }))
        .unwrap();
        let Object::Secret(model) = secret.to_item().unwrap().object else {
            panic!("not a Secret")
        };
        assert_eq!(model.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(model.data.len(), 2);
        assert!(model.metadata.annotations.is_empty());
    }
}
