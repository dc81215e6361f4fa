//! Server certificates for rustls from `kubernetes.io/tls` Secrets (feature `rustls`).
//!
//! See [Certificates] for the model.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{Certificate, TlsTable};
use crate::model::{Secret, SecretRef};
use crate::snapshot::SharedSnapshot;

/// The key of a TLS Secret that holds the certificate chain.
pub const TLS_CERT_KEY: &str = "tls.crt";
/// The key of a TLS Secret that holds the private key.
pub const TLS_PRIVATE_KEY_KEY: &str = "tls.key";

/// Why a Secret's certificate is not served.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// No Secret with this namespace and name.
    #[error("no such Secret")]
    Missing,
    /// The Secret's type is not `kubernetes.io/tls`.
    #[error("type is {0:?}, not \"kubernetes.io/tls\"")]
    NotTls(String),
    /// A key is missing from `data`.
    #[error("no data.{0}")]
    MissingKey(&'static str),
    /// A value of `data` is not base64.
    #[error("data.{0} is not base64")]
    Base64(&'static str),
    /// `tls.crt` holds no PEM certificate.
    #[error("data.tls.crt holds no PEM certificate")]
    NoCertificate,
    /// `tls.crt` holds a malformed PEM block.
    #[error("data.tls.crt: {0}")]
    BadCertificate(String),
    /// `tls.key` holds no PEM private key, or one the provider cannot load.
    #[error("data.tls.key: {0}")]
    BadKey(String),
    /// The private key is not the certificate's.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// The certificate does not cover the name (by its DNS subject alternative names).
    #[error("the certificate does not cover {0:?}")]
    DoesNotCover(String),
}

/// A Secret whose certificate is not served for some names, and why; those names get the
/// default certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret {secret} (for {}): {error}", .hosts.join(", "))]
#[non_exhaustive]
pub struct CertificateProblem {
    /// The Secret.
    pub secret: SecretRef,
    /// The names that should have been served with it.
    pub hosts: Vec<String>,
    /// What is wrong.
    pub error: SecretError,
}

/// Loads a certificate chain and private key from PEM, checking that they belong together.
pub fn certified_key_from_pem(
    cert_chain: &[u8],
    private_key: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, SecretError> {
    let chain = CertificateDer::pem_slice_iter(cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SecretError::BadCertificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(SecretError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(private_key)
        .map_err(|e| SecretError::BadKey(e.to_string()))?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| SecretError::BadKey(e.to_string()))?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(SecretError::KeyMismatch),
        Err(e) => Err(SecretError::BadCertificate(e.to_string())),
    }
}

/// Loads the certificate and key of a `kubernetes.io/tls` Secret (`stringData` overrides
/// `data`, as the apiserver does).
pub fn certified_key(
    secret: &Secret,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, SecretError> {
    if !secret.is_tls() {
        let type_ = secret.type_.as_deref().unwrap_or("Opaque");
        return Err(SecretError::NotTls(type_.to_owned()));
    }
    let cert = secret_value(secret, TLS_CERT_KEY)?;
    let key = secret_value(secret, TLS_PRIVATE_KEY_KEY)?;
    certified_key_from_pem(&cert, &key, provider)
}

fn secret_value(secret: &Secret, key: &'static str) -> Result<Vec<u8>, SecretError> {
    if let Some(text) = secret.string_data.get(key) {
        return Ok(text.as_bytes().to_vec());
    }
    let encoded = secret.data.get(key).ok_or(SecretError::MissingKey(key))?;
    let compact: Vec<u8> = encoded
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| SecretError::Base64(key))
}

/// Whether the leaf certificate covers `name` (`*.suffix` for a wildcard TLS host).
fn covers(certificate: &CertificateDer<'_>, name: &str) -> Result<(), SecretError> {
    let not_covered = || SecretError::DoesNotCover(name.to_owned());
    let leaf = webpki::EndEntityCert::try_from(certificate)
        .map_err(|e| SecretError::BadCertificate(e.to_string()))?;
    match name.strip_prefix("*.") {
        // A wildcard TLS host is covered only by the same wildcard in the certificate: a
        // comparison of patterns, not a verification of a presented name.
        Some(_) => leaf
            .valid_dns_names()
            .any(|san| san.eq_ignore_ascii_case(name))
            .then_some(())
            .ok_or_else(not_covered),
        None => {
            let server_name = ServerName::try_from(name).map_err(|_| not_covered())?;
            leaf.verify_is_valid_for_subject_name(&server_name)
                .map_err(|_| not_covered())
        }
    }
}

/// A Secret as loaded: its certificate and key, or why they cannot be served.
type Loaded = Result<Arc<CertifiedKey>, SecretError>;

/// What a name serves: the key of its Secret, the default (`None`), or the default because
/// of a problem with the Secret.
type Served = Result<Option<Arc<CertifiedKey>>, (SecretRef, SecretError)>;

/// Server certificates for rustls from `kubernetes.io/tls` Secrets (feature `rustls`).
///
/// [`Certificates`] is an immutable value compiled from a [`TlsTable`] (a
/// [`Snapshot`](crate::Snapshot)'s), the Secret objects, and the caller's default certificate;
/// every snapshot carries one, which the [`Reconciler`](crate::Reconciler) keeps current.
/// [`CertResolver`] is the `rustls::server::ResolvesServerCert` that serves from a
/// [`SharedSnapshot`]'s current snapshot: certificates change in the same swap as the routes,
/// and open connections keep the certificate they were set up with.
///
/// Selection follows the [`TlsTable`]: the SNI's exact name, then its single-label wildcard,
/// then the default certificate — also for clients that send no SNI. A Secret that is missing,
/// is not of type `kubernetes.io/tls`, cannot be decoded or parsed, holds a key that does not
/// match its certificate, or whose certificate does not cover a name, is reported in
/// [`Certificates::problems`], and the names it should serve get the default certificate
/// instead. Without a default certificate such handshakes fail.
///
/// `data.tls.crt` is a PEM chain, leaf first; `data.tls.key` a PEM private key (PKCS#8, PKCS#1
/// RSA or SEC1 EC), of any type the [`CryptoProvider`]'s key provider loads — RSA, ECDSA and
/// Ed25519 with rustls's `ring` and `aws-lc-rs` providers. This module brings no provider: pass
/// one, e.g. `rustls::crypto::ring::default_provider()`. A certificate covers a name by its DNS
/// subject alternative names, as clients check it (the subject's common name is not used).
///
/// The certificates to serve, by server name; see the [module docs](crate::Certificates).
#[derive(Debug, Clone, Default)]
pub struct Certificates {
    tls: Arc<TlsTable>,
    /// What each entry of `tls` (by index) serves: its key, or `Err` (the default) with why.
    served: Vec<Served>,
    /// The Secrets of `tls` (by index) as loaded, so that the next version loads only those
    /// that changed.
    loaded: Vec<Loaded>,
    default: Option<Arc<CertifiedKey>>,
    problems: Vec<CertificateProblem>,
}

impl Certificates {
    /// Compiles the certificates for `tls` from `secrets` (when several have the same namespace
    /// and name, the last counts), with `default` for every other name.
    pub fn build(
        tls: Arc<TlsTable>,
        secrets: &[Secret],
        default: Option<Arc<CertifiedKey>>,
        provider: &CryptoProvider,
    ) -> Certificates {
        let by_ref: HashMap<SecretRef, &Secret> =
            secrets.iter().map(|s| (s.secret_ref(), s)).collect();
        Certificates::default().next(tls, |r| by_ref.get(r).copied(), None, default, provider)
    }

    /// The next version: for `tls`, with the Secrets `lookup` finds, loading again those
    /// `changed` names (`None`: all) and reusing what `self` loaded for the others. When `tls`
    /// is the table of `self`, only the names of changed Secrets are looked at again.
    pub(crate) fn next<'s>(
        &self,
        tls: Arc<TlsTable>,
        lookup: impl Fn(&SecretRef) -> Option<&'s Secret>,
        changed: Option<&HashSet<SecretRef>>,
        default: Option<Arc<CertifiedKey>>,
        provider: &CryptoProvider,
    ) -> Certificates {
        let is_changed = |secret: &SecretRef| changed.is_none_or(|set| set.contains(secret));
        let load = |secret: &SecretRef| match lookup(secret) {
            None => Err(SecretError::Missing),
            Some(secret) => certified_key(secret, provider).map(Arc::new),
        };
        let n = tls.secrets().len();
        let mut reloaded = vec![false; n];
        let same_names = Arc::ptr_eq(&tls, &self.tls)
            && self.loaded.len() == n
            && self.served.len() == tls.len();
        if same_names {
            // The same names: only the changed Secrets are loaded, only their names served anew.
            let mut loaded = self.loaded.clone();
            match changed {
                None => reloaded.iter_mut().for_each(|r| *r = true),
                Some(set) => set
                    .iter()
                    .filter_map(|secret| tls.secret_index(secret))
                    .for_each(|i| reloaded[i] = true),
            }
            for (i, secret) in tls.secrets().iter().enumerate() {
                if reloaded[i] {
                    loaded[i] = load(secret);
                }
            }
            let mut served = self.served.clone();
            for (id, (host, secret_id)) in tls.hosts_with_secret_ids().enumerate() {
                if let (Certificate::Secret(secret), Some(s)) = (host.certificate, secret_id) {
                    if reloaded[s] {
                        served[id] = serve(&loaded[s], secret, host.name);
                    }
                }
            }
            return Certificates::finish(tls, served, loaded, default);
        }
        // Other names: Secrets are found by reference; what a name served with an unchanged
        // Secret is still right, so only new pairs of name and Secret are checked again.
        let old_index: HashMap<&SecretRef, usize> = self
            .tls
            .secrets()
            .iter()
            .enumerate()
            .map(|(i, secret)| (secret, i))
            .collect();
        let loaded: Vec<Loaded> = tls
            .secrets()
            .iter()
            .enumerate()
            .map(|(i, secret)| match old_index.get(secret) {
                Some(&j) if !is_changed(secret) && j < self.loaded.len() => self.loaded[j].clone(),
                _ => {
                    reloaded[i] = true;
                    load(secret)
                }
            })
            .collect();
        let old_served: HashMap<(&str, &SecretRef), &Served> = self
            .tls
            .hosts()
            .zip(&self.served)
            .filter_map(|(host, served)| match host.certificate {
                Certificate::Secret(secret) if !is_changed(secret) => {
                    Some(((host.name, secret), served))
                }
                _ => None,
            })
            .collect();
        let served = tls
            .hosts_with_secret_ids()
            .map(|(host, secret_id)| match (host.certificate, secret_id) {
                (Certificate::Secret(secret), Some(s)) => {
                    match old_served.get(&(host.name, secret)) {
                        Some(served) if !reloaded[s] => (*served).clone(),
                        _ => serve(&loaded[s], secret, host.name),
                    }
                }
                _ => Ok(None),
            })
            .collect();
        Certificates::finish(tls, served, loaded, default)
    }

    fn finish(
        tls: Arc<TlsTable>,
        served: Vec<Served>,
        loaded: Vec<Loaded>,
        default: Option<Arc<CertifiedKey>>,
    ) -> Certificates {
        let mut certificates = Certificates {
            tls,
            served,
            loaded,
            default,
            problems: Vec::new(),
        };
        certificates.problems = certificates.gather_problems();
        certificates
    }

    /// The problems of every entry, by Secret and error, names in order.
    fn gather_problems(&self) -> Vec<CertificateProblem> {
        let mut failed: Vec<(&str, &SecretRef, &SecretError)> = self
            .tls
            .hosts()
            .zip(&self.served)
            .filter_map(|(host, served)| {
                let (secret, error) = served.as_ref().err()?;
                Some((host.name, secret, error))
            })
            .collect();
        failed.sort_by_key(|&(name, ..)| name);
        let mut problems: Vec<CertificateProblem> = Vec::new();
        let mut index: HashMap<(&SecretRef, &SecretError), usize> = HashMap::new();
        for (name, secret, error) in failed {
            match index.get(&(secret, error)) {
                Some(&i) => problems[i].hosts.push(name.to_owned()),
                None => {
                    index.insert((secret, error), problems.len());
                    problems.push(CertificateProblem {
                        secret: secret.clone(),
                        hosts: vec![name.to_owned()],
                        error: error.clone(),
                    });
                }
            }
        }
        problems
    }

    /// The certificate for a handshake with `server_name` (`None`: no SNI), or `None` when it
    /// would be the default certificate and there is none.
    pub fn resolve(&self, server_name: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let configured = server_name
            .and_then(|name| self.tls.entry_id(name))
            .and_then(|id| self.served.get(id));
        match configured {
            Some(Ok(Some(key))) => Some(key),
            _ => self.default.as_ref(),
        }
    }

    /// The default certificate.
    pub fn default_certificate(&self) -> Option<&Arc<CertifiedKey>> {
        self.default.as_ref()
    }

    /// The Secrets whose certificates are not served, with the names they should have served.
    pub fn problems(&self) -> &[CertificateProblem] {
        &self.problems
    }
}

/// What a name gets from a loaded Secret: its key when the certificate covers the name.
fn serve(loaded: &Loaded, secret: &SecretRef, name: &str) -> Served {
    let fail = |error| Err((secret.clone(), error));
    match loaded {
        Err(error) => fail(error.clone()),
        Ok(key) => match key.end_entity_cert().map(|c| covers(c, name)) {
            Ok(Ok(())) => Ok(Some(Arc::clone(key))),
            Ok(Err(error)) => fail(error),
            Err(e) => fail(SecretError::BadCertificate(e.to_string())),
        },
    }
}

/// A `rustls::server::ResolvesServerCert` serving the certificates of a [`SharedSnapshot`]'s
/// current snapshot; see the [module docs](crate::Certificates).
///
/// ```
/// # use std::sync::Arc;
/// use ingress_router::{CertResolver, SharedSnapshot};
///
/// let snapshot = SharedSnapshot::default(); // a controller's, from the Reconciler
/// let resolver = Arc::new(CertResolver::new(snapshot));
/// // rustls::ServerConfig::builder().with_no_client_auth().with_cert_resolver(resolver)
/// ```
#[derive(Debug, Clone)]
pub struct CertResolver {
    snapshot: SharedSnapshot,
}

impl CertResolver {
    /// Serves the certificates of `snapshot`'s current snapshot, whichever that is at each
    /// handshake.
    pub fn new(snapshot: SharedSnapshot) -> CertResolver {
        CertResolver { snapshot }
    }

    /// The snapshots it serves from.
    pub fn snapshot(&self) -> &SharedSnapshot {
        &self.snapshot
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello.server_name();
        self.snapshot
            .peek(|s| s.certificates().resolve(name).cloned())
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::*;
    use crate::model::TLS_SECRET_TYPE;
    use crate::{Manifests, Snapshot, TableOptions};
    use base64::engine::general_purpose::STANDARD;
    use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519};

    fn provider() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    struct Generated {
        cert_pem: String,
        key_pem: String,
        der: CertificateDer<'static>,
    }

    fn generate(names: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> Generated {
        let key = if alg == &rcgen::PKCS_RSA_SHA256 {
            // ring signs with RSA keys but does not generate them.
            use rsa::pkcs8::EncodePrivateKey;
            use rsa::Generate;
            let der = rsa::PrivateKey::generate().to_pkcs8_der().unwrap();
            let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
            KeyPair::from_pkcs8_der_and_sign_algo(&der, alg).unwrap()
        } else {
            KeyPair::generate_for(alg).unwrap()
        };
        let cert = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Generated {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn secret_yaml(namespace: &str, name: &str, g: &Generated) -> String {
        format!(
            "kind: Secret\ntype: kubernetes.io/tls\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
             data: {{tls.crt: {}, tls.key: {}}}\n",
            STANDARD.encode(&g.cert_pem),
            STANDARD.encode(&g.key_pem)
        )
    }

    const INGRESS: &str = r#"
kind: Ingress
metadata: {name: site, namespace: web}
spec:
  tls:
  - {hosts: [shop.example.com], secretName: shop}
  - {hosts: ["*.example.com"], secretName: wild}
  - {hosts: [broken.example.com], secretName: broken}
  - {hosts: [missing.example.com], secretName: missing}
  - {hosts: [other.example.org], secretName: shop}
  - {hosts: [opaque.example.com], secretName: opaque}
  rules: [{host: shop.example.com}]
"#;

    fn served(certificates: &Certificates, sni: Option<&str>) -> Option<CertificateDer<'static>> {
        certificates
            .resolve(sni)
            .map(|k| k.end_entity_cert().unwrap().clone().into_owned())
    }

    #[test]
    fn serves_by_sni_and_falls_back_to_the_default_with_a_report() {
        let shop = generate(&["shop.example.com"], &PKCS_ECDSA_P256_SHA256);
        let wild = generate(&["*.example.com"], &PKCS_ED25519);
        let default = generate(&["ingress.invalid"], &PKCS_ECDSA_P256_SHA256);
        let yaml = format!(
            "{INGRESS}---\n{}---\n{}---\n{}",
            secret_yaml("web", "shop", &shop),
            secret_yaml("web", "wild", &wild),
            "kind: Secret\ntype: kubernetes.io/tls\nmetadata: {name: broken, namespace: web}\n\
             data: {tls.crt: '!!notbase64', tls.key: ''}\n---\n\
             kind: Secret\nmetadata: {name: opaque, namespace: web}\ndata: {}\n",
        );
        let manifests = Manifests::parse(&yaml);
        assert!(manifests.errors.is_empty(), "{:?}", manifests.errors);
        let table = Snapshot::build(&manifests.ingresses, TableOptions::default());
        let provider = provider();
        let default_key = certified_key_from_pem(
            default.cert_pem.as_bytes(),
            default.key_pem.as_bytes(),
            &provider,
        )
        .unwrap();
        let certs = Certificates::build(
            Arc::clone(table.tls()),
            &manifests.secrets,
            Some(Arc::new(default_key)),
            &provider,
        );
        assert_eq!(
            served(&certs, Some("shop.example.com")),
            Some(shop.der.clone())
        );
        assert_eq!(
            served(&certs, Some("SHOP.example.com.")),
            Some(shop.der.clone())
        );
        assert_eq!(
            served(&certs, Some("a.example.com")),
            Some(wild.der.clone())
        );
        assert_eq!(served(&certs, None), Some(default.der.clone()));
        assert_eq!(
            served(&certs, Some("unknown.org")),
            Some(default.der.clone())
        );
        for name in [
            "broken.example.com",
            "missing.example.com",
            "other.example.org",
            "opaque.example.com",
        ] {
            assert_eq!(
                served(&certs, Some(name)),
                Some(default.der.clone()),
                "{name}"
            );
        }
        let problems: Vec<String> = certs.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "secret web/broken (for broken.example.com): data.tls.crt is not base64",
                "secret web/missing (for missing.example.com): no such Secret",
                "secret web/opaque (for opaque.example.com): type is \"Opaque\", not \"kubernetes.io/tls\"",
                "secret web/shop (for other.example.org): the certificate does not cover \"other.example.org\"",
            ]
        );
    }

    #[test]
    fn without_a_default_unknown_names_get_nothing() {
        let certs = Certificates::build(Arc::default(), &[], None, &provider());
        assert!(certs.resolve(Some("x.example.com")).is_none());
        assert!(certs.resolve(None).is_none());
    }

    #[test]
    fn rsa_ecdsa_and_ed25519_keys_and_chains_load() {
        let provider = provider();
        for alg in [
            &rcgen::PKCS_RSA_SHA256,
            &PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &PKCS_ED25519,
        ] {
            let g = generate(&["a.example.com"], alg);
            let key =
                certified_key_from_pem(g.cert_pem.as_bytes(), g.key_pem.as_bytes(), &provider);
            assert!(key.is_ok(), "{alg:?}: {key:?}");
        }
        // A chain: leaf then issuer.
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = CertificateParams::new(vec!["a.example.com".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let chain = format!("{}{}", leaf.pem(), ca.pem());
        let key = certified_key_from_pem(
            chain.as_bytes(),
            leaf_key.serialize_pem().as_bytes(),
            &provider,
        )
        .unwrap();
        assert_eq!(key.cert.len(), 2);
        assert_eq!(key.cert[0], *leaf.der());
    }

    #[test]
    fn mismatched_and_malformed_pem_are_reported() {
        let provider = provider();
        let a = generate(&["a.example.com"], &PKCS_ECDSA_P256_SHA256);
        let b = generate(&["a.example.com"], &PKCS_ECDSA_P256_SHA256);
        let mismatch =
            certified_key_from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), &provider);
        assert_eq!(mismatch.unwrap_err(), SecretError::KeyMismatch);
        let none = certified_key_from_pem(b"", a.key_pem.as_bytes(), &provider);
        assert_eq!(none.unwrap_err(), SecretError::NoCertificate);
        let no_key = certified_key_from_pem(a.cert_pem.as_bytes(), b"junk", &provider);
        assert!(matches!(no_key.unwrap_err(), SecretError::BadKey(_)));
        let garbled = a.cert_pem.replace("MII", "M!I");
        let bad = certified_key_from_pem(garbled.as_bytes(), a.key_pem.as_bytes(), &provider);
        assert!(bad.is_err());
    }

    #[test]
    fn string_data_and_wrapped_base64_are_read() {
        let provider = provider();
        let g = generate(&["a.example.com"], &PKCS_ECDSA_P256_SHA256);
        let mut secret = Secret {
            type_: Some(TLS_SECRET_TYPE.into()),
            ..Secret::default()
        };
        let wrapped: String = STANDARD
            .encode(&g.cert_pem)
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        secret.data.insert(TLS_CERT_KEY.into(), wrapped);
        secret
            .string_data
            .insert(TLS_PRIVATE_KEY_KEY.into(), g.key_pem.clone());
        assert!(certified_key(&secret, &provider).is_ok());
        secret.data.clear();
        assert_eq!(
            certified_key(&secret, &provider).unwrap_err(),
            SecretError::MissingKey(TLS_CERT_KEY)
        );
    }

    #[test]
    fn wildcard_hosts_need_the_wildcard_in_the_certificate() {
        let exact = generate(&["a.example.com"], &PKCS_ECDSA_P256_SHA256);
        let wild = generate(&["*.example.com"], &PKCS_ECDSA_P256_SHA256);
        assert!(covers(&wild.der, "*.example.com").is_ok());
        assert!(covers(&wild.der, "b.example.com").is_ok());
        assert!(covers(&wild.der, "example.com").is_err());
        assert!(covers(&exact.der, "*.example.com").is_err());
        assert!(covers(&exact.der, "a.example.com").is_ok());
    }
}
