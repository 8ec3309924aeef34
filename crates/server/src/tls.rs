//! TLS on the public listener: a local certificate authority that Stratus
//! creates once in `data_dir/tls` (kept, so that what trusts it keeps
//! trusting it across restarts), and a server certificate it signs at every
//! start for the names the gateway answers to: `localhost`,
//! `*.execute-api.localhost`, `*.lambda-url.localhost`, `127.0.0.1`, `::1`
//! and the listen address. Functions trust the CA unasked (see
//! [`LocalCa::function_env`]), so the callback URL AWS's examples build,
//! `https://{requestContext.domainName}/{stage}`, works unchanged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// System trust stores, the first found is appended to the bundle
/// functions get (so that their calls to real HTTPS services still verify).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The local CA's files and the listener's TLS configuration.
pub struct LocalCa {
    /// The CA certificate (PEM): what a client outside Stratus trusts
    /// (`curl --cacert`, `AWS_CA_BUNDLE`).
    pub ca_pem: PathBuf,
    /// The CA followed by the system's trust store (PEM).
    pub bundle: PathBuf,
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl LocalCa {
    /// Loads the CA from `data_dir/tls` (creating it the first time) and
    /// signs a server certificate for `listen`.
    pub fn open(data_dir: &Path, listen: SocketAddr) -> anyhow::Result<LocalCa> {
        let dir = data_dir.join("tls");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let ca_pem = dir.join("ca.pem");
        let ca_key_pem = dir.join("ca-key.pem");
        let ca_key = if ca_pem.is_file() && ca_key_pem.is_file() {
            let pem = std::fs::read_to_string(&ca_key_pem)
                .with_context(|| format!("cannot read {}", ca_key_pem.display()))?;
            KeyPair::from_pem(&pem).with_context(|| {
                format!(
                    "{} is not a private key (remove {} to make a new CA)",
                    ca_key_pem.display(),
                    dir.display()
                )
            })?
        } else {
            let key = KeyPair::generate().context("cannot generate the local CA's key")?;
            let cert = ca_params()
                .self_signed(&key)
                .context("cannot make the local CA")?;
            write_private(&ca_key_pem, key.serialize_pem().as_bytes())?;
            std::fs::write(&ca_pem, cert.pem())
                .with_context(|| format!("cannot write {}", ca_pem.display()))?;
            tracing::info!(
                "created a local certificate authority: {}",
                ca_pem.display()
            );
            key
        };
        let ca_der = std::fs::read_to_string(&ca_pem)
            .with_context(|| format!("cannot read {}", ca_pem.display()))?;
        // The CA's subject and key identifier are rebuilt from the same
        // parameters and key; that is all a signature by it needs.
        let issuer = Issuer::new(ca_params(), ca_key);
        let key = KeyPair::generate().context("cannot generate the server key")?;
        let cert = server_params(listen)?
            .signed_by(&key, &issuer)
            .context("cannot sign the server certificate")?;
        let chain = vec![cert.der().clone(), pem_der(&ca_der)?];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the server certificate")?;
        // HTTP/1.1 only, as on the plain port.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let bundle = dir.join("ca-bundle.pem");
        let mut all = ca_der.into_bytes();
        if let Some(system) = SYSTEM_BUNDLES.iter().find_map(|p| std::fs::read(p).ok()) {
            all.push(b'\n');
            all.extend_from_slice(&system);
        }
        std::fs::write(&bundle, all)
            .with_context(|| format!("cannot write {}", bundle.display()))?;
        Ok(LocalCa {
            ca_pem,
            bundle,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// What every function gets so that its HTTPS clients trust the CA:
    /// botocore (`AWS_CA_BUNDLE`), OpenSSL and Python's `ssl`
    /// (`SSL_CERT_FILE`), `requests` (`REQUESTS_CA_BUNDLE`) take the bundle
    /// (which holds the system's roots too, since each replaces the default
    /// store); Node adds `NODE_EXTRA_CA_CERTS` to its own.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let bundle = self.bundle.display().to_string();
        vec![
            ("AWS_CA_BUNDLE".into(), bundle.clone()),
            ("SSL_CERT_FILE".into(), bundle.clone()),
            ("REQUESTS_CA_BUNDLE".into(), bundle),
            (
                "NODE_EXTRA_CA_CERTS".into(),
                self.ca_pem.display().to_string(),
            ),
        ]
    }
}

/// The CA's parameters: the same every time (see `Issuer::new` above).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Stratus local CA");
    dn.push(DnType::OrganizationName, "Stratus");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn server_params(listen: SocketAddr) -> anyhow::Result<CertificateParams> {
    let mut names: Vec<String> = [
        "localhost",
        "*.execute-api.localhost",
        "*.lambda-url.localhost",
        "127.0.0.1",
        "::1",
    ]
    .map(String::from)
    .to_vec();
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    let mut params = CertificateParams::new(names).context("the server certificate's names")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Stratus gateway");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// The DER of the one certificate in `pem`.
fn pem_der(pem: &str) -> anyhow::Result<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).context("the local CA's certificate")
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("cannot write {}", path.display()))
}
