//! Name resolution on the blocking pool.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `host` (`"name:port"`, `("name", port)`, a `SocketAddr`, ...)
/// to socket addresses. The lookup (which may block on DNS) runs on the
/// runtime's blocking pool.
///
/// ```
/// # let rt = numa_rt_runtime::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// let addrs: Vec<_> = numa_rt_runtime::net::lookup_host("localhost:80").await.unwrap().collect();
/// assert!(addrs.iter().all(|a| a.port() == 80));
/// # });
/// ```
pub async fn lookup_host<A>(host: A) -> io::Result<impl Iterator<Item = SocketAddr>>
where
    A: ToSocketAddrs + Send + 'static,
    A::Iter: Send,
{
    Ok(resolve(host).await?.into_iter())
}

/// Resolves `addr` on the blocking pool when inside a runtime.
pub(crate) async fn resolve<A>(addr: A) -> io::Result<Vec<SocketAddr>>
where
    A: ToSocketAddrs + Send + 'static,
    A::Iter: Send,
{
    let lookup = move || addr.to_socket_addrs().map(|it| it.collect::<Vec<_>>());
    if crate::runtime::Handle::try_current().is_ok() {
        match crate::task::spawn_blocking(lookup).await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(format!(
                "numa_rt: address lookup failed: {e}"
            ))),
        }
    } else {
        lookup()
    }
}
