//! TLS for logyard's listeners: the HTTP server (`[server] tls_cert`, `tls_key`,
//! `tls_client_ca`) and the syslog TCP listener (RFC 5425).
//!
//! [`ServerTls::new`] reads a PEM certificate chain and its private key, and optionally the
//! PEM certificates of a client CA, into a rustls server configuration (the `ring` crypto
//! provider, TLS 1.2 and 1.3). An error names the file and what to do about it.
//!
//! The certificate is served through [`ReloadingCert`]: when a client connects, at most once
//! every [`RELOAD_CHECK`], the two files are read again and, if they changed, the new pair
//! is served to the connections that follow. Open connections keep the session they have.
//! A new pair that does not load (a certificate written before its key, a key that does not
//! match, a truncated file) is logged, and the pair loaded before goes on being served until
//! the files change again. Renewing a certificate needs no restart.
//!
//! With a client CA, clients may present a certificate signed by it; a client without one
//! is let through to authenticate otherwise (a token). [`client_name`] is the name of a
//! verified client certificate: its subject's common name, else its first DNS name.
//!
//! ```no_run
//! use logyard_tls::{ServerTls, TlsFiles};
//!
//! let files = TlsFiles::new("/etc/logyard/tls/cert.pem", "/etc/logyard/tls/key.pem");
//! let tls = ServerTls::new(&files, &[b"http/1.1"]).expect("a valid certificate and key");
//! let acceptor = tls.acceptor(); // acceptor.accept(tcp_stream).await → a TLS stream
//! # let _ = acceptor;
//! ```

mod name;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use tokio_rustls::server::TlsStream;
pub use tokio_rustls::TlsAcceptor;

/// How often, at most, the certificate and key files are read again to see whether they
/// changed (when a client connects).
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// What a certificate or key error ends with: how to make a pair to try with.
const PAIR_HINT: &str = "; a PEM certificate chain (leaf first) and its private key (PKCS#8, \
     PKCS#1 or SEC1) are needed. A self-signed pair to try with: `openssl req -x509 \
     -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost -addext \
     subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout key.pem -out cert.pem`";

/// The files of a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The PEM private key of that certificate.
    pub key: PathBuf,
    /// PEM certificates of the CAs whose client certificates are accepted; none asks no
    /// client for a certificate.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// A certificate and its key, without client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsFiles {
        TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }
}

/// Why a TLS listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read the TLS {what} {}: {source}{hint}", path.display())]
    Read {
        /// `certificate`, `private key` or `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// A file was read but does not hold what it should.
    #[error("invalid TLS {what} {}: {reason}{hint}", path.display())]
    Invalid {
        /// `certificate`, `private key` or `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// What to do about it.
        hint: &'static str,
    },
}

/// What a client CA error ends with.
const CA_HINT: &str = "; tls_client_ca is a PEM file with the certificates of the CAs that \
     signed the clients' certificates";

/// The crypto provider of every listener: ring.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a file, naming it in the error.
fn read(what: &'static str, path: &Path, hint: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
        hint,
    })
}

/// Reads every certificate of a PEM text; none is an error.
fn certificates(
    what: &'static str,
    path: &Path,
    pem: &[u8],
    hint: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let invalid = |reason: String| TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        reason,
        hint,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM file ({e})")))?;
    if certs.is_empty() {
        return Err(invalid(
            "no `-----BEGIN CERTIFICATE-----` block in the file".to_string(),
        ));
    }
    Ok(certs)
}

/// Builds the served pair from the texts of the certificate and key files.
fn certified_key(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = certificates("certificate", cert_path, cert_pem, PAIR_HINT)?;
    let invalid_key = |reason: String| TlsError::Invalid {
        what: "private key",
        path: key_path.to_path_buf(),
        reason,
        hint: PAIR_HINT,
    };
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            invalid_key("no `-----BEGIN … PRIVATE KEY-----` block in the file".to_string())
        }
        e => invalid_key(format!("not a PEM private key ({e})")),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => invalid_key(format!(
            "the key does not belong to the certificate {}",
            cert_path.display()
        )),
        e => invalid_key(format!("the key cannot be used ({e})")),
    })
}

/// A digest of the two files' texts: what was last looked at.
fn digest(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(cert_pem.len() as u64).to_le_bytes());
    ctx.update(cert_pem);
    ctx.update(key_pem);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// What the reloading certificate last saw of its files.
#[derive(Debug)]
struct Seen {
    /// When the files were last read.
    checked: Instant,
    /// The digest of their texts then, whether they loaded or not.
    digest: [u8; 32],
}

/// The server's certificate and key, read again from their files when they change; see the
/// crate documentation.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair; an error names the file and how to make a valid one.
    pub fn load(cert: &Path, key: &Path) -> Result<ReloadingCert, TlsError> {
        let provider = provider();
        let cert_pem = read("certificate", cert, PAIR_HINT)?;
        let key_pem = read("private key", key, PAIR_HINT)?;
        let pair = certified_key(cert, &cert_pem, key, &key_pem, &provider)?;
        Ok(ReloadingCert {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(pair)),
            seen: Mutex::new(Seen {
                checked: Instant::now(),
                digest: digest(&cert_pem, &key_pem),
            }),
        })
    }

    /// The pair served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the files again if [`RELOAD_CHECK`] has passed since they were last read, and
    /// serves the new pair if they changed and load. Another caller checking at the same
    /// time makes this one return at once.
    pub fn check(&self) {
        let Ok(mut seen) = self.seen.try_lock() else {
            return;
        };
        if seen.checked.elapsed() < RELOAD_CHECK {
            return;
        }
        seen.checked = Instant::now();
        self.reload(&mut seen);
    }

    /// Reads the files now and serves the new pair if they changed and load; returns whether
    /// a new pair is served.
    pub fn reload_now(&self) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.checked = Instant::now();
        self.reload(&mut seen)
    }

    fn reload(&self, seen: &mut Seen) -> bool {
        let texts = read("certificate", &self.cert_path, PAIR_HINT)
            .and_then(|cert| read("private key", &self.key_path, PAIR_HINT).map(|key| (cert, key)));
        let (cert_pem, key_pem) = match texts {
            Ok(t) => t,
            Err(e) => {
                // Logged each time: a file that disappears is worth hearing about until it
                // is back.
                tracing::warn!(error = %e, "cannot reload the TLS certificate; still serving the one loaded before");
                return false;
            }
        };
        let now = digest(&cert_pem, &key_pem);
        if now == seen.digest {
            return false;
        }
        seen.digest = now;
        match certified_key(
            &self.cert_path,
            &cert_pem,
            &self.key_path,
            &key_pem,
            &self.provider,
        ) {
            Ok(pair) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
                tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded: new connections get the new one");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "the changed TLS files do not load; still serving the certificate loaded before, until they change again");
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.check();
        Some(self.current())
    }
}

/// A listener's TLS: the rustls configuration and its reloading certificate.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    cert: Arc<ReloadingCert>,
    client_ca: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert)
            .field("client_ca", &self.client_ca)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the files and builds the configuration; `alpn` lists the application protocols
    /// offered (`http/1.1`), none for a listener without ALPN (syslog).
    pub fn new(files: &TlsFiles, alpn: &[&[u8]]) -> Result<ServerTls, TlsError> {
        ServerTls::build(files, alpn, true)
    }

    /// Reads the files and builds the configuration of a listener whose clients only send
    /// (syslog, RFC 5425): no ALPN, and no TLS 1.3 session tickets. A ticket is the only
    /// thing the server would write; a client that closes without reading it makes its
    /// kernel reset the connection, and the reset discards the messages the server had not
    /// read yet.
    pub fn one_way(files: &TlsFiles) -> Result<ServerTls, TlsError> {
        ServerTls::build(files, &[], false)
    }

    fn build(files: &TlsFiles, alpn: &[&[u8]], tickets: bool) -> Result<ServerTls, TlsError> {
        let cert = Arc::new(ReloadingCert::load(&files.cert, &files.key)?);
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3");
        let builder = match &files.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let pem = read("client CA", path, CA_HINT)?;
                let invalid = |reason: String| TlsError::Invalid {
                    what: "client CA",
                    path: path.clone(),
                    reason,
                    hint: CA_HINT,
                };
                let mut roots = RootCertStore::empty();
                for ca in certificates("client CA", path, &pem, CA_HINT)? {
                    roots
                        .add(ca)
                        .map_err(|e| invalid(format!("a certificate cannot be a CA ({e})")))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        if !tickets {
            config.send_tls13_tickets = 0;
        }
        Ok(ServerTls {
            config: Arc::new(config),
            cert,
            client_ca: files.client_ca.is_some(),
        })
    }

    /// An acceptor that performs the server's side of handshakes.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// The certificate served, reloaded when its files change.
    pub fn certificate(&self) -> &Arc<ReloadingCert> {
        &self.cert
    }

    /// Whether clients may present certificates (`tls_client_ca` is set).
    pub fn client_ca(&self) -> bool {
        self.client_ca
    }
}

/// The name of the verified certificate a client presented, if it presented one: the
/// subject's common name (CN), else the first DNS name of its subject alternative names.
/// A certificate is only ever seen here once the client CA verified it.
pub fn client_name(conn: &ServerConnection) -> Option<String> {
    let leaf = conn.peer_certificates()?.first()?;
    let cert = webpki::EndEntityCert::try_from(leaf).ok()?;
    name::common_name(cert.subject())
        .or_else(|| cert.valid_dns_names().next().map(str::to_string))
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests;
