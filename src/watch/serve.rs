//! `watch --metrics ADDR`: `/metrics` (Prometheus text), `/healthz` (the daemon's loop is
//! alive) and `/readyz` (its first pass is over) over plain HTTP.
//!
//! The listener is bound by the caller before the daemon enters its namespace, so the
//! endpoint lives where the administrator (or the kubelet) runs, not in the managed
//! namespace. It is served by `tiny_http` on a thread of its own: scrapes never wait for a
//! pass, and a pass never waits for a slow scraper.

use std::net::SocketAddr;
use std::sync::Arc;

use tiny_http::{Header, Method, Request, Response, Server};

use super::liveness::Liveness;
use super::metrics::Metrics;

/// Where `--metrics` listens when given no address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9581";

/// The content type of the exposition `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A bound endpoint, not yet serving.
pub struct Endpoint {
    server: Server,
    addr: SocketAddr,
}

/// The endpoint could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for --metrics on {addr}: {source}")]
pub struct BindError {
    addr: SocketAddr,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl Endpoint {
    /// Listen on `addr`; a non-loopback address is allowed but warned about.
    pub fn bind(addr: SocketAddr) -> Result<Endpoint, BindError> {
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "--metrics {addr} is reachable from the network: the metrics name links, \
                 routes and providers"
            );
        }
        let server = Server::http(addr).map_err(|source| BindError { addr, source })?;
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        Ok(Endpoint { server, addr })
    }

    /// The address it listens on (the port chosen by the kernel for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve on a thread of its own until the process ends.
    pub fn spawn(self, metrics: Arc<Metrics>, live: Arc<Liveness>) {
        let spawned = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in self.server.incoming_requests() {
                    respond(request, &metrics, &live);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the --metrics thread: {e}");
        }
    }
}

/// What a request gets: status, content type, body.
fn answer(
    method: &Method,
    url: &str,
    metrics: &Metrics,
    live: &Liveness,
) -> (u16, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if *method != Method::Get && *method != Method::Head {
        return (405, TEXT, "only GET\n".into());
    }
    match url.split('?').next().unwrap_or_default() {
        "/metrics" => (200, OPENMETRICS, metrics.render()),
        "/healthz" if live.alive() => (200, TEXT, "ok\n".into()),
        "/healthz" => (503, TEXT, "the daemon's loop has stopped beating\n".into()),
        "/readyz" if live.ready() => (200, TEXT, "ready\n".into()),
        "/readyz" => (503, TEXT, "the first pass is not over yet\n".into()),
        _ => (404, TEXT, "try /metrics, /healthz or /readyz\n".into()),
    }
}

fn respond(request: Request, metrics: &Metrics, live: &Liveness) {
    let (status, content_type, body) = answer(request.method(), request.url(), metrics, live);
    let header = Header::from_bytes("Content-Type", content_type).expect("a valid header");
    let response = Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    // A scraper that hung up is its own problem.
    let _ = request.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_answers_with_its_status() {
        let m = Metrics::new();
        let live = Liveness::default();
        let get = |url| answer(&Method::Get, url, &m, &live).0;
        assert_eq!(get("/metrics"), 200);
        assert_eq!(get("/healthz"), 503, "no beat yet");
        assert_eq!(get("/readyz"), 503);
        live.beat();
        live.set_ready();
        assert_eq!(get("/healthz"), 200);
        assert_eq!(get("/readyz?verbose"), 200);
        assert_eq!(get("/"), 404);
        assert_eq!(answer(&Method::Post, "/metrics", &m, &live).0, 405);
        assert!(answer(&Method::Get, "/metrics", &m, &live)
            .2
            .contains("netconverge_passes"));
    }
}
