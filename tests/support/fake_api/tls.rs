//! The test CA, the server and client certificates, the kubeconfig, and the TLS acceptor.
//!
//! Like MicroK8s' `client.config` (canonical/microk8s: `create_kubeconfig_x509 "client.config"
//! "admin"`, certificate `/CN=admin/O=system:masters`), clients authenticate with a certificate.
//! The real API server asks for a client certificate without requiring one in the handshake and
//! verifies it afterwards (anonymous requests get 401 when anonymous auth is off): so does this
//! acceptor. The handshake accepts any certificate whose key the client proves it holds; the
//! request handler then checks the chain against the CA and answers 401 when it is missing or
//! untrusted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// PEM material of one certificate and its key.
#[derive(Clone, Debug)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// Everything the fake cluster needs for TLS, made fresh per cluster.
pub struct Pki {
    pub ca_pem: String,
    pub server: Pem,
    /// CN=admin, O=system:masters, signed by the CA.
    pub admin: Pem,
    /// A well-formed client certificate from another CA: the server must answer 401.
    pub stranger: Pem,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

fn ca(org: &str) -> (String, CertificateDer<'static>, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "10.152.183.1");
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("generate CA key");
    let cert = params.self_signed(&key).expect("self-sign CA");
    (cert.pem(), cert.der().clone(), Issuer::new(params, key))
}

fn client(issuer: &Issuer<'static, KeyPair>, cn: &str, org: &str) -> Pem {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("generate client key");
    let cert = params.signed_by(&key, issuer).expect("sign client cert");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    pub fn generate() -> Pki {
        let (ca_pem, ca_der, issuer) = ca("fake-microk8s");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("SAN");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .subject_alt_names
            .push(SanType::IpAddress([10, 152, 183, 1].into()));
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.use_authority_key_identifier_extension = true;
        let server_key = KeyPair::generate().expect("generate server key");
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .expect("sign server cert");
        let admin = client(&issuer, "admin", "system:masters");
        let (_, _, other_issuer) = ca("somebody-else");
        let stranger = client(&other_issuer, "admin", "system:masters");
        Pki {
            ca_pem,
            server: Pem {
                cert: server_cert.pem(),
                key: server_key.serialize_pem(),
            },
            admin,
            stranger,
            ca_der,
            server_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
        }
    }

    /// The verifier that decides, per request, whether the presented chain is trusted.
    pub fn client_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .expect("add CA to root store");
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .expect("build client verifier")
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let verifier = Arc::new(RequestClientCert {
            inner: self.client_verifier(),
        });
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_der.clone()], key)
            .expect("server cert");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A kubeconfig shaped like MicroK8s' `client.config` (cluster `microk8s-cluster`, context
    /// `microk8s`, user `admin`), for `server`, with the given client certificate (or none).
    pub fn kubeconfig(&self, server: &str, client: Option<&Pem>) -> String {
        let user = match client {
            Some(pem) => format!(
                "  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
                base64(pem.cert.as_bytes()),
                base64(pem.key.as_bytes())
            ),
            None => "  user: {}\n".to_string(),
        };
        format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: microk8s-cluster\ncontexts:\n- context:\n    cluster: microk8s-cluster\n    user: admin\n  name: microk8s\ncurrent-context: microk8s\nkind: Config\npreferences: {{}}\nusers:\n- name: admin\n{user}",
            ca = base64(self.ca_pem.as_bytes()),
        )
    }

    pub fn write_kubeconfig(
        &self,
        dir: &Path,
        file: &str,
        server: &str,
        client: Option<&Pem>,
    ) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.kubeconfig(server, client)).expect("write kubeconfig");
        path
    }
}

/// ring, explicitly: never a process-wide default, which would conflict with kube's own choice.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Asks for a client certificate and checks only that the client holds its key (the handshake
/// signature); trust is decided per request with [`Pki::client_verifier`], so an untrusted or
/// missing certificate gets the API server's 401 instead of a TLS alert.
#[derive(Debug)]
struct RequestClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Standard base64 with padding (kubeconfig `*-data` fields).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A client that accepts any server certificate, as kube-apiserver's proxy transport does
/// towards the endpoints it proxies to (cmd/kube-apiserver/app/server.go
/// `CreateProxyTransport`, `InsecureSkipVerify: true`); the handshake signature is still checked.
pub fn unverified_client_config() -> rustls::ClientConfig {
    let provider = provider();
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_no_client_auth()
}

#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A self-signed server certificate for `127.0.0.1` and `localhost` (a backend serving https).
pub fn self_signed_server() -> Pem {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("SAN");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let key = KeyPair::generate().expect("generate key");
    let cert = params.self_signed(&key).expect("self-sign");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}
