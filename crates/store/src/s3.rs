//! Segment files in an S3-compatible bucket (Amazon S3, MinIO, Ceph RGW, Garage…), through
//! the `object_store` crate.
//!
//! The layout is Hive-style, so that other engines read the bucket as a dataset:
//! `<prefix>/day=<YYYY-MM-DD>/seg-<id>.parquet` and its `seg-<id>.idx`, beside the prefix's
//! `_owner.json` (its claim) and `manifest.json`; the nodes of a cluster each have such a
//! prefix, `<prefix>/node=<id>/`. Credentials come
//! from the usual AWS places (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, the shared files `~/.aws/credentials` and `~/.aws/config`, web
//! identity, the instance's metadata service), never from the configuration file.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};

use crate::dir::{claimed_by, FileKey, ReadAt, SegmentDir, SegmentFile, OWNER_OBJECT};

/// Where in a bucket segments live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    /// The bucket's name.
    pub bucket: String,
    /// The folder of this store in the bucket (empty: the bucket's root).
    pub prefix: String,
    /// The S3 API's address (e.g. `http://127.0.0.1:9000` for MinIO); empty: AWS's.
    pub endpoint: String,
    /// The region; empty: `AWS_REGION` from the environment, else `us-east-1`.
    pub region: String,
    /// The longest a request may take (an upload included); zero: [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
}

/// The default of [`S3Config::request_timeout`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long reads fail at once after a read that the bucket did not answer, before one is
/// tried again: a query over many segments of a bucket that is down or hangs waits for one
/// request's timeout, not one per segment.
pub const READ_PAUSE: Duration = Duration::from_secs(10);

/// Segment files in a bucket. Calls block the calling thread while a runtime of the
/// directory's own runs the requests, so that the store's threads and the server's async
/// tasks may both call it.
#[derive(Debug)]
pub struct S3Dir {
    store: Arc<dyn ObjectStore>,
    config: S3Config,
    runtime: Arc<OwnRuntime>,
    reads: Arc<ReadGate>,
}

/// The runtime of a bucket's requests, shared by the directories of its prefixes
/// ([`S3Dir::node_dir`]).
#[derive(Debug)]
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which is refused inside async code.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The object of a prefix that lists the segments its store serves ([`crate::NodeManifest`]).
pub const MANIFEST_OBJECT: &str = "manifest.json";

/// The folders of a prefix that hold one ingest node's store each: `node=<id>`.
pub const NODE_FOLDER: &str = "node=";

/// Refuses reads for [`READ_PAUSE`] after one that failed for want of an answer (the
/// network, a timeout, a server error), naming that failure; any read that succeeds opens
/// the gate again.
#[derive(Debug)]
struct ReadGate {
    location: String,
    closed: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

impl ReadGate {
    /// Runs a read unless the gate is closed, and notes its outcome.
    fn read<T>(&self, read: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        if let Some((until, why)) = self.closed.lock().expect("gate lock").as_ref() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if !left.is_zero() {
                return Err(io::Error::other(format!(
                    "the bucket {} did not answer a read ({why}); reads are tried again in {} s",
                    self.location,
                    left.as_secs() + 1
                )));
            }
        }
        let result = read();
        let mut closed = self.closed.lock().expect("gate lock");
        match &result {
            Ok(_) => *closed = None,
            // Not found, refused or a conflict is an answer: the bucket is there.
            Err(e) if e.kind() == io::ErrorKind::Other => {
                *closed = Some((std::time::Instant::now() + READ_PAUSE, e.to_string()));
            }
            Err(_) => {}
        }
        result
    }
}

impl S3Dir {
    /// Connects to the bucket of `config` (no request is sent yet).
    pub fn open(config: &S3Config) -> io::Result<S3Dir> {
        if config.bucket.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "storage.bucket is empty: name the bucket that holds the segments",
            ));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(if config.request_timeout.is_zero() {
                        REQUEST_TIMEOUT
                    } else {
                        config.request_timeout
                    })
                    .with_allow_http(config.endpoint.starts_with("http://")),
            );
        if !config.endpoint.is_empty() {
            builder = builder.with_endpoint(&config.endpoint);
        }
        let env = |k: &str| std::env::var(k).ok();
        let from_files = crate::aws_files::credentials(&env)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if let Some(c) = from_files {
            builder = builder
                .with_access_key_id(c.key_id)
                .with_secret_access_key(c.secret);
            if let Some(token) = c.token {
                builder = builder.with_token(token);
            }
        }
        if !config.region.is_empty() {
            builder = builder.with_region(&config.region);
        } else if let Some(region) = crate::aws_files::region(&env) {
            builder = builder.with_region(region);
        }
        let store = builder.build().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot use the bucket {}: {e}", config.bucket),
            )
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("logyard-s3")
            .enable_all()
            .build()?;
        let reads = Arc::new(ReadGate {
            location: location(config),
            closed: std::sync::Mutex::new(None),
        });
        Ok(S3Dir {
            store: Arc::new(store),
            config: config.clone(),
            runtime: Arc::new(OwnRuntime(Some(runtime))),
            reads,
        })
    }

    /// The object's path: `<prefix>/day=<day>/<file name>`.
    fn path(&self, key: &FileKey) -> ObjectPath {
        ObjectPath::from(format!(
            "{}day={}/{}",
            self.prefix_slash(),
            key.day,
            key.file_name()
        ))
    }

    fn prefix_slash(&self) -> String {
        let prefix = self.config.prefix.trim_matches('/');
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        }
    }

    /// Runs a request on the directory's runtime and waits for its answer.
    fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        block_on(self.handle(), request)
    }

    /// The directory's runtime, which runs every request.
    fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .0
            .as_ref()
            .expect("a runtime until dropped")
            .handle()
    }

    /// The directory of the folder `sub` of this prefix (e.g. `node=<id>`), over the same
    /// connection.
    pub fn node_dir(&self, sub: &str) -> S3Dir {
        let mut config = self.config.clone();
        config.prefix = format!("{}{}", self.prefix_slash(), sub.trim_matches('/'))
            .trim_matches('/')
            .to_string();
        S3Dir {
            store: self.store.clone(),
            config,
            runtime: self.runtime.clone(),
            reads: self.reads.clone(),
        }
    }

    /// The manifests under this prefix: its own `manifest.json`, then those of its
    /// `node=<id>/` folders, each with its folder (empty for the prefix itself). A folder
    /// without a manifest is listed with `None`.
    pub fn manifests(&self) -> io::Result<Vec<(String, Option<Bytes>)>> {
        let store = self.store.clone();
        let prefix = self.prefix_slash();
        let listed = ObjectPath::from(prefix.trim_end_matches('/'));
        let listing = self.reads.read(|| {
            self.run(async move {
                store
                    .list_with_delimiter(Some(&listed).filter(|p| !p.as_ref().is_empty()))
                    .await
            })
        })?;
        let mut folders = Vec::new();
        let holds_segments = listing
            .common_prefixes
            .iter()
            .any(|p| p.filename().is_some_and(|f| f.starts_with("day=")));
        let has_own = listing
            .objects
            .iter()
            .any(|o| o.location.filename() == Some(MANIFEST_OBJECT));
        if has_own || holds_segments {
            folders.push(String::new());
        }
        folders.extend(
            listing
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename())
                .filter(|f| f.starts_with(NODE_FOLDER))
                .map(str::to_string),
        );
        folders.sort();
        let mut found = Vec::new();
        for folder in folders {
            let dir = self.node_dir(&folder);
            match dir.get_object(MANIFEST_OBJECT) {
                Ok(bytes) => found.push((folder, Some(bytes))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => found.push((folder, None)),
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Reads a whole object of the prefix by name.
    fn get_object(&self, name: &str) -> io::Result<Bytes> {
        let store = self.store.clone();
        let path = ObjectPath::from(format!("{}{name}", self.prefix_slash()));
        self.reads
            .read(|| self.run(async move { store.get(&path).await?.bytes().await }))
    }
}

/// Runs `request` on `runtime` and waits for its answer on the calling thread (any
/// thread: a store's, or a task of another runtime).
fn block_on<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    request: impl Future<Output = object_store::Result<T>> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(request.await);
    });
    match rx.recv() {
        Ok(answer) => answer.map_err(io_error),
        Err(_) => Err(io::Error::other("the bucket's runtime stopped")),
    }
}

/// A request's error as an I/O error whose kind says whether the bucket answered: not
/// found, refused (`PermissionDenied`) and conflicts keep their kinds; anything else (the
/// network, a timeout, a server error) is `Other`.
fn io_error(e: object_store::Error) -> io::Error {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => io::ErrorKind::NotFound,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
        E::AlreadyExists { .. } | E::Precondition { .. } => io::ErrorKind::AlreadyExists,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// An open object: ranges are fetched on the directory's runtime.
#[derive(Debug)]
struct Object {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    handle: tokio::runtime::Handle,
    reads: Arc<ReadGate>,
}

impl ReadAt for Object {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let (store, path) = (self.store.clone(), self.path.clone());
        self.reads.read(|| {
            block_on(&self.handle, async move {
                store.get_range(&path, offset..offset + len as u64).await
            })
        })
    }
}

/// `s3://<bucket>/<prefix>`.
fn location(config: &S3Config) -> String {
    format!("s3://{}/{}", config.bucket, config.prefix.trim_matches('/'))
}

impl SegmentDir for S3Dir {
    fn location(&self) -> String {
        location(&self.config)
    }

    fn claim(&self, node: &str, about: &str) -> io::Result<()> {
        let path = ObjectPath::from(format!("{}{OWNER_OBJECT}", self.prefix_slash()));
        let (store, at) = (self.store.clone(), path.clone());
        let payload = PutPayload::from(about.to_string());
        // Created only if absent (If-None-Match: *): two stores never both win.
        let created = self.run(async move {
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match store.put_opts(&at, payload, options).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })?;
        if created {
            return Ok(());
        }
        let store = self.store.clone();
        let owner = self.run(async move { store.get(&path).await?.bytes().await })?;
        let owner = String::from_utf8_lossy(&owner).to_string();
        let owned_by = serde_json::from_str::<serde_json::Value>(&owner)
            .ok()
            .and_then(|v| v["node"].as_str().map(str::to_string));
        if owned_by.as_deref() == Some(node) {
            Ok(())
        } else {
            Err(claimed_by(&self.location(), owner.trim()))
        }
    }

    fn publish(&self, manifest: Bytes) -> io::Result<()> {
        let store = self.store.clone();
        let path = ObjectPath::from(format!("{}{MANIFEST_OBJECT}", self.prefix_slash()));
        // One writer per prefix (its claim): a plain replacement.
        self.run(async move { store.put(&path, PutPayload::from(manifest)).await })
            .map(drop)
    }

    fn put(&self, key: &FileKey, bytes: Bytes) -> io::Result<()> {
        let (store, path) = (self.store.clone(), self.path(key));
        self.run(async move { store.put(&path, PutPayload::from(bytes)).await })
            .map(drop)
    }

    fn get(&self, key: &FileKey) -> io::Result<Bytes> {
        let (store, path) = (self.store.clone(), self.path(key));
        self.reads
            .read(|| self.run(async move { store.get(&path).await?.bytes().await }))
    }

    fn open(&self, key: &FileKey) -> io::Result<SegmentFile> {
        let (store, path) = (self.store.clone(), self.path(key));
        let head_path = path.clone();
        let head_store = store.clone();
        let meta = self
            .reads
            .read(|| self.run(async move { head_store.head(&head_path).await }))?;
        let object = Object {
            store,
            path,
            handle: self.handle().clone(),
            reads: self.reads.clone(),
        };
        Ok(SegmentFile::new(Arc::new(object), meta.size, false))
    }

    fn delete(&self, key: &FileKey) -> io::Result<()> {
        let (store, path) = (self.store.clone(), self.path(key));
        match self.run(async move { store.delete(&path).await }) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn delete_day(&self, day: &str) -> io::Result<()> {
        let store = self.store.clone();
        let prefix = ObjectPath::from(format!("{}day={day}", self.prefix_slash()));
        self.run(async move {
            let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
            for object in objects {
                match store.delete(&object.location).await {
                    Err(object_store::Error::NotFound { .. }) | Ok(()) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    fn list(&self) -> io::Result<Vec<FileKey>> {
        let store = self.store.clone();
        let prefix = self.prefix_slash();
        let listed = ObjectPath::from(prefix.trim_end_matches('/'));
        let objects: Vec<_> = self.run(async move {
            store
                .list(Some(&listed).filter(|p| !p.as_ref().is_empty()))
                .try_collect()
                .await
        })?;
        let mut keys: Vec<FileKey> = objects
            .iter()
            .filter_map(|o| {
                let rest = o.location.as_ref().strip_prefix(prefix.as_str())?;
                if rest == OWNER_OBJECT || rest == MANIFEST_OBJECT {
                    return None;
                }
                let (day, name) = rest.split_once('/')?;
                let day = day.strip_prefix("day=")?;
                let key = FileKey::parse(day, name);
                if key.is_none() {
                    tracing::warn!(object = %o.location, "an object the store does not know is left in place");
                }
                key
            })
            .collect();
        keys.sort();
        Ok(keys)
    }
}
