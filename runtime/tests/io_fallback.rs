//! The automatic choice of backend: epoll when io_uring is refused (a
//! seccomp filter returning EPERM for `io_uring_setup`, as Docker's default
//! profile does), and `NUMA_RT_IO` forcing one under `IoDriver::Auto`.
//!
//! Each case runs in a child process (this test binary re-run with an
//! environment variable), so the filter never touches the test runner.

mod io_common;

use std::process::Command;
use std::time::Duration;

use numa_rt_runtime::io::{current_backend, Backend, IoDriver};
use numa_rt_runtime::net::{TcpListener, TcpStream};
use numa_rt_runtime::runtime::Builder;

const CASE: &str = "NUMA_RT_FALLBACK_CASE";

fn run_child(test: &str, case: &str, extra_env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, case)
        .env_remove("NUMA_RT_IO");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    text
}

/// Makes `io_uring_setup` fail with EPERM for this process from now on.
fn refuse_io_uring() {
    // BPF_LD | BPF_W | BPF_ABS, and BPF_JMP | BPF_JEQ | BPF_K.
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JEQ_K: u16 = 0x15;
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let filter = [
        // A = seccomp_data.nr
        libc::sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: BPF_JMP_JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        libc::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY (test): prctl with a live filter program; results checked.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A TCP round trip on `rt`, reporting the backend it ran on.
fn round_trip(builder: &mut Builder) -> Backend {
    let rt = builder.enable_all().build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = numa_rt_runtime::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (r, buf) = s.read_owned(Vec::with_capacity(16)).await;
            assert_eq!(r.unwrap(), 4);
            let (r, _) = s.write_all_owned(buf).await;
            r.unwrap();
        });
        let c = TcpStream::connect(addr).await.unwrap();
        let (r, _) = c.write_all_owned(b"ping".to_vec()).await;
        r.unwrap();
        let (r, got) = c.read_owned(Vec::with_capacity(16)).await;
        assert_eq!(r.unwrap(), 4);
        assert_eq!(&got[..], b"ping");
        numa_rt_runtime::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        current_backend().unwrap()
    })
}

#[test]
fn refused_io_uring_falls_back_to_epoll() {
    match std::env::var(CASE).as_deref() {
        Ok("seccomp") => {
            refuse_io_uring();
            let mut b = Builder::new_multi_thread();
            b.worker_threads(2).pin_workers(false);
            assert_eq!(round_trip(&mut b), Backend::Epoll);
            assert_eq!(
                round_trip(&mut Builder::new_current_thread()),
                Backend::Epoll
            );
            // Asking for io_uring explicitly is a clear error, not a panic.
            let err = Builder::new_current_thread()
                .enable_all()
                .io_driver(IoDriver::Uring)
                .build()
                .unwrap_err();
            assert!(err.to_string().contains("io_uring"), "{err}");
            println!("fallback: epoll");
        }
        Ok(_) => {}
        Err(_) => {
            let out = run_child("refused_io_uring_falls_back_to_epoll", "seccomp", &[]);
            assert!(out.contains("fallback: epoll"), "{out}");
        }
    }
}

#[test]
fn env_forces_the_backend_under_auto() {
    match std::env::var(CASE).as_deref() {
        Ok("env") => {
            let want = match std::env::var("NUMA_RT_IO").as_deref() {
                Ok("epoll") => Backend::Epoll,
                _ => Backend::Uring,
            };
            let mut b = Builder::new_multi_thread();
            b.worker_threads(1).pin_workers(false);
            assert_eq!(round_trip(&mut b), want);
            // An explicit builder choice wins over the environment.
            let mut b = Builder::new_current_thread();
            b.io_driver(IoDriver::Epoll);
            assert_eq!(round_trip(&mut b), Backend::Epoll);
            println!("env: ok");
        }
        Ok(_) => {}
        Err(_) => {
            let out = run_child(
                "env_forces_the_backend_under_auto",
                "env",
                &[("NUMA_RT_IO", "epoll")],
            );
            assert!(out.contains("env: ok"), "{out}");
            if io_common::drivers().contains(&IoDriver::Uring) {
                let out = run_child(
                    "env_forces_the_backend_under_auto",
                    "env",
                    &[("NUMA_RT_IO", "uring")],
                );
                assert!(out.contains("env: ok"), "{out}");
            }
        }
    }
}

#[test]
fn bad_env_value_is_a_clear_build_error() {
    if std::env::var(CASE).as_deref() == Ok("badenv") {
        let err = Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("NUMA_RT_IO"), "{err}");
        println!("badenv: ok");
        return;
    }
    if std::env::var(CASE).is_ok() {
        return;
    }
    let out = run_child(
        "bad_env_value_is_a_clear_build_error",
        "badenv",
        &[("NUMA_RT_IO", "kqueue")],
    );
    assert!(out.contains("badenv: ok"), "{out}");
}
