//! Networking: TCP (and more to come) on the runtime's I/O driver.

mod tcp;

pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
