//! `GET /metrics` over HTTP/1.1, the one endpoint of `hotkey-proxy` and `hotkey exporter`:
//! the exposition at `/metrics`, a pointer at `/`, 404 elsewhere, a bound on how long a
//! scraper may take to send its request headers, and a stop that waits a few seconds for
//! scrapes in progress.
//!
//! hyper 1 with hyper-util, not axum: two fixed paths need no router, and hyper is already in
//! the build of anything that speaks HTTP, so it adds the fewest crates. What the text says is
//! the caller's (`prometheus-client` in both).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// The content type of the exposition: the OpenMetrics text format, which Prometheus reads.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the other answers.
const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";

/// How long a scraper may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a stop waits for scrapes in progress.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long to wait after a failed `accept` before the next: an immediate retry would spin on
/// `EMFILE`.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// One scrape in progress: the exposition text, or why it could not be made.
pub type Scrape = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Something that went wrong while serving, for the caller's log. None of it stops the
/// endpoint.
#[derive(Debug)]
#[non_exhaustive]
pub enum Trouble<'a> {
    /// `accept` failed (out of file descriptors, a connection reset before it was accepted);
    /// the next is tried after a pause.
    Accept(&'a io::Error),
    /// A scrape failed; the scraper got a 500.
    Scrape(&'a str),
    /// A connection ended with an error (a scraper gone mid-request, headers too slow).
    Connection(&'a hyper::Error),
    /// Scrapes were still open [`STOP_GRACE`] after the stop; they were closed.
    StillOpen,
}

/// What an endpoint serves.
pub struct Endpoint {
    /// What `GET /` answers: who serves, and that the metrics are at `/metrics`.
    pub index: &'static str,
    /// Makes the text of one scrape.
    pub scrape: Box<dyn Fn() -> Scrape + Send + Sync>,
    /// Told of each [`Trouble`].
    pub log: fn(Trouble<'_>),
}

/// Serves `endpoint` on `listener` until `stop` completes, then waits up to [`STOP_GRACE`] for
/// scrapes in progress.
pub async fn serve(listener: TcpListener, endpoint: Endpoint, stop: impl Future<Output = ()>) {
    let endpoint = Arc::new(endpoint);
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        (endpoint.log)(Trouble::Accept(&error));
                        tokio::time::sleep(ACCEPT_PAUSE).await;
                        continue;
                    }
                };
                let service = {
                    let endpoint = Arc::clone(&endpoint);
                    service_fn(move |request| {
                        let endpoint = Arc::clone(&endpoint);
                        async move { Ok::<_, Infallible>(respond(&endpoint, &request).await) }
                    })
                };
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                let log = endpoint.log;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        log(Trouble::Connection(&error));
                    }
                });
            }
            () = &mut stop => break,
        }
    }
    if tokio::time::timeout(STOP_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        (endpoint.log)(Trouble::StillOpen);
    }
}

async fn respond<B>(endpoint: &Endpoint, request: &Request<B>) -> Response<Full<Bytes>> {
    let get = request.method() == Method::GET;
    match (get, request.uri().path()) {
        (true, "/metrics") => match (endpoint.scrape)().await {
            Ok(text) => reply(StatusCode::OK, CONTENT_TYPE_OPENMETRICS, text),
            Err(error) => {
                (endpoint.log)(Trouble::Scrape(&error));
                reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    CONTENT_TYPE_TEXT,
                    "the metrics could not be encoded\n".into(),
                )
            }
        },
        (true, "/") => reply(StatusCode::OK, CONTENT_TYPE_TEXT, endpoint.index.into()),
        _ => reply(
            StatusCode::NOT_FOUND,
            CONTENT_TYPE_TEXT,
            "not found: GET /metrics\n".into(),
        ),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests;
