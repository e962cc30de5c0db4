//! Certificates made by rcgen: loading, the errors of bad files, reloading, and the name of
//! a client certificate after a real handshake.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A CA: its certificate and key.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

/// A leaf certificate signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, cn: &str, sans: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![purpose];
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write_pair(dir: &Path, pair: &(String, String)) -> TlsFiles {
    std::fs::write(dir.join("cert.pem"), &pair.0).unwrap();
    std::fs::write(dir.join("key.pem"), &pair.1).unwrap();
    TlsFiles::new(dir.join("cert.pem"), dir.join("key.pem"))
}

fn served(tls: &ServerTls) -> Vec<u8> {
    tls.certificate().current().cert[0].to_vec()
}

#[test]
fn bad_files_stop_the_start_with_the_file_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    let files = write_pair(
        dir.path(),
        &leaf(
            &ca,
            "localhost",
            &["localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
    );
    assert!(ServerTls::new(&files, &[]).is_ok());

    let missing = TlsFiles::new(dir.path().join("nope.pem"), &files.key);
    let e = ServerTls::new(&missing, &[]).unwrap_err().to_string();
    assert!(
        e.contains("nope.pem") && e.contains("openssl req -x509"),
        "{e}"
    );

    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    let junk = TlsFiles::new(dir.path().join("junk.pem"), &files.key);
    let e = ServerTls::new(&junk, &[]).unwrap_err().to_string();
    assert!(
        e.contains("junk.pem") && e.contains("BEGIN CERTIFICATE"),
        "{e}"
    );

    let nokey = TlsFiles::new(&files.cert, dir.path().join("junk.pem"));
    let e = ServerTls::new(&nokey, &[]).unwrap_err().to_string();
    assert!(e.contains("private key") && e.contains("junk.pem"), "{e}");

    // The key of another certificate.
    let other = leaf(
        &ca,
        "other",
        &["other"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    std::fs::write(dir.path().join("other-key.pem"), &other.1).unwrap();
    let mismatch = TlsFiles::new(&files.cert, dir.path().join("other-key.pem"));
    let e = ServerTls::new(&mismatch, &[]).unwrap_err().to_string();
    assert!(e.contains("does not belong"), "{e}");

    let mut bad_ca = files.clone();
    bad_ca.client_ca = Some(dir.path().join("junk.pem"));
    let e = ServerTls::new(&bad_ca, &[]).unwrap_err().to_string();
    assert!(e.contains("client CA") && e.contains("junk.pem"), "{e}");
}

#[test]
fn a_changed_pair_is_served_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    let first = leaf(
        &ca,
        "localhost",
        &["localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let files = write_pair(dir.path(), &first);
    let tls = ServerTls::new(&files, &[b"http/1.1"]).unwrap();
    let before = served(&tls);
    assert!(!tls.certificate().reload_now(), "nothing changed");

    // A certificate written before its key: refused, the old pair kept.
    let second = leaf(
        &ca,
        "localhost",
        &["localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    std::fs::write(&files.cert, &second.0).unwrap();
    assert!(!tls.certificate().reload_now());
    assert_eq!(served(&tls), before);
    // Then its key: served.
    std::fs::write(&files.key, &second.1).unwrap();
    assert!(tls.certificate().reload_now());
    let after = served(&tls);
    assert_ne!(after, before);

    // A truncated file keeps the pair in service.
    std::fs::write(&files.cert, &second.0[..40]).unwrap();
    assert!(!tls.certificate().reload_now());
    assert_eq!(served(&tls), after);
}

#[tokio::test]
async fn a_verified_client_certificate_is_named_and_none_is_let_through() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("server CA");
    let client_ca = ca("client CA");
    let mut files = write_pair(
        dir.path(),
        &leaf(
            &server_ca,
            "localhost",
            &["localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
    );
    std::fs::write(dir.path().join("clients.pem"), client_ca.cert.pem()).unwrap();
    files.client_ca = Some(dir.path().join("clients.pem"));
    let tls = ServerTls::new(&files, &[]).unwrap();
    assert!(tls.client_ca());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.acceptor();
    let server = tokio::spawn(async move {
        let mut names = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut stream = acceptor.accept(tcp).await.unwrap();
            names.push(client_name(stream.get_ref().1));
            stream.write_all(b"ok").await.unwrap();
            stream.shutdown().await.unwrap();
        }
        names
    });

    let mut roots = RootCertStore::empty();
    roots.add(server_ca.cert.der().clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let (cert, key) = leaf(
        &client_ca,
        "shipper-7",
        &["shipper.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let with_cert = builder
        .clone()
        .with_client_auth_cert(
            CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let without = builder.with_no_client_auth();
    for config in [with_cert, without] {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut stream = connector.connect(name, tcp).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"ok");
    }
    let names = server.await.unwrap();
    assert_eq!(names, vec![Some("shipper-7".to_string()), None]);
}
