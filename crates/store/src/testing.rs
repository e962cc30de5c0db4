//! For the tests of the crates that read the store: the segment directory chosen by the
//! environment, so that one suite runs over each ([`storage_for`]). Compiled with the
//! `testing` feature only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::dir::MemoryDir;
use crate::storage::Storage;
use crate::tier::CacheLimits;

/// The variable that chooses: unset or `local`, `memory`, `tiered` or `s3`.
pub const VARIABLE: &str = "LOGYARD_TEST_STORAGE";

/// The [`Storage`] of a test store whose data directory is `data_dir`, by
/// `LOGYARD_TEST_STORAGE`:
///
/// - unset or `local`: the data directory's `parts/`;
/// - `memory`: a [`MemoryDir`] of that data directory (the same one each time it is opened),
///   read by byte ranges as a bucket is;
/// - `tiered`: that memory directory as the bucket behind `parts/`, with no local cache, so
///   that files leave the disk once uploaded;
/// - `s3`: a real S3 API server behind `parts/` with no local cache: moto's server
///   (`python3 -m moto.server`, as `.ci/test` installs it), one per test process, started at
///   the first call and stopped when the process ends; each data directory has a prefix of
///   its own in one bucket.
///
/// Panics on any other value, so that a misspelt variable never runs the local suite again.
pub fn storage_for(data_dir: &Path) -> Storage {
    static BUCKETS: Mutex<Option<HashMap<PathBuf, MemoryDir>>> = Mutex::new(None);
    let bucket = || {
        let mut buckets = BUCKETS.lock().expect("buckets lock");
        let dir = buckets
            .get_or_insert_with(HashMap::new)
            .entry(data_dir.to_path_buf())
            .or_default()
            .clone();
        Arc::new(dir)
    };
    match std::env::var(VARIABLE).as_deref() {
        Err(_) | Ok("" | "local") => Storage::Local,
        Ok("memory") => Storage::Dir(bucket()),
        Ok("tiered") => Storage::Tiered(bucket(), CacheLimits { bytes: 0, days: 0 }),
        Ok("s3") => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            data_dir.hash(&mut h);
            let config = crate::S3Config {
                bucket: MOTO_BUCKET.into(),
                prefix: format!("test-{:016x}", h.finish()),
                endpoint: moto_endpoint().to_string(),
                region: "us-east-1".into(),
                ..crate::S3Config::default()
            };
            Storage::S3(config, CacheLimits { bytes: 0, days: 0 })
        }
        Ok(other) => panic!("{VARIABLE}={other}: use local, memory, tiered or s3"),
    }
}

/// The bucket of the `s3` choice.
const MOTO_BUCKET: &str = "logyard-tests";

/// The address of this process's moto server, started (with its bucket and the credentials
/// it takes in the environment) at the first call. A shell watches the test process and
/// stops the server once it is gone.
fn moto_endpoint() -> &'static str {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script = format!(
            "python3 -m moto.server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & moto=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 1; done; \
             kill $moto 2>/dev/null",
            parent = std::process::id()
        );
        let mut watcher = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("sh runs moto.server (pip install 'moto[server]'; .ci/test installs it)");
        // Reaped should it end first (moto exited).
        std::thread::spawn(move || watcher.wait());
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto.server did not start on port {port}: pip install 'moto[server]'"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("moto answers");
        write!(
            stream,
            "PUT /{MOTO_BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .expect("the bucket is asked for");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        format!("http://127.0.0.1:{port}")
    })
}
