//! A real S3 API server for tests: moto's server (PyPI `moto[server]`, installed by
//! `.ci/test`) on a free port of 127.0.0.1. Shared by the root tests and the store's.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `moto_server` on a free port of 127.0.0.1, killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts a server and waits until it listens.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // As a module, so that no PATH of pip's scripts is needed.
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs moto.server (pip install 'moto[server]'; .ci/test installs it)");
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto.server exited ({status}): pip install 'moto[server]'");
            }
            assert!(Instant::now() < deadline, "moto.server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let answer = self.request(&format!("PUT /{bucket}"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// The keys under `prefix` in `bucket` (one ListObjectsV2 request).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let answer = self.request(&format!("GET /{bucket}?list-type=2&prefix={prefix}"));
        answer
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }

    /// The body of an object (signed GET through boto3, which moto depends on).
    pub fn object(&self, bucket: &str, key: &str) -> String {
        self.boto3(&format!(
            "import sys; sys.stdout.buffer.write(s3.get_object(Bucket='{bucket}', Key='{key}')['Body'].read())"
        ))
    }

    /// Deletes an object, with a signed request (boto3).
    pub fn delete(&self, bucket: &str, key: &str) {
        self.boto3(&format!("s3.delete_object(Bucket='{bucket}', Key='{key}')"));
    }

    /// Runs Python `code` with `s3`, a boto3 client of this server; returns what it prints.
    fn boto3(&self, code: &str) -> String {
        let script = format!(
            "import boto3; s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test')\n{code}",
            self.endpoint
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Reads the `.parquet` files under `prefix` of `bucket` as another engine would
    /// (`tests/clients/read_bucket.py`: pyarrow's dataset over the Hive-style layout):
    /// its rows, by day, level and node. For the root crate's tests (the script's path is its).
    pub fn read_as_dataset(&self, bucket: &str, prefix: &str) -> serde_json::Value {
        let out = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/clients/read_bucket.py"
            ))
            .args([self.endpoint.as_str(), bucket, prefix])
            .envs([
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
            ])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON object")
    }

    /// Sends one request without a body (moto takes unsigned path-style requests) and
    /// returns the whole answer. A connection reset is tried again for 10 s: a server just
    /// started on a loaded machine may drop its first connections.
    fn request(&self, line: &str) -> String {
        let addr = self.endpoint.trim_start_matches("http://");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let answer = TcpStream::connect(addr).and_then(|mut stream| {
                write!(
                    stream,
                    "{line} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )?;
                let mut answer = String::new();
                stream.read_to_string(&mut answer)?;
                Ok(answer)
            });
            match answer {
                Ok(answer) if !answer.is_empty() => return answer,
                Ok(_) | Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Ok(_) => panic!("moto closed the connection to {line} without an answer"),
                Err(e) => panic!("moto did not answer {line}: {e}"),
            }
        }
    }
}

impl Moto {
    /// Kills the server: the bucket is out of reach from then on (and its objects are gone).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
