//! A small SMTP client over a plain TCP connection: EHLO, MAIL FROM, RCPT TO, DATA, QUIT.
//! Enough for a relay on the local network; no TLS and no authentication.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::{email_text, Notification};

/// Where and to whom e-mail goes.
#[derive(Debug, Clone)]
pub(crate) struct SmtpTarget {
    pub(crate) server: String,
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
}

impl SmtpTarget {
    pub(crate) async fn send(&self, n: &Notification) -> Result<(), String> {
        let err = |e: std::io::Error| format!("smtp {}: {e}", self.server);
        let stream = TcpStream::connect(&self.server).await.map_err(err)?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        expect(&mut read, 220).await?;
        command(&mut write, &mut read, "EHLO logyard", 250).await?;
        command(
            &mut write,
            &mut read,
            &format!("MAIL FROM:<{}>", self.from),
            250,
        )
        .await?;
        for to in &self.to {
            command(&mut write, &mut read, &format!("RCPT TO:<{to}>"), 250).await?;
        }
        command(&mut write, &mut read, "DATA", 354).await?;
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
        write.write_all(message.as_bytes()).await.map_err(err)?;
        expect(&mut read, 250).await?;
        command(&mut write, &mut read, "QUIT", 221).await?;
        Ok(())
    }
}

async fn command<R: AsyncBufReadExt + Unpin, W: AsyncWriteExt + Unpin>(
    write: &mut W,
    read: &mut R,
    line: &str,
    code: u16,
) -> Result<(), String> {
    write
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| format!("smtp: {e}"))?;
    expect(read, code).await
}

/// Reads one reply (possibly multi-line, `250-…` then `250 …`) and checks its code.
async fn expect<R: AsyncBufReadExt + Unpin>(read: &mut R, code: u16) -> Result<(), String> {
    loop {
        let mut line = String::new();
        let n = read
            .read_line(&mut line)
            .await
            .map_err(|e| format!("smtp: {e}"))?;
        if n == 0 {
            return Err("smtp: the server closed the connection".into());
        }
        let got: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if got != code {
            return Err(format!("smtp: expected {code}, got {}", line.trim_end()));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}
