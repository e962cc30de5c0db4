//! E-mail over TLS to a real SMTP server: Python's `aiosmtpd` with a certificate made by
//! `openssl` for the test, asking for authentication. STARTTLS and implicit TLS deliver the
//! message; a wrong password, an untrusted certificate and a server without STARTTLS fail
//! and say why.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use logyard_notify::{Delivery, Notification, NotifierConfig, NotifierKind, SmtpTls};

const USER: &str = "alerts";
const PASSWORD: &str = "s3cret pass";

/// `mode`: `starttls` (STARTTLS offered and required before AUTH), `tls` (implicit TLS) or
/// `plain` (no TLS at all, AUTH allowed in clear).
const SERVER: &str = r#"
import ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
mode, cert, key, port, out, user, password = sys.argv[1:8]
class H:
    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else "-"
        with open(out, "a") as f:
            f.write("USER " + login + "\n")
            f.write("FROM " + envelope.mail_from + "\n")
            f.write("TO " + ",".join(envelope.rcpt_tos) + "\n")
            f.write(envelope.content.decode("utf-8") + "\n----\n")
        return "250 OK"
def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
    return AuthResult(success=ok, handled=False, auth_data=data)
# A context usable on both sides: the controller checks the listener with a client socket.
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS)
ctx.load_cert_chain(cert, key)
kw = dict(hostname="127.0.0.1", port=int(port), authenticator=auth, auth_required=True)
if mode == "starttls":
    c = Controller(H(), tls_context=ctx, require_starttls=True, auth_require_tls=True, **kw)
elif mode == "tls":
    c = Controller(H(), ssl_context=ctx, auth_require_tls=False, **kw)
else:
    c = Controller(H(), auth_require_tls=False, **kw)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

/// A running aiosmtpd, stopped on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl SmtpServer {
    fn start(mode: &str, dir: &Path, certs: &common::Certs) -> SmtpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = dir.join(format!("mail-{mode}.txt"));
        let mut child = Command::new("python3")
            .args(["-W", "ignore", "-c", SERVER, mode])
            .arg(&certs.cert)
            .arg(&certs.key)
            .arg(port.to_string())
            .arg(&out)
            .args([USER, PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (python3 -m pip install aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        SmtpServer { child, port, out }
    }

    fn mail(&self) -> String {
        for _ in 0..250 {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            if text.contains("----") {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no mail arrived");
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn notification() -> Notification {
    Notification {
        rule: "critical".into(),
        kind: "immediate".into(),
        severity: "critical".into(),
        message: "payment database is gone".into(),
        count: 1,
        ..Notification::default()
    }
}

/// An e-mail notifier to the server, trusting the test CA, logging in with the password in
/// a file; one attempt.
fn mailer(server: &SmtpServer, dir: &Path, certs: &common::Certs, tls: SmtpTls) -> NotifierConfig {
    let password_file = dir.join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let mut c = NotifierConfig::webhook("mail", "http://unused");
    c.kind = NotifierKind::Email;
    c.url = None;
    c.smtp = Some(format!("127.0.0.1:{}", server.port));
    c.from = Some("logyard@example.com".into());
    c.to = vec!["ops@example.com".into()];
    c.tls = Some(tls);
    c.username = Some(USER.into());
    c.password_file = Some(password_file);
    c.ca_file = Some(certs.ca.clone());
    c.attempts = Some(1);
    c
}

async fn send(c: &NotifierConfig) -> Delivery {
    c.build().unwrap().send(&notification()).await
}

fn assert_delivered(delivery: &Delivery, server: &SmtpServer) {
    assert!(delivery.ok, "{delivery:?}");
    let mail = server.mail();
    assert!(
        mail.starts_with("USER alerts\nFROM logyard@example.com\nTO ops@example.com\n"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: [critical] critical (immediate): payment database is gone"),
        "{mail}"
    );
}

#[tokio::test]
async fn starttls_then_auth_delivers_the_mail() {
    let dir = tempfile::tempdir().unwrap();
    let certs = common::make_certs(dir.path());
    let server = SmtpServer::start("starttls", dir.path(), &certs);
    let mut c = mailer(&server, dir.path(), &certs, SmtpTls::Starttls);
    assert_delivered(&send(&c).await, &server);

    // The default upgrades too, and the password may come from the environment.
    std::env::set_var("LOGYARD_TEST_SMTP_PASSWORD", PASSWORD);
    c.tls = None;
    c.password_file = None;
    c.password_env = Some("LOGYARD_TEST_SMTP_PASSWORD".into());
    std::fs::remove_file(&server.out).unwrap();
    assert_delivered(&send(&c).await, &server);
}

#[tokio::test]
async fn implicit_tls_delivers_the_mail() {
    let dir = tempfile::tempdir().unwrap();
    let certs = common::make_certs(dir.path());
    let server = SmtpServer::start("tls", dir.path(), &certs);
    let c = mailer(&server, dir.path(), &certs, SmtpTls::Tls);
    assert_delivered(&send(&c).await, &server);
}

#[tokio::test]
async fn a_wrong_password_gives_the_servers_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let certs = common::make_certs(dir.path());
    let server = SmtpServer::start("starttls", dir.path(), &certs);
    let mut c = mailer(&server, dir.path(), &certs, SmtpTls::Starttls);
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not the password").unwrap();
    c.password_file = Some(wrong);
    let delivery = send(&c).await;
    assert!(!delivery.ok);
    let error = delivery.error.unwrap_or_default();
    assert!(
        error.contains("authentication as \"alerts\" rejected"),
        "{error}"
    );
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("not the password"), "{error}");
}

#[tokio::test]
async fn an_untrusted_certificate_fails_with_the_check_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let certs = common::make_certs(dir.path());
    for (mode, tls) in [("starttls", SmtpTls::Starttls), ("tls", SmtpTls::Tls)] {
        let server = SmtpServer::start(mode, dir.path(), &certs);
        let mut c = mailer(&server, dir.path(), &certs, tls);
        c.ca_file = None;
        let delivery = send(&c).await;
        assert!(!delivery.ok);
        let error = delivery.error.unwrap_or_default();
        assert!(error.contains("invalid peer certificate"), "{error}");
        assert!(error.contains("UnknownIssuer"), "{error}");
        assert!(error.contains("ca_file"), "{error}");
    }
}

#[tokio::test]
async fn starttls_required_from_a_server_without_it_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let certs = common::make_certs(dir.path());
    let server = SmtpServer::start("plain", dir.path(), &certs);
    let c = mailer(&server, dir.path(), &certs, SmtpTls::Starttls);
    let delivery = send(&c).await;
    assert!(!delivery.ok);
    let error = delivery.error.unwrap_or_default();
    assert!(error.contains("does not offer STARTTLS"), "{error}");

    // By default the password is not sent in clear either; tls = "none" allows it.
    let mut c = mailer(&server, dir.path(), &certs, SmtpTls::Auto);
    c.tls = None;
    let error = send(&c).await.error.unwrap_or_default();
    assert!(error.contains("plain connection"), "{error}");
    c.tls = Some(SmtpTls::None);
    assert_delivered(&send(&c).await, &server);
}
