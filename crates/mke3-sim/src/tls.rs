//! A throw-away certificate authority and a server certificate for `127.0.0.1` and `localhost`,
//! so that tests exercise the client's real TLS verification path.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::SimError;

/// A test CA and one server certificate signed by it.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// PEM of the CA certificate: what a client trusts (`--mke3-ca-cert`).
    pub ca_pem: String,
    /// PEM of a *different* CA, which a client must refuse to trust for this server.
    pub other_ca_pem: String,
    server_der: Vec<u8>,
    server_key_der: Vec<u8>,
}

fn ca(name: &str) -> Result<(rcgen::Certificate, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok((cert, key))
}

impl TestPki {
    /// Generates a fresh CA and a server certificate for `127.0.0.1` and `localhost`.
    pub fn generate() -> Result<TestPki, SimError> {
        let tls = |e: rcgen::Error| SimError::Tls(e.to_string());
        let (ca_cert, ca_key) = ca("ferry test MKE 3 CA").map_err(tls)?;
        let (other, _) = ca("ferry unrelated CA").map_err(tls)?;
        let server_key = KeyPair::generate().map_err(tls)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        params.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().map_err(tls)?),
        ];
        params
            .distinguished_name
            .push(DnType::CommonName, "ucp-controller");
        let server = params
            .signed_by(&server_key, &ca_cert, &ca_key)
            .map_err(tls)?;
        Ok(TestPki {
            ca_pem: ca_cert.pem(),
            other_ca_pem: other.pem(),
            server_der: server.der().to_vec(),
            server_key_der: server_key.serialize_der(),
        })
    }

    /// A rustls server configuration with the server certificate (ring provider, HTTP/1.1).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, SimError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = CertificateDer::from(self.server_der.clone());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SimError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| SimError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
