//! The HTTP/1 server: an accept loop bounded by `server.max_connections`, and per connection
//! the timeouts that keep slow or silent clients from holding descriptors and memory.
//!
//! - A connection waiting for a request (just opened, or after an answer) that receives
//!   nothing for `idle_timeout` is closed.
//! - Once the first byte of a request arrives, its head (request line and headers) must be
//!   complete within `header_timeout`, or the connection is closed.
//! - A request body must arrive whole within `body_timeout` of its head: reading it then
//!   fails with [`BodyTimeout`], which the handlers answer with
//!   `408 body_timeout`.
//! - At most `max_connections` connections are open at once: past that the accept loop
//!   pauses, and new connections wait in the kernel's backlog until one closes.
//!
//! On shutdown the listener closes, idle connections close at once, and the server waits
//! for the answers in progress, at most `shutdown_timeout`: then their connections close.
//!
//! With [`ServerOptions::tls`] (`[server] tls_cert` and `tls_key`) the server speaks HTTPS
//! only: each connection's TLS handshake must end within `header_timeout`, and a client that
//! speaks plain HTTP to the port has its connection closed. The certificate is read again
//! when its files change (`logyard-tls`), so a renewal needs no restart and drops no
//! connection. Every request carries a [`ConnectionInfo`] in its extensions: the client's
//! address, whether the connection is TLS, and the name of a verified client certificate
//! (`tls_client_ca`), which [`crate::auth::check`] takes as an ingest identity.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::body::BodyTimeout;

/// Settings of the server's connections (`[server]`).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The longest wait for a request head once its first byte arrived.
    pub header_timeout: Duration,
    /// The longest time for a request body to arrive, from the end of its head.
    pub body_timeout: Duration,
    /// A connection waiting for a request is closed after this long without a byte.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// At shutdown, how long answers in progress (exports, live tails) may take before their
    /// connections are closed.
    pub shutdown_timeout: Duration,
    /// HTTPS with this certificate (and client CA); `None` serves plain HTTP.
    pub tls: Option<logyard_tls::ServerTls>,
}

/// What the server knows of the connection a request came on: in every request's
/// extensions (absent only when a router is called without the server, as in unit tests).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The connection is TLS (`[server] tls_cert`): what the server sets, a cookie for
    /// one, may be marked `Secure`.
    pub tls: bool,
    /// The name (CN, else first DNS name) of the client certificate the client presented,
    /// verified against `tls_client_ca`.
    pub client_cert: Option<String>,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// What a connection's watchdog reads: the requests in progress and when the connection
/// last became idle or started receiving a request head.
#[derive(Debug)]
struct Activity {
    state: Mutex<ActivityState>,
}

#[derive(Debug)]
struct ActivityState {
    in_flight: usize,
    idle_since: Instant,
    head_started: Option<Instant>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: Instant::now(),
                head_started: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes were read: between requests, they start a request head.
    fn read(&self) {
        let mut s = self.lock();
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
        }
    }

    /// Returns why the connection should be closed now, if it should.
    fn expired(&self, opts: &ServerOptions) -> Option<&'static str> {
        let s = self.lock();
        if s.in_flight > 0 {
            return None;
        }
        match s.head_started {
            Some(t) if t.elapsed() > opts.header_timeout => Some("header_timeout"),
            None if s.idle_since.elapsed() > opts.idle_timeout => Some("idle_timeout"),
            _ => None,
        }
    }
}

/// Marks a request in progress until its answer is written (or dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        let mut s = activity.lock();
        s.in_flight += 1;
        s.head_started = None;
        drop(s);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
        }
    }
}

/// A connection (TCP, or TLS over TCP) that tells its [`Activity`] when it reads.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that fails with [`BodyTimeout`] once its deadline has passed.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(self.timeout))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that keeps its request counted as in progress until it is written.
struct Answer {
    inner: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The most descriptors a process may open (its soft `RLIMIT_NOFILE`), read from
/// `/proc/self/limits`; `None` where that cannot be read.
fn descriptor_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The connection limit in force: `max_connections`, but at most half the process's
/// descriptor limit, so that the store's files and the collectors always have descriptors
/// left.
pub fn effective_max_connections(configured: usize) -> usize {
    let cap = descriptor_limit().map_or(usize::MAX, |n| (n / 2).max(1));
    configured
        .clamp(1, cap)
        .min(Semaphore::MAX_PERMITS)
        .min(u32::MAX as usize)
}

/// Serves `app` on `listener` with the connection settings until `shutdown` completes,
/// then waits for the answers in progress.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: crate::LiveApp,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = effective_max_connections(opts.max_connections);
    if max < opts.max_connections {
        tracing::warn!(
            configured = opts.max_connections,
            max,
            "server.max_connections is above half the descriptor limit (ulimit -n); serving at most {max} connections at once"
        );
    }
    let permits = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let opts = Arc::new(opts);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Waits while `max` connections are open: new ones stay in the kernel's backlog.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Most often EMFILE/ENFILE: wait for descriptors to be freed.
                    tracing::warn!(error = %e, "cannot accept a connection; retrying in 100 ms");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let opts = opts.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            match &opts.tls {
                None => {
                    let info = ConnectionInfo {
                        peer,
                        tls: false,
                        client_cert: None,
                    };
                    connection(stream, info, app, &opts, stop).await;
                }
                Some(tls) => {
                    if let Some((stream, info)) =
                        handshake(tls, stream, peer, &opts, stop.clone()).await
                    {
                        connection(stream, info, app, &opts, stop).await;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it ends.
    let _ = permits.acquire_many(max as u32).await;
    Ok(())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Performs the server's side of a TLS handshake, within `header_timeout` and until the
/// server stops; a failed handshake (a plain HTTP client, an untrusted client certificate)
/// closes the connection.
async fn handshake(
    tls: &logyard_tls::ServerTls,
    stream: TcpStream,
    peer: SocketAddr,
    opts: &ServerOptions,
    mut stop: watch::Receiver<bool>,
) -> Option<(logyard_tls::TlsStream<TcpStream>, ConnectionInfo)> {
    if *stop.borrow() {
        return None;
    }
    let accept = tokio::time::timeout(opts.header_timeout, tls.acceptor().accept(stream));
    let stream = tokio::select! {
        r = accept => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed; closing the connection");
                return None;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake outlasted server.header_timeout; closing the connection");
                return None;
            }
        },
        _ = stop.changed() => return None,
    };
    let info = ConnectionInfo {
        peer,
        tls: true,
        client_cert: logyard_tls::client_name(stream.get_ref().1),
    };
    Some((stream, info))
}

/// Serves one connection until it ends, times out, or the server stops.
async fn connection<S>(
    stream: S,
    info: ConnectionInfo,
    app: crate::LiveApp,
    opts: &ServerOptions,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let body_timeout = opts.body_timeout;
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let in_flight = InFlight::start(&activity);
            req.extensions_mut().insert(info.clone());
            let req = req.map(|inner| {
                Body::new(TimedBody {
                    inner,
                    deadline: Box::pin(tokio::time::sleep(body_timeout)),
                    timeout: body_timeout,
                })
            });
            // The application current now: a reload changes it for the next request.
            let app = app.router();
            async move {
                let response = match app.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|inner| {
                    Body::new(Answer {
                        inner,
                        _in_flight: in_flight,
                    })
                }))
            }
        })
    };
    // Half-closed: a client that shuts its side after a (cut) body still gets its answer.
    let conn = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let check_every = (opts.header_timeout.min(opts.idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = *stop.borrow();
    let drain = tokio::time::sleep(Duration::MAX / 4);
    let mut drain = std::pin::pin!(drain);
    if stopping {
        conn.as_mut().graceful_shutdown();
        drain
            .as_mut()
            .reset(tokio::time::Instant::now() + opts.shutdown_timeout);
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                let _ = changed;
                stopping = true;
                // Closes the connection now if it is idle, else after the answer in progress
                // or at the end of the drain, whichever comes first.
                conn.as_mut().graceful_shutdown();
                drain.as_mut().reset(tokio::time::Instant::now() + opts.shutdown_timeout);
            }
            _ = drain.as_mut(), if stopping => {
                tracing::debug!("closing a connection whose answer outlasted server.shutdown_timeout");
                return;
            }
            _ = tick.tick() => {
                if let Some(why) = activity.expired(opts) {
                    tracing::debug!(reason = why, "closing a connection");
                    return;
                }
            }
        }
    }
}
