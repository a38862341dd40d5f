//! millrace's HTTP server for `/metrics` and `/health`: a small router (path → handler) on hyper's
//! HTTP/1 server, with every resource a client can hold bounded — request head bytes and header
//! count, the time to send the head, the whole life of a connection, and connections at once
//! (admitted before anything is read; further ones are closed at once). One request per
//! connection, `GET` and `HEAD` only: scrapers and health checks need nothing more. Shared by the
//! broker's admin listener, `millrace agent` and `millrace sink`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

pub use hyper::StatusCode;

#[cfg(test)]
mod tests;

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";
/// Longest request head (request line and headers) of the agent's and sinks' endpoints.
pub const MAX_HEAD_BYTES: usize = 8 << 10;
/// Most header lines in a head.
pub const MAX_HEADERS: usize = 64;
/// Time a client of the agent's and sinks' endpoints has to send its whole head, and then again
/// to take the answer: a client sending a byte now and then cannot hold a connection longer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections the agent's and sinks' endpoints serve at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Time requests in progress get to finish once shutdown is asked for; a stuck client must not
/// hold up the process's exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// hyper's smallest read buffer; a smaller head limit is enforced on the parsed head instead.
const MIN_READ_BUFFER: usize = 8 << 10;

/// Produces the `/metrics` body.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// What a handler answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    /// A 200 answer.
    pub fn ok(content_type: &'static str, body: String) -> Reply {
        Reply { status: StatusCode::OK, content_type, body }
    }

    /// A plain-text answer with `status`.
    pub fn text(status: StatusCode, body: impl Into<String>) -> Reply {
        Reply { status, content_type: "text/plain", body: body.into() }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() = self.status;
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        response
    }
}

type Handler = Arc<dyn Fn() -> Reply + Send + Sync>;

/// Paths and the handlers that answer them. Handlers run on a blocking thread, since rendering
/// metrics may take a while.
#[derive(Clone, Default)]
pub struct Router {
    routes: Vec<(&'static str, Handler)>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Answers `GET path` (and `HEAD path`) with `handler`.
    pub fn route(mut self, path: &'static str, handler: impl Fn() -> Reply + Send + Sync + 'static) -> Router {
        self.routes.push((path, Arc::new(handler)));
        self
    }

    /// The answer to `method path` (`path` without its query).
    pub async fn respond(&self, method: &Method, path: &str) -> Reply {
        if method != Method::GET && method != Method::HEAD {
            return Reply::text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported\n");
        }
        let Some((_, handler)) = self.routes.iter().find(|(route, _)| *route == path) else {
            let paths: Vec<&str> = self.routes.iter().map(|(route, _)| *route).collect();
            return Reply::text(StatusCode::NOT_FOUND, format!("endpoints: {}\n", paths.join(" ")));
        };
        let handler = handler.clone();
        match tokio::task::spawn_blocking(move || handler()).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(%path, error = %e, "HTTP handler failed");
                Reply::text(StatusCode::INTERNAL_SERVER_ERROR, "the handler failed\n")
            }
        }
    }
}

/// What one client may take of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request head (request line and headers); a longer one is answered 431.
    pub max_head_bytes: usize,
    /// Most header lines in a head; more are answered 431.
    pub max_headers: usize,
    /// Time for the whole head to arrive, counted from the connection's start.
    pub header_timeout: Duration,
    /// Time a connection may live in all: head, handler and taking the answer.
    pub connection_timeout: Duration,
}

impl Limits {
    /// The agent's and sinks' `/metrics` endpoints.
    pub const METRICS: Limits = Limits {
        max_head_bytes: MAX_HEAD_BYTES,
        max_headers: MAX_HEADERS,
        header_timeout: CLIENT_TIMEOUT,
        connection_timeout: Duration::from_secs(2 * CLIENT_TIMEOUT.as_secs()),
    };

    fn http1(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            // The read buffer's cap stops reading an endless head; the header size check covers
            // limits below hyper's smallest buffer.
            .max_buf_size(self.max_head_bytes.max(MIN_READ_BUFFER))
            .max_header_size(self.max_head_bytes)
            .max_headers(self.max_headers)
            // One request per connection: an idle kept-alive connection would hold a slot.
            .keep_alive(false);
        builder
    }
}

/// Why the server ended a connection it had admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The head was over [`Limits::max_head_bytes`] or [`Limits::max_headers`] (answered 431).
    HeadTooLarge,
    /// The head did not arrive within [`Limits::header_timeout`], or the connection outlived
    /// [`Limits::connection_timeout`].
    Timeout,
}

impl Closed {
    /// A metric label for the reason.
    pub fn label(self) -> &'static str {
        match self {
            Closed::HeadTooLarge => "head_too_large",
            Closed::Timeout => "timeout",
        }
    }
}

/// Decides which connections are served; the slot it hands out is held for the connection's life.
pub trait Admission: Send + Sync + 'static {
    type Slot: Send + 'static;

    /// A place for a connection from `peer`, or None to close it at once.
    fn admit(&self, peer: SocketAddr) -> Option<Self::Slot>;

    /// Told when the server ends an admitted connection for a limit.
    fn closed(&self, _slot: &Self::Slot, _why: Closed) {}
}

/// At most a fixed number of connections at once; a refusal is logged at most every 10 s.
pub struct MaxConnections {
    name: &'static str,
    max: usize,
    slots: Arc<Semaphore>,
    warned: Mutex<Option<Instant>>,
}

impl MaxConnections {
    pub fn new(name: &'static str, max: usize) -> MaxConnections {
        MaxConnections { name, max, slots: Arc::new(Semaphore::new(max)), warned: Mutex::new(None) }
    }
}

impl Admission for MaxConnections {
    type Slot = OwnedSemaphorePermit;

    fn admit(&self, _peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
        let slot = self.slots.clone().try_acquire_owned().ok();
        if slot.is_none() {
            let mut warned = self.warned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(endpoint = self.name, max = self.max, "too many connections; closing new ones");
                *warned = Some(Instant::now());
            }
        }
        slot
    }
}

/// Serves `GET /metrics` (anything else: 404) with [`Limits::METRICS`] and at most
/// [`MAX_CONNECTIONS`] at once until shutdown; `render` produces the body.
pub async fn serve(listener: TcpListener, render: Render, shutdown: watch::Receiver<bool>) {
    let router = Router::new().route("/metrics", move || Reply::ok(PROMETHEUS_TEXT, render()));
    let admission = MaxConnections::new("metrics", MAX_CONNECTIONS);
    serve_with(listener, "metrics", router, Limits::METRICS, admission, shutdown).await;
}

/// Serves `router` on `listener` until `shutdown` changes, then lets requests in progress finish
/// for a short while. `name` tells the listener apart in logs.
pub async fn serve_with<A: Admission>(
    listener: TcpListener,
    name: &'static str,
    router: Router,
    limits: Limits,
    admission: A,
    mut shutdown: watch::Receiver<bool>,
) {
    let (router, admission, http1) = (Arc::new(router), Arc::new(admission), limits.http1());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Some(slot) = admission.admit(peer) else {
            drop(stream);
            continue;
        };
        let router = router.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            async move {
                let reply = router.respond(request.method(), request.uri().path()).await;
                Ok::<_, Infallible>(reply.into_response())
            }
        });
        let connection = graceful.watch(http1.serve_connection(TokioIo::new(stream), service));
        let admission = admission.clone();
        tokio::spawn(async move {
            let closed = match tokio::time::timeout(limits.connection_timeout, connection).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) if e.is_parse_too_large() => Some(Closed::HeadTooLarge),
                Ok(Err(e)) if e.is_timeout() => Some(Closed::Timeout),
                Ok(Err(e)) => {
                    tracing::debug!(listener = name, %peer, error = %e, "HTTP connection failed");
                    None
                }
                Err(_) => Some(Closed::Timeout),
            };
            if let Some(why) = closed {
                tracing::debug!(listener = name, %peer, reason = why.label(), "HTTP connection closed");
                admission.closed(&slot, why);
            }
            drop(slot);
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::debug!(listener = name, "HTTP connections still open at shutdown; leaving them");
    }
}
