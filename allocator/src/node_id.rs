use std::fmt;

/// The operating system's number for a NUMA node (`nodeN` in sysfs).
///
/// Node numbers may be sparse: a machine can have nodes 0, 1, 33 and 72.
///
/// ```
/// use numa_rt_alloc::NodeId;
/// let node = NodeId::new(1);
/// assert_eq!(node.index(), 1);
/// assert_eq!(node.to_string(), "node1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(u32);

impl NodeId {
    /// The node with the operating system number `id`.
    pub const fn new(id: u32) -> NodeId {
        NodeId(id)
    }

    /// The operating system number of this node.
    pub const fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

impl From<u32> for NodeId {
    fn from(id: u32) -> NodeId {
        NodeId(id)
    }
}
