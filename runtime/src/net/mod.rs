//! Networking on the runtime's I/O driver: TCP, UDP and Unix sockets, name
//! resolution.

mod addr;
mod tcp;
mod tcp_socket;
mod udp;
mod unix;

pub use addr::lookup_host;
pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use tcp_socket::TcpSocket;
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
