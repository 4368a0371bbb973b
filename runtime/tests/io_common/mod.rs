//! Shared by the I/O test files: run a test body on every driver and
//! flavor.

#![allow(dead_code)]

use std::future::Future;

use numa_rt_runtime::io::{Backend, IoDriver};
use numa_rt_runtime::runtime::{Builder, Runtime};

/// The drivers every I/O test runs on. io_uring is skipped (with a note)
/// where the kernel refuses it, and when `NUMA_RT_IO=epoll` asks for epoll
/// alone (scripts/valgrind-runtime: valgrind cannot follow io_uring).
pub fn drivers() -> Vec<IoDriver> {
    let mut out = vec![IoDriver::Epoll];
    if std::env::var("NUMA_RT_IO").as_deref() == Ok("epoll") {
        eprintln!("NUMA_RT_IO=epoll: testing epoll only");
        return out;
    }
    match Builder::new_current_thread()
        .enable_all()
        .io_driver(IoDriver::Uring)
        .build()
    {
        Ok(_) => out.push(IoDriver::Uring),
        Err(e) => eprintln!("io_uring unavailable, testing epoll only: {e}"),
    }
    out
}

pub fn multi(driver: IoDriver, workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .pin_workers(false)
        .enable_all()
        .io_driver(driver)
        .build()
        .unwrap()
}

pub fn current(driver: IoDriver) -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .io_driver(driver)
        .build()
        .unwrap()
}

/// Runs `body` on every driver, on a current-thread runtime and on a
/// two-worker multi-thread runtime.
pub fn on_all<F, Fut>(body: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for driver in drivers() {
        eprintln!("-- {driver:?}, current_thread");
        current(driver).block_on(body());
        eprintln!("-- {driver:?}, multi_thread");
        let rt = multi(driver, 2);
        // Run inside a task (on a worker) and from block_on itself.
        rt.block_on(async {
            numa_rt_runtime::spawn(body()).await.unwrap();
        });
        rt.block_on(body());
    }
}

pub fn backend_of(driver: IoDriver) -> Backend {
    match driver {
        IoDriver::Epoll => Backend::Epoll,
        _ => Backend::Uring,
    }
}

/// Polls `fut` once with a waker that does nothing (to start an operation
/// without waiting for it).
pub fn poll_once<F: Future + ?Sized>(fut: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    let waker = noop_waker();
    fut.poll(&mut std::task::Context::from_waker(&waker))
}

/// A waker that does nothing (`Waker::noop` needs Rust 1.85; MSRV is 1.80).
pub fn noop_waker() -> std::task::Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    std::task::Waker::from(std::sync::Arc::new(Noop))
}
