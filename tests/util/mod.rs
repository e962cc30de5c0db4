//! Helpers of the black-box tests: start the real `logyard` binary on a free port of
//! 127.0.0.1 and speak HTTP to it.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Returns the path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_logyard"))
}

/// Runs `logyard ARGS` to completion in `cwd`.
pub fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("LOGYARD_LOG", "warn")
        .output()
        .expect("run logyard")
}

/// A `logyard serve` child process.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The data directory it serves.
    pub data: PathBuf,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Starts a server on `data` with a free port and waits until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::try_start(data, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a server; an error carries what it wrote to stderr.
    pub fn try_start(data: &Path, extra: &[&str]) -> Result<Server, String> {
        let mut command = Command::new(bin());
        command.arg("serve");
        Server::try_start_with(command, data, extra)
    }

    /// Starts a server with more environment variables (e.g. systemd's `NOTIFY_SOCKET`).
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::try_start_with_env(data, extra, env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a server with more environment variables; an error carries its stderr.
    pub fn try_start_with_env(
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let mut command = Command::new(bin());
        command.arg("serve").envs(env.iter().copied());
        Server::try_start_with(command, data, extra)
    }

    /// Starts a server whose process may open at most `nofile` descriptors (`ulimit -n`).
    pub fn start_with_descriptor_limit(data: &Path, extra: &[&str], nofile: u32) -> Server {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(bin())
            .arg("serve");
        Server::try_start_with(command, data, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a server through a wrapper program and its arguments (e.g. `setpriv` with
    /// other credentials), which runs the binary with `serve` and the rest.
    pub fn start_wrapped(wrapper: &[&str], data: &Path, extra: &[&str]) -> Server {
        let mut command = Command::new(wrapper[0]);
        command.args(&wrapper[1..]).arg(bin()).arg("serve");
        Server::try_start_with(command, data, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `command` (the binary and `serve`) on `data` with a free port.
    fn try_start_with(mut command: Command, data: &Path, extra: &[&str]) -> Result<Server, String> {
        command
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(data.parent().unwrap_or(data));
        Server::try_spawn(command, data)
    }

    /// Starts `command`, a whole `serve` command line whose data directory is `data` (as its
    /// configuration says), and waits for its `listening on` line.
    pub fn try_spawn(mut command: Command, data: &Path) -> Result<Server, String> {
        let mut child = command
            .env("LOGYARD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start logyard: {e}"))?;
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        break url.trim().to_string();
                    }
                }
                _ => {
                    let status = child.wait().expect("wait");
                    let err = stderr.join().unwrap_or_default();
                    return Err(format!("logyard serve exited ({status}): {err}"));
                }
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server {
            child,
            url,
            data: data.to_path_buf(),
            stderr: Some(stderr),
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The peak resident memory of the server process so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM in /proc/<pid>/status");
        kib * 1024
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// Stops the server with SIGTERM and returns what it wrote to stderr.
    pub fn stop(mut self) -> String {
        terminate(&self.child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().expect("try_wait").is_some() {
                return self
                    .stderr
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill().ok();
        panic!("logyard serve did not stop within 30 s of SIGTERM");
    }

    /// GETs a path and returns the status and the JSON answer.
    pub fn get(&self, path_and_query: &str) -> (u16, Value) {
        let resp = client()
            .get(format!("{}{}", self.url, path_and_query))
            .send()
            .expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// POSTs entries to `/api/logs` as a JSON array, checks they are all accepted, and
    /// returns the answer.
    pub fn post_entries(&self, entries: &[Value]) -> Value {
        let (status, answer) = self.post(
            "/api/logs",
            "application/json",
            serde_json::to_vec(entries).expect("entries serialise"),
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], entries.len(), "{answer}");
        answer
    }

    /// POSTs a body with a content type and returns the status and the JSON answer.
    pub fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = client()
            .post(format!("{}{}", self.url, path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// The text of `/metrics`.
    pub fn metrics_text(&self) -> String {
        client()
            .get(format!("{}/metrics", self.url))
            .send()
            .expect("GET /metrics")
            .text()
            .expect("the text of /metrics")
    }

    /// A sample's value in `/metrics` (`name` with its labels, if any), if present.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Returns every stored entry of an agent, newest first, paging through `/api/logs`.
    pub fn all_of_agent(&self, agent: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let (status, page) = self.get(&format!(
                "/api/logs?agent={agent}&limit=1000&offset={}",
                out.len()
            ));
            assert_eq!(status, 200, "{page}");
            let logs = page["logs"].as_array().expect("logs").clone();
            let done = logs.len() < 1000;
            out.extend(logs);
            if done {
                return out;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to a child.
pub fn terminate(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a pid of our own child and a valid signal number.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// A blocking HTTP client with a generous timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A webhook receiver on 127.0.0.1 recording the JSON bodies it is sent.
pub struct Webhook {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The bodies received, in order.
    pub got: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Webhook {
    /// Starts a receiver on a free port.
    pub fn start() -> Webhook {
        Webhook::on(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// Answers on a listener bound already.
    pub fn on(listener: std::net::TcpListener) -> Webhook {
        let got: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = std::sync::Arc::default();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sink = got.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().fallback(move |body: String| {
                    let sink = sink.clone();
                    async move {
                        sink.lock()
                            .unwrap()
                            .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                        "ok"
                    }
                });
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Webhook { url, got }
    }

    /// Waits up to 10 s for `n` bodies; returns those received.
    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..500 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.got.lock().unwrap().clone()
    }
}
