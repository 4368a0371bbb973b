//! Networking on the runtime's I/O driver: TCP, UDP and Unix sockets, name
//! resolution.

mod addr;
mod tcp;
mod udp;
mod unix;

pub use addr::lookup_host;
pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
