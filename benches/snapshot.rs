//! From "one object changed" to "requests see it", in a cluster of 10 000 generated Ingresses
//! with a Service and an EndpointSlice per backend and a TLS Secret per `spec.tls` entry.
//!
//! `cargo bench --all-features --bench snapshot` — a `Reconciler` event for an EndpointSlice
//! change (new ready addresses), a Service change, a Secret rotation (a new certificate for the
//! same names) and, to compare, an Ingress edit. Each is measured up to the swap of the new
//! snapshots, after which every new request uses them; none of the first three compiles routes.

#[allow(dead_code)]
#[path = "support/corpus.rs"]
mod corpus;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ingress_router::model::{
    Endpoint, EndpointPort, EndpointSlice, Ingress, Secret, Service, ServicePortSpec,
    SERVICE_NAME_LABEL, TLS_SECRET_TYPE,
};
use ingress_router::{
    Backend, Event, Manifests, Object, Reconciler, ServiceBackend, ServicePort, TableOptions,
};

const SIZE: usize = 10_000;

/// A Service per backend name, with every port the Ingresses name, and one slice of two
/// endpoints for it.
fn services(ingresses: &[Ingress]) -> (Vec<Service>, Vec<EndpointSlice>) {
    let mut ports: BTreeMap<(String, String), Vec<ServicePort>> = BTreeMap::new();
    for ingress in ingresses {
        let namespace = ingress.metadata.namespace();
        let backends = ingress
            .spec
            .rules
            .iter()
            .flat_map(|r| r.http.iter().flat_map(|h| &h.paths))
            .map(|p| &p.backend)
            .chain(&ingress.spec.default_backend);
        for backend in backends {
            if let Some(Backend::Service(ServiceBackend {
                namespace,
                name,
                port,
            })) = Backend::from_ingress_backend(namespace, backend)
            {
                let list = ports.entry((namespace, name)).or_default();
                if !list.contains(&port) {
                    list.push(port);
                }
            }
        }
    }
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for (i, ((namespace, name), ports)) in ports.into_iter().enumerate() {
        let mut service = Service::default();
        service.metadata.namespace = Some(namespace.clone());
        service.metadata.name = name.clone();
        let mut slice = EndpointSlice::default();
        slice.metadata.namespace = Some(namespace);
        slice.metadata.name = format!("{name}-1");
        slice
            .metadata
            .labels
            .insert(SERVICE_NAME_LABEL.to_owned(), name);
        slice.address_type = "IPv4".to_owned();
        for n in 0..2 {
            slice.endpoints.push(Endpoint {
                addresses: vec![format!("10.{}.{}.{n}", i / 250, i % 250)],
                ..Endpoint::default()
            });
        }
        for (j, port) in ports.into_iter().enumerate() {
            let (number, port_name) = match port {
                ServicePort::Number(n) => (i32::from(n), format!("p{n}")),
                ServicePort::Name(name) => (8000 + j as i32, name),
            };
            service.spec.ports.push(ServicePortSpec {
                name: Some(port_name.clone()),
                port: number,
                ..ServicePortSpec::default()
            });
            slice.ports.push(EndpointPort {
                name: Some(port_name),
                port: Some(9000 + j as i32),
                ..EndpointPort::default()
            });
        }
        services.push(service);
        slices.push(slice);
    }
    (services, slices)
}

/// A TLS Secret for every `spec.tls` entry, its certificate covering the entry's hosts.
fn secrets(ingresses: &[Ingress]) -> Vec<Secret> {
    let mut secrets = Vec::new();
    for ingress in ingresses {
        for tls in &ingress.spec.tls {
            let Some(name) = &tls.secret_name else {
                continue;
            };
            secrets.push(tls_secret(ingress.metadata.namespace(), name, &tls.hosts));
        }
    }
    secrets
}

fn tls_secret(namespace: &str, name: &str, hosts: &[String]) -> Secret {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(hosts.to_vec())
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut secret = Secret {
        type_: Some(TLS_SECRET_TYPE.to_owned()),
        ..Secret::default()
    };
    secret.metadata.namespace = Some(namespace.to_owned());
    secret.metadata.name = name.to_owned();
    secret.string_data.insert("tls.crt".to_owned(), cert.pem());
    secret
        .string_data
        .insert("tls.key".to_owned(), key.serialize_pem());
    secret
}

fn bench(c: &mut Criterion) {
    let corpus = corpus::generate(SIZE, corpus::SEED);
    let ingresses = corpus.ingresses;
    let (services, slices) = services(&ingresses);
    let secrets = secrets(&ingresses);
    eprintln!(
        "snapshot_{SIZE}: {} Ingresses, {} Services, {} EndpointSlices, {} TLS Secrets",
        ingresses.len(),
        services.len(),
        slices.len(),
        secrets.len()
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut reconciler =
        Reconciler::every_ingress(TableOptions::default()).with_certificates(provider, None, None);
    let manifests = Manifests {
        ingresses: ingresses.clone(),
        services: services.clone(),
        endpoint_slices: slices.clone(),
        secrets: secrets.clone(),
        ..Manifests::default()
    };
    reconciler.apply_all(Event::replace_all(manifests));
    let handle = reconciler.snapshots().next().unwrap().1.clone();

    let mut group = c.benchmark_group(format!("snapshot_{SIZE}"));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));

    // Two versions of one slice, applied in turn: every event changes its addresses.
    let slice = &slices[slices.len() / 2];
    let mut moved = slice.clone();
    moved.endpoints[0].addresses = vec!["10.255.255.1".to_owned()];
    let versions = [moved, slice.clone()];
    let mut turn = 0;
    group.bench_function("endpoint slice change", |b| {
        b.iter(|| {
            turn ^= 1;
            let outcome =
                reconciler.apply(Event::Apply(Object::EndpointSlice(versions[turn].clone())));
            assert!(outcome.rebuilt.is_empty() && !outcome.published.is_empty());
        })
    });
    let snapshot = handle.load();
    let name = slice.service_name().unwrap();
    let port = &services
        .iter()
        .find(|s| s.metadata.name == name)
        .unwrap()
        .spec
        .ports[0];
    let backend = ServiceBackend {
        namespace: slice.metadata.namespace().to_owned(),
        name: name.to_owned(),
        port: match &port.name {
            Some(n) if !n.starts_with('p') => ServicePort::Name(n.clone()),
            _ => ServicePort::Number(port.port as u16),
        },
    };
    assert!(
        snapshot.endpoints().resolve(&backend).is_ok(),
        "{backend:?}"
    );

    let service = &services[services.len() / 2];
    let mut relabelled = service.clone();
    relabelled
        .metadata
        .labels
        .insert("bench".to_owned(), "1".to_owned());
    let services_turn = [relabelled, service.clone()];
    group.bench_function("service change", |b| {
        b.iter(|| {
            turn ^= 1;
            let outcome =
                reconciler.apply(Event::Apply(Object::Service(services_turn[turn].clone())));
            assert!(outcome.rebuilt.is_empty());
        })
    });

    // A rotation: a new certificate for the same names, alternating with the old one.
    let secret = &secrets[secrets.len() / 2];
    let hosts: Vec<String> = ingresses
        .iter()
        .flat_map(|i| &i.spec.tls)
        .find(|t| t.secret_name.as_deref() == Some(&secret.metadata.name))
        .map(|t| t.hosts.clone())
        .unwrap();
    let rotated = tls_secret(secret.metadata.namespace(), &secret.metadata.name, &hosts);
    let secrets_turn = [rotated, secret.clone()];
    group.bench_function("secret rotation", |b| {
        b.iter(|| {
            turn ^= 1;
            let outcome =
                reconciler.apply(Event::Apply(Object::Secret(secrets_turn[turn].clone())));
            assert!(outcome.rebuilt.is_empty() && !outcome.published.is_empty());
        })
    });
    assert!(handle.load().certificates().problems().is_empty());

    let ingress = &ingresses[ingresses.len() / 2];
    let mut edited = ingress.clone();
    edited
        .metadata
        .annotations
        .insert("bench".to_owned(), "1".to_owned());
    let ingresses_turn = [edited, ingress.clone()];
    group.bench_function("ingress edit", |b| {
        b.iter(|| {
            turn ^= 1;
            reconciler.apply(Event::Apply(Object::Ingress(ingresses_turn[turn].clone())));
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
