//! A certificate authority for tests (rcgen): certificates for servers on 127.0.0.1 and
//! for clients. Shared by the TLS tests and the nodes' tests.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

/// A test CA: its certificate (also written to `<name>.pem`) and key.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The file of its certificate.
    pub pem: PathBuf,
}

impl Ca {
    /// A new CA named `name`, its certificate written to `<dir>/<name>.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        Ca { cert, key, pem }
    }

    /// Writes a certificate for `cn` signed by this CA and its key to `<stem>.pem` and
    /// `<stem>-key.pem`; returns the certificate's PEM.
    pub fn issue(&self, dir: &Path, stem: &str, cn: &str, client: bool) -> String {
        let key = KeyPair::generate().unwrap();
        let sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let mut params = CertificateParams::new(if client { Vec::new() } else { sans }).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        // Key first: a reader that sees the new certificate finds its key already there.
        std::fs::write(dir.join(format!("{stem}-key.pem")), key.serialize_pem()).unwrap();
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
        cert.pem()
    }
}
