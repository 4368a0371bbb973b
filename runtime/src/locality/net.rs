//! Sockets as targets: the node of the network interface that carries
//! them when the topology knows it, else the node of the CPU the kernel
//! last delivered the socket's packets on (`SO_INCOMING_CPU`).

use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

use crate::net::{TcpStream, UdpSocket};
use crate::topology::{DeviceKind, Topology};
use crate::NodeId;

use super::target::{Target, Targets};
use super::PlacementError;

impl Target for TcpStream {
    /// The NIC's node, else the node of `SO_INCOMING_CPU`; nothing when
    /// neither is known (a fresh loopback connection).
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        add_socket(
            self.as_raw_fd(),
            self.local_addr().ok().map(|a| a.ip()),
            targets,
            topology,
        );
        Ok(())
    }
}

impl Target for UdpSocket {
    /// As for [`TcpStream`].
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        add_socket(
            self.as_raw_fd(),
            self.local_addr().ok().map(|a| a.ip()),
            targets,
            topology,
        );
        Ok(())
    }
}

fn add_socket(fd: RawFd, local: Option<IpAddr>, targets: &mut Targets, topology: &Topology) {
    if let Some(node) = local.and_then(|ip| nic_node(ip, topology)) {
        targets.add_node(node);
    } else if let Some(node) = incoming_cpu(fd).and_then(|cpu| topology.node_of_cpu(cpu)) {
        targets.add_node(node);
    }
}

/// The node of the interface holding address `ip`, when the topology knows
/// the interface's node. Asks the kernel for its addresses only when some
/// network interface has a known node.
fn nic_node(ip: IpAddr, topology: &Topology) -> Option<NodeId> {
    if ip.is_unspecified() || ip.is_loopback() {
        return None;
    }
    let nics: Vec<(&str, NodeId)> = topology
        .devices()
        .iter()
        .filter(|d| d.kind() == DeviceKind::Net)
        .filter_map(|d| Some((d.name(), d.node()?)))
        .collect();
    if nics.is_empty() {
        return None;
    }
    let name = interface_of(ip)?;
    nics.iter().find(|(n, _)| *n == name).map(|&(_, node)| node)
}

/// The name of the interface that has address `ip` (`getifaddrs`).
fn interface_of(ip: IpAddr) -> Option<String> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer; on success it is freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive
        // until freeifaddrs.
        let entry = unsafe { &*cur };
        cur = entry.ifa_next;
        if entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr whose
        // family says which larger struct it is.
        let addr = unsafe { sockaddr_ip(entry.ifa_addr) };
        if addr == Some(ip) && !entry.ifa_name.is_null() {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) };
            found = Some(name.to_string_lossy().into_owned());
            break;
        }
    }
    // SAFETY: `list` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// # Safety
/// `sa` must point to a valid socket address of its stated family.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    // SAFETY: the caller guarantees `sa` is valid to read.
    match i32::from(unsafe { (*sa).sa_family }) {
        libc::AF_INET => {
            // SAFETY: family AF_INET means a sockaddr_in.
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            Some(IpAddr::from(
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: family AF_INET6 means a sockaddr_in6.
            let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

/// The CPU the kernel last processed the socket's incoming packets on.
fn incoming_cpu(fd: RawFd) -> Option<u32> {
    let mut cpu: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `cpu` and `len` are valid for the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_INCOMING_CPU,
            (&mut cpu as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0 && cpu >= 0).then_some(cpu as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_no_nic_and_names_resolve() {
        let topo = Topology::single_node("0".parse().unwrap(), 1 << 30);
        assert_eq!(nic_node("127.0.0.1".parse().unwrap(), &topo), None);
        assert_eq!(
            interface_of("127.0.0.1".parse().unwrap()).as_deref(),
            Some("lo")
        );
    }

    #[test]
    fn incoming_cpu_is_a_real_cpu_or_unknown() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"x").unwrap();
        let mut buf = [0u8; 1];
        server.read_exact(&mut buf).unwrap();
        // Kernels report the CPU that processed the packet; some sandboxes
        // (gVisor) do not implement the option and report nothing.
        if let Some(cpu) = incoming_cpu(server.as_raw_fd()) {
            let online = crate::topology::Topology::discover().unwrap();
            assert!(online.node_of_cpu(cpu).is_some(), "cpu {cpu} is not usable");
        }
        assert_eq!(incoming_cpu(-1), None);
    }
}
