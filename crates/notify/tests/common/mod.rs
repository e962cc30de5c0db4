//! Helpers shared by the tests that talk TLS to real servers: a test certificate authority
//! and a server certificate for 127.0.0.1 signed by it, made by `openssl`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The files [`make_certs`] writes.
pub struct Certs {
    /// The test CA's certificate (what `ca_file` trusts).
    pub ca: PathBuf,
    /// The server's certificate, for `IP:127.0.0.1`, signed by the CA.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Makes a test CA and a server certificate for 127.0.0.1 in `dir`.
pub fn make_certs(dir: &Path) -> Certs {
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    for args in [
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=logyard-test-ca -keyout ca.key -out ca.pem",
        "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out req.csr",
        "x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem",
    ] {
        let status = Command::new("openssl")
            .args(args.split(' '))
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .expect("openssl makes the test certificates");
        assert!(status.success(), "openssl {args}");
    }
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}
