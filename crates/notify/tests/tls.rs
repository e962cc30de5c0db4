//! Webhooks over HTTPS to a real TLS receiver on 127.0.0.1: Python's `ssl` module serving a
//! certificate made by `openssl` for the test. Trusted through `ca_file`, the notification
//! arrives; without it, the delivery fails and says why.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use logyard_notify::{Notification, NotifierConfig};

const SERVER: &str = r#"
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        print("BODY " + json.dumps(json.loads(body)), flush=True)
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("PORT %d" % srv.server_address[1], flush=True)
srv.serve_forever()
"#;

struct Receiver {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    port: u16,
}

impl Receiver {
    fn start(cert: &std::path::Path, key: &std::path::Path) -> Receiver {
        let mut child = Command::new("python3")
            .args(["-c", SERVER])
            .arg(cert)
            .arg(key)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the HTTPS receiver");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let port = first.strip_prefix("PORT ").unwrap().parse().unwrap();
        Receiver { child, lines, port }
    }

    fn next_body(&mut self) -> serde_json::Value {
        let line = self.lines.next().unwrap().unwrap();
        serde_json::from_str(line.strip_prefix("BODY ").unwrap()).unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_webhook_over_https_trusts_its_ca_file_and_refuses_an_unknown_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = common::make_certs(d);
    let (cert, key, ca) = (certs.cert, certs.key, certs.ca);
    let mut receiver = Receiver::start(&cert, &key);
    let url = format!("https://127.0.0.1:{}/hook", receiver.port);
    let notification = Notification {
        rule: "critical".into(),
        kind: "immediate".into(),
        severity: "critical".into(),
        message: "payment database is gone".into(),
        count: 1,
        ..Notification::default()
    };

    let mut trusted = NotifierConfig::webhook("secure", &url);
    trusted.ca_file = Some(ca.clone());
    let delivery = trusted.build().unwrap().send(&notification).await;
    assert!(delivery.ok, "{delivery:?}");
    let body = receiver.next_body();
    assert_eq!(body["rule"], "critical");
    assert_eq!(body["message"], "payment database is gone");

    let mut untrusted = NotifierConfig::webhook("unknown-ca", &url);
    untrusted.attempts = Some(1);
    let delivery = untrusted.build().unwrap().send(&notification).await;
    assert!(!delivery.ok);
    let error = delivery.error.unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}
