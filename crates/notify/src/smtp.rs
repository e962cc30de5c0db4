//! A small SMTP client: EHLO, STARTTLS or implicit TLS (rustls), AUTH PLAIN or LOGIN, MAIL
//! FROM, RCPT TO, DATA, QUIT.
//!
//! TLS is negotiated as [`SmtpTls`] says; by default the connection is upgraded when the
//! server offers STARTTLS. Credentials are sent only over TLS, unless `tls = "none"` asks
//! for a plain connection.

use std::sync::Arc;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use crate::{email_text, Notification};

/// How an e-mail notifier secures its connection (`tls` in the configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// STARTTLS when the server offers it, else a plain connection (the default).
    #[default]
    Auto,
    /// STARTTLS, required: a server that does not offer it is an error.
    Starttls,
    /// Implicit TLS from the first byte (submissions port 465).
    Tls,
    /// Never TLS, even when offered.
    None,
}

impl SmtpTls {
    /// Returns the name written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::Auto => "auto",
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }
}

/// A password, kept out of `Debug` output and so out of logs.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A user name and its password for AUTH.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: Secret,
}

/// Where and to whom e-mail goes, and how.
#[derive(Debug, Clone)]
pub(crate) struct SmtpTarget {
    pub(crate) server: String,
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) tls: SmtpTls,
    pub(crate) credentials: Option<Credentials>,
    /// The trusted roots: the public ones and the notifier's `ca_file`.
    pub(crate) tls_config: Arc<rustls::ClientConfig>,
}

impl SmtpTarget {
    pub(crate) async fn send(&self, n: &Notification) -> Result<(), String> {
        let tcp = TcpStream::connect(&self.server)
            .await
            .map_err(|e| self.error(format!("cannot connect: {e}")))?;
        if self.tls == SmtpTls::Tls {
            let tls = self.handshake(tcp).await?;
            let mut conn = BufReader::new(tls);
            expect(&mut conn, 220).await.map_err(|e| self.error(e))?;
            let reply = send_ehlo(&mut conn).await.map_err(|e| self.error(e))?;
            return self.deliver(&mut conn, &reply, true, n).await;
        }
        let mut conn = BufReader::new(tcp);
        expect(&mut conn, 220).await.map_err(|e| self.error(e))?;
        let reply = send_ehlo(&mut conn).await.map_err(|e| self.error(e))?;
        let offered = extension(&reply, "STARTTLS").is_some();
        if self.tls == SmtpTls::Starttls && !offered {
            return Err(self.error(
                "the server does not offer STARTTLS, which tls = \"starttls\" requires".into(),
            ));
        }
        if !offered || self.tls == SmtpTls::None {
            return self.deliver(&mut conn, &reply, false, n).await;
        }
        write_line(&mut conn, "STARTTLS")
            .await
            .map_err(|e| self.error(e))?;
        expect(&mut conn, 220)
            .await
            .map_err(|e| self.error(format!("the server refused STARTTLS: {e}")))?;
        if !conn.buffer().is_empty() {
            return Err(self.error("the server sent data before the TLS handshake".into()));
        }
        let tls = self.handshake(conn.into_inner()).await?;
        let mut conn = BufReader::new(tls);
        let reply = send_ehlo(&mut conn).await.map_err(|e| self.error(e))?;
        self.deliver(&mut conn, &reply, true, n).await
    }

    fn error(&self, message: String) -> String {
        format!("smtp {}: {message}", self.server)
    }

    /// Runs the TLS handshake, checking the server's certificate against the host name of
    /// `smtp`.
    async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let host = host_of(&self.server);
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| self.error(format!("{host:?} is not a host name for TLS: {e}")))?;
        tokio_rustls::TlsConnector::from(self.tls_config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| self.error(describe_tls(&e)))
    }

    /// Authenticates when credentials are set, then sends the message and quits.
    async fn deliver<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut BufReader<S>,
        ehlo: &[String],
        secure: bool,
        n: &Notification,
    ) -> Result<(), String> {
        if let Some(c) = &self.credentials {
            if !secure && self.tls != SmtpTls::None {
                return Err(self.error(
                    "the server does not offer STARTTLS: the password is not sent over a \
                     plain connection (tls = \"none\" allows it)"
                        .into(),
                ));
            }
            authenticate(conn, ehlo, c)
                .await
                .map_err(|e| self.error(e))?;
        }
        self.transaction(conn, n).await.map_err(|e| self.error(e))
    }

    async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut BufReader<S>,
        n: &Notification,
    ) -> Result<(), String> {
        command(conn, &format!("MAIL FROM:<{}>", self.from), 250).await?;
        for to in &self.to {
            command(conn, &format!("RCPT TO:<{to}>"), 250).await?;
        }
        command(conn, "DATA", 354).await?;
        let (subject, body) = email_text(n);
        let mut message = format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
            self.from,
            self.to.join(", "),
            subject.replace(['\r', '\n'], " ")
        );
        for line in body.lines() {
            // Dot-stuffing: a line starting with '.' gets another one.
            if line.starts_with('.') {
                message.push('.');
            }
            message.push_str(line);
            message.push_str("\r\n");
        }
        message.push_str(".\r\n");
        conn.write_all(message.as_bytes())
            .await
            .map_err(|e| format!("cannot send the message: {e}"))?;
        conn.flush()
            .await
            .map_err(|e| format!("cannot send the message: {e}"))?;
        expect(conn, 250).await?;
        command(conn, "QUIT", 221).await?;
        Ok(())
    }
}

/// Returns the host of `host:port` (without the brackets of an IPv6 address).
fn host_of(server: &str) -> &str {
    let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Says why a TLS handshake failed; a certificate error names the check that failed.
fn describe_tls(e: &std::io::Error) -> String {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return format!("TLS handshake failed: {e}");
    };
    let hint = match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            rustls::CertificateError::UnknownIssuer => {
                " (the certificate is not signed by a trusted authority; a private CA goes in ca_file)"
            }
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. } => {
                " (the certificate is not valid for the host name of smtp)"
            }
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                " (the certificate has expired)"
            }
            _ => "",
        },
        _ => "",
    };
    format!("TLS handshake failed: {tls}{hint}")
}

/// Sends EHLO and returns the lines of the reply (the extensions the server offers).
async fn send_ehlo<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
) -> Result<Vec<String>, String> {
    write_line(conn, "EHLO logyard").await?;
    expect(conn, 250).await
}

/// Returns the parameters of an extension named in an EHLO reply (`AUTH PLAIN LOGIN` gives
/// `PLAIN LOGIN`), if the server offers it.
fn extension<'a>(ehlo: &'a [String], name: &str) -> Option<&'a str> {
    ehlo.iter().skip(1).find_map(|line| {
        let text = line.get(4..)?.trim();
        let (word, rest) = text
            .split_once([' ', '='])
            .map_or((text, ""), |(w, r)| (w, r));
        word.eq_ignore_ascii_case(name).then_some(rest)
    })
}

/// Logs in with AUTH PLAIN, or AUTH LOGIN when the server offers only that.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    ehlo: &[String],
    c: &Credentials,
) -> Result<(), String> {
    use base64::Engine;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let offered = extension(ehlo, "AUTH").ok_or_else(|| {
        "the server offers no authentication (no AUTH in its EHLO reply), but a username is set"
            .to_string()
    })?;
    let has = |m: &str| {
        offered
            .split_whitespace()
            .any(|o| o.eq_ignore_ascii_case(m))
    };
    let rejected = |e: String| format!("authentication as {:?} rejected: {e}", c.username);
    if has("PLAIN") {
        let token = b64(format!("\0{}\0{}", c.username, c.password.0).as_bytes());
        write_line(conn, &format!("AUTH PLAIN {token}")).await?;
        expect(conn, 235).await.map_err(rejected)?;
    } else if has("LOGIN") {
        write_line(conn, "AUTH LOGIN").await?;
        expect(conn, 334).await.map_err(rejected)?;
        write_line(conn, &b64(c.username.as_bytes())).await?;
        expect(conn, 334).await.map_err(rejected)?;
        write_line(conn, &b64(c.password.0.as_bytes())).await?;
        expect(conn, 235).await.map_err(rejected)?;
    } else {
        return Err(format!(
            "the server offers AUTH {}; logyard speaks PLAIN and LOGIN",
            offered.trim()
        ));
    }
    Ok(())
}

async fn write_line<W: AsyncWrite + Unpin>(write: &mut W, line: &str) -> Result<(), String> {
    write
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| format!("cannot write to the server: {e}"))?;
    write
        .flush()
        .await
        .map_err(|e| format!("cannot write to the server: {e}"))
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    line: &str,
    code: u16,
) -> Result<Vec<String>, String> {
    write_line(conn, line).await?;
    expect(conn, code).await
}

/// Reads one reply (possibly multi-line, `250-…` then `250 …`) and checks its code; returns
/// its lines, or an error carrying the server's whole reply.
async fn expect<R: AsyncBufReadExt + Unpin>(
    read: &mut R,
    code: u16,
) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = read
            .read_line(&mut line)
            .await
            .map_err(|e| format!("cannot read from the server: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.trim_end().to_string());
        if last {
            break;
        }
    }
    let got: u16 = lines[lines.len() - 1]
        .get(..3)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if got != code {
        return Err(format!("expected {code}, got {}", lines.join(" / ")));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_read_from_the_ehlo_reply() {
        let ehlo: Vec<String> = [
            "250-mail.example.com",
            "250-STARTTLS",
            "250 AUTH PLAIN LOGIN",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(extension(&ehlo, "starttls"), Some(""));
        assert_eq!(extension(&ehlo, "AUTH"), Some("PLAIN LOGIN"));
        assert_eq!(extension(&ehlo, "SIZE"), None);
        let old = ["250-x".to_string(), "250 AUTH=LOGIN".to_string()];
        assert_eq!(extension(&old, "AUTH"), Some("LOGIN"));
        assert_eq!(host_of("mail.example.com:587"), "mail.example.com");
        assert_eq!(host_of("[::1]:25"), "::1");
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "\"***\"");
    }
}
