//! The Docker API over TCP with TLS client certificates, from PEMs held in memory: the private
//! key never touches the disk, and the only trusted authority is the CA the server was
//! registered with (not the system's roots). A bollard custom transport over hyper-rustls.

use bollard::{BollardRequest, Docker};
use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::pin::Pin;
use std::sync::Arc;

/// A server's TLS material, as registered.
pub struct TlsMaterial<'a> {
    pub ca: &'a str,
    pub cert: &'a str,
    pub key: &'a str,
}

/// Checks the PEMs parse, so that a typo is named when the server is added.
pub fn check(m: &TlsMaterial<'_>) -> Result<(), String> {
    config(m).map(|_| ())
}

fn config(m: &TlsMaterial<'_>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(m.ca.as_bytes()) {
        let cert = cert.map_err(|e| format!("the CA certificate: {e}"))?;
        roots.add(cert).map_err(|e| format!("the CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the CA certificate: no certificate in it".into());
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(m.cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the client certificate: {e}"))?;
    if chain.is_empty() {
        return Err("the client certificate: no certificate in it".into());
    }
    let key = PrivateKeyDer::from_pem_slice(m.key.as_bytes()).map_err(|e| format!("the client key: {e}"))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("the client certificate and key: {e}"))
}

/// bollard's request body type, spelled out for the client.
type Body =
    Either<Full<Bytes>, StreamBody<Pin<Box<dyn futures::Stream<Item = Result<Frame<Bytes>, io::Error>> + Send>>>>;

/// A bollard client for `host:port` over TLS (not yet negotiated).
pub fn client(address: &str, m: &TlsMaterial<'_>, timeout_secs: u64) -> Result<Docker, String> {
    let config = config(m)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(std::time::Duration::from_secs(15)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(https);
    Docker::connect_with_custom_transport(
        move |req: BollardRequest| {
            let client = client.clone();
            async move { client.request(req).await.map_err(bollard::errors::Error::from) }
        },
        Some(&format!("https://{address}")),
        timeout_secs,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| e.to_string())
}
