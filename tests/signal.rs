//! `numa_rt::signal` through the facade: the process sends itself signals
//! (`kill(getpid(), ...)`) and the listeners see them, on both runtime
//! flavors.

use std::time::Duration;

use numa_rt::signal::unix::{signal, SignalKind};
use numa_rt::time::timeout;

fn raise(signo: libc::c_int) {
    // SAFETY: kill on our own pid; every signal sent here has a listener
    // (and so our handler) installed first.
    assert_eq!(unsafe { libc::kill(libc::getpid(), signo) }, 0);
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn ctrl_c_completes_on_sigint() {
    let rt = numa_rt::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The handler is installed synchronously here, so an early SIGINT
        // cannot take the default action (ending the test process).
        let _guard = signal(SignalKind::interrupt()).unwrap();
        let waiter = numa_rt::spawn(numa_rt::signal::ctrl_c());
        // ctrl_c installs its listener when first polled: keep sending until
        // it completes, so the test does not depend on who runs first.
        let mut waiter = std::pin::pin!(waiter);
        for _ in 0..100 {
            if let Ok(done) = timeout(Duration::from_millis(50), waiter.as_mut()).await {
                done.unwrap().unwrap();
                return;
            }
            raise(libc::SIGINT);
        }
        panic!("ctrl_c never completed");
    });
}

#[test]
fn sigterm_and_sighup_streams_on_a_current_thread_runtime() {
    let rt = numa_rt::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate()).unwrap();
        let mut hup = signal(SignalKind::hangup()).unwrap();
        for _ in 0..3 {
            raise(libc::SIGHUP);
            assert_eq!(timeout(WAIT, hup.recv()).await, Ok(Some(())));
        }
        raise(libc::SIGTERM);
        assert_eq!(timeout(WAIT, term.recv()).await, Ok(Some(())));
        // Nothing more was sent: no delivery is left over.
        assert!(timeout(Duration::from_millis(50), hup.recv())
            .await
            .is_err());
    });
}

#[test]
fn deliveries_before_a_receive_coalesce() {
    let rt = numa_rt::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut quit = signal(SignalKind::quit()).unwrap();
        for _ in 0..5 {
            raise(libc::SIGQUIT);
        }
        // Let the signal thread deliver all five.
        numa_rt::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(timeout(WAIT, quit.recv()).await, Ok(Some(())));
        assert!(timeout(Duration::from_millis(50), quit.recv())
            .await
            .is_err());
    });
}

#[test]
fn a_stream_is_a_futures_stream() {
    use futures_core::Stream;
    let rt = numa_rt::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut alarm = signal(SignalKind::alarm()).unwrap();
        raise(libc::SIGALRM);
        let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut alarm).poll_next(cx));
        assert_eq!(timeout(WAIT, next).await, Ok(Some(())));
    });
}
