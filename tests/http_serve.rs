//! `numa_rt::serve` in-process: an axum `Router` over HTTP/1.1 and HTTP/2,
//! graceful shutdown with requests in flight, per-node listeners on a
//! synthetic two-node topology, and the numa_rt timeout layer.

mod http_common;

use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use numa_rt::hyper::{Executor, TimeoutLayer, Timer, TokioIo};
use numa_rt::net::TcpListener;
use numa_rt::runtime::Builder;
use numa_rt::topology::{Synthetic, Topology};
use tokio::sync::oneshot;

use http_common::Client;

fn app() -> Router {
    Router::new()
        .route(
            "/users/{id}",
            get(|Path(id): Path<u64>| async move { format!("user-{id}") }),
        )
        .route(
            "/slow/{ms}",
            get(|Path(ms): Path<u64>| async move {
                numa_rt::time::sleep(Duration::from_millis(ms)).await;
                format!("slept {ms}")
            }),
        )
        .route(
            "/node",
            get(|| async {
                numa_rt::task::current_node().map_or_else(|| "none".to_string(), |n| n.to_string())
            }),
        )
}

fn runtime() -> numa_rt::Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts `serve` on a fresh port; the sender stops it.
async fn start(
    router: Router,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    numa_rt::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = numa_rt::spawn(async move {
        numa_rt::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    (addr, stop, server)
}

async fn get_http2(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let stream = numa_rt::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(Executor::new())
        .timer(Timer::new())
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let driver = numa_rt::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::get(format!("http://{addr}{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    drop(sender);
    let _ = driver.await;
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[test]
fn serves_a_router_over_http1_and_http2() {
    runtime().block_on(async {
        let (addr, stop, server) = start(app()).await;
        let mut c = Client::connect(addr).await.unwrap();
        let (status, body) = c.get("/users/5").await.unwrap();
        assert_eq!((status.as_u16(), body.as_str()), (200, "user-5"));
        assert_eq!(
            get_http2(addr, "/users/6").await,
            (200, "user-6".to_string())
        );
        assert_eq!(get_http2(addr, "/nope").await.0, 404);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    });
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests_then_returns() {
    runtime().block_on(async {
        let (addr, stop, server) = start(app()).await;
        let mut slow_clients = Vec::new();
        for ms in [300, 400] {
            let mut c = Client::connect(addr).await.unwrap();
            slow_clients.push(numa_rt::spawn(async move {
                c.get(&format!("/slow/{ms}")).await.unwrap()
            }));
        }
        // An idle keep-alive connection must not hold the server open.
        let mut idle = Client::connect(addr).await.unwrap();
        assert_eq!(idle.get("/users/1").await.unwrap().0, 200);
        numa_rt::time::sleep(Duration::from_millis(100)).await;
        let stopped_at = Instant::now();
        stop.send(()).unwrap();
        for (i, t) in slow_clients.into_iter().enumerate() {
            let (status, body) = t.await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(body, format!("slept {}", [300, 400][i]));
        }
        numa_rt::time::timeout(Duration::from_secs(2), server)
            .await
            .expect("serve did not return after its shutdown signal")
            .unwrap()
            .unwrap();
        assert!(stopped_at.elapsed() < Duration::from_secs(2));
        // The listener is closed: nothing accepts any more.
        assert!(numa_rt::net::TcpStream::connect(addr).await.is_err());
    });
}

#[test]
fn per_node_listeners_serve_connections_on_every_node() {
    let topo = Topology::synthetic(&Synthetic::new(2, 1)).unwrap();
    let rt = Builder::new_multi_thread()
        .topology(topo)
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listeners = TcpListener::bind_per_node("127.0.0.1:0").await.unwrap();
        assert_eq!(listeners.len(), 2);
        let addr = listeners[0].1.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = numa_rt::serve(listeners, app()).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        let server = numa_rt::spawn(std::future::IntoFuture::into_future(serve));
        let mut seen = std::collections::BTreeSet::new();
        // SO_REUSEPORT spreads connections over both listeners by a hash of
        // the client's port: 64 connections all landing on one of two
        // listeners would be a 2^-63 event.
        for _ in 0..64 {
            let mut c = Client::connect(addr).await.unwrap();
            let (status, node) = c.get("/node").await.unwrap();
            assert_eq!(status, 200);
            seen.insert(node);
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            vec![
                numa_rt::NodeId::new(0).to_string(),
                numa_rt::NodeId::new(1).to_string()
            ]
        );
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    });
}

#[test]
fn timeout_layer_answers_408_in_a_router() {
    runtime().block_on(async {
        let router = app().layer(TimeoutLayer::new(Duration::from_millis(50)));
        let (addr, stop, server) = start(router).await;
        let mut c = Client::connect(addr).await.unwrap();
        let started = Instant::now();
        let (status, body) = c.get("/slow/5000").await.unwrap();
        assert_eq!((status.as_u16(), body.as_str()), (408, ""));
        assert!(started.elapsed() < Duration::from_secs(2));
        let (status, _) = c.get("/users/2").await.unwrap();
        assert_eq!(status, 200);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    });
}

#[test]
fn serve_with_no_listener_is_an_error() {
    runtime().block_on(async {
        let none: Vec<(numa_rt::NodeId, TcpListener)> = Vec::new();
        let err = numa_rt::serve(none, app()).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("no listeners"), "{err}");
    });
}
