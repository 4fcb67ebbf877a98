//! A loopback HTTP/1.1 server on hyper, for the tests' stand-ins of faults a real part
//! cannot produce ([`super::fault_proxy::FaultProxy`], [`super::FakeServer`]): one accept
//! loop on a runtime of its own thread, stopped when its handle is dropped.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;

/// A response body.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A running server; it serves until dropped.
pub struct Server {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Serves `handle` on a new loopback port.
pub fn serve<F, Fut>(handle: F) -> Server
where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<hyper::Response<Body>, Infallible>> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = tokio::select! {
                    _ = &mut stopped => return,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                };
                let handle = handle.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(handle);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Server {
        addr,
        stop: Some(stop),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
