//! Where memory goes: memory kinds, the placement hook the runtime
//! registers, the bind policy, and the errors of the placement API.

use crate::os::{self, BindPolicy, OsError};
use crate::NodeId;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A kind of memory, chosen relative to the node that will use it (the
/// initiator).
///
/// The allocator cannot read HMAT or distances itself; the runtime
/// registers a [`PlacementHook`] at start that resolves kinds from its
/// topology. Without a hook every kind resolves to the initiator node
/// itself, which is exact for `Local` and a safe default for the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MemoryKind {
    /// The initiator's own node.
    #[default]
    Local,
    /// The node with the lowest access latency from the initiator.
    LowestLatency,
    /// The node with the highest bandwidth from the initiator.
    HighestBandwidth,
    /// The capacity tier behind the initiator (for example a CXL or PMEM
    /// memory-only node), else the initiator itself.
    Capacity,
}

impl MemoryKind {
    /// The node this kind means for memory used from `initiator`; while
    /// that node has a fallback ([`set_node_fallback`]), the fallback.
    ///
    /// ```
    /// use numa_rt_alloc::{MemoryKind, NodeId};
    /// // Without a registered hook, kinds fall back to the initiator.
    /// assert_eq!(MemoryKind::Local.resolve(NodeId::new(0)), NodeId::new(0));
    /// ```
    pub fn resolve(self, initiator: NodeId) -> NodeId {
        let node = match HOOK.get() {
            Some(hook) if self != MemoryKind::Local => {
                hook.resolve(self, initiator).unwrap_or(initiator)
            }
            _ => initiator,
        };
        node_fallback(node).unwrap_or(node)
    }
}

/// How the runtime tells the allocator about the topology it knows.
///
/// Register one with [`set_placement_hook`] when the runtime starts.
pub trait PlacementHook: Send + Sync {
    /// The node holding memory of `kind` best for CPUs of `initiator`, or
    /// `None` to fall back to the initiator.
    fn resolve(&self, kind: MemoryKind, initiator: NodeId) -> Option<NodeId>;

    /// The real node whose memory backs `node`. Identity by default; under
    /// an emulated topology (`NUMA_RT_TOPOLOGY`) the runtime maps each
    /// emulated node to the real node under its CPUs, while statistics and
    /// `node()` keep reporting the emulated node.
    fn memory_node(&self, node: NodeId) -> NodeId {
        node
    }
}

static HOOK: OnceLock<&'static dyn PlacementHook> = OnceLock::new();

/// Registers the placement hook (once per process).
///
/// # Errors
/// [`AllocError::HookAlreadySet`] when a hook is already registered.
pub fn set_placement_hook(hook: &'static dyn PlacementHook) -> Result<(), AllocError> {
    HOOK.set(hook).map_err(|_| AllocError::HookAlreadySet)
}

/// The real node backing `node` (see [`PlacementHook::memory_node`]).
pub(crate) fn memory_node(node: NodeId) -> NodeId {
    match HOOK.get() {
        Some(hook) => hook.memory_node(node),
        None => node,
    }
}

static POLICY: AtomicU8 = AtomicU8::new(0);

/// Sets how new memory is tied to its node: [`BindPolicy::Bind`] (the
/// default) or [`BindPolicy::Preferred`]. Applies to memory mapped from
/// now on.
pub fn set_bind_policy(policy: BindPolicy) {
    let v = match policy {
        BindPolicy::Bind => 0,
        BindPolicy::Preferred => 1,
    };
    POLICY.store(v, Ordering::Relaxed);
}

/// The current bind policy.
pub fn bind_policy() -> BindPolicy {
    match POLICY.load(Ordering::Relaxed) {
        0 => BindPolicy::Bind,
        _ => BindPolicy::Preferred,
    }
}

/// Why memory could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllocError {
    /// The node does not exist on this machine.
    UnknownNode(NodeId),
    /// The node exists but has no memory this process may use (a
    /// memory-less node, or one outside the process's cpuset, including
    /// one the runtime's affinity monitor saw leave `cpuset.mems`).
    NoMemory(NodeId),
    /// The kernel refused to map or bind memory for the node.
    Refused {
        /// The node asked for.
        node: NodeId,
        /// The refused call.
        source: OsError,
    },
    /// The requested size does not fit in the address space.
    CapacityOverflow,
    /// A placement hook was already registered.
    HookAlreadySet,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::UnknownNode(n) => write!(f, "NUMA {n} does not exist on this machine"),
            AllocError::NoMemory(n) => {
                write!(f, "NUMA {n} has no memory this process may use")
            }
            AllocError::Refused { node, source } => {
                write!(f, "cannot place memory on NUMA {node}: {source}")
            }
            AllocError::CapacityOverflow => f.write_str("requested capacity overflows usize"),
            AllocError::HookAlreadySet => f.write_str("a placement hook is already registered"),
        }
    }
}

impl std::error::Error for AllocError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AllocError::Refused { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// No fallback in a [`FALLBACK`] slot.
const NO_FALLBACK: u32 = u32::MAX;

/// For each node number, where new memory for it goes while the process
/// may not use it ([`NO_FALLBACK`]: the node is usable).
static FALLBACK: [AtomicU32; os::linux_max_nodes()] =
    [const { AtomicU32::new(NO_FALLBACK) }; os::linux_max_nodes()];

/// How many [`FALLBACK`] slots are set, so the common case (none) costs
/// one load.
static FALLBACKS_SET: AtomicUsize = AtomicUsize::new(0);

/// Marks `node` as a node whose memory the process may no longer use
/// (its cpuset's `mems` were narrowed), with `fallback` the node new
/// memory goes to instead; `None` marks it usable again.
///
/// While a fallback is set:
/// - the global allocator ([`NumaAlloc`](crate::NumaAlloc)) serves a
///   thread whose node is `node` from `fallback`'s heap, which binds its
///   new segments to `fallback` (threads notice within a few thousand
///   allocations);
/// - [`current_node`] on such a thread, and [`MemoryKind::resolve`]
///   wherever it would name `node`, say `fallback`;
/// - explicit placement on `node` ([`NodeBox::new_on`](crate::NodeBox::new_on),
///   [`NodeVec`](crate::NodeVec), [`NodeHeap`](crate::NodeHeap), even a
///   heap handle made earlier) fails with [`AllocError::NoMemory`] rather
///   than returning memory from another node.
///
/// Nothing already allocated moves: blocks stay where they are, and
/// segments already bound to `node` keep serving the frees and reuse of
/// their own blocks. The runtime's affinity monitor calls this when it
/// sees `Mems_allowed` change; call it yourself only without a runtime.
///
/// ```
/// use numa_rt_alloc::{set_node_fallback, node_fallback, NodeId};
/// set_node_fallback(NodeId::new(900), Some(NodeId::new(0)))?;
/// assert_eq!(node_fallback(NodeId::new(900)), Some(NodeId::new(0)));
/// set_node_fallback(NodeId::new(900), None)?;
/// assert_eq!(node_fallback(NodeId::new(900)), None);
/// # Ok::<(), numa_rt_alloc::AllocError>(())
/// ```
///
/// # Errors
/// [`AllocError::UnknownNode`] when either node number is beyond what the
/// kernel supports, or `fallback` is `node` itself.
pub fn set_node_fallback(node: NodeId, fallback: Option<NodeId>) -> Result<(), AllocError> {
    let slot = FALLBACK
        .get(node.index() as usize)
        .ok_or(AllocError::UnknownNode(node))?;
    let value = match fallback {
        Some(f) if f == node || f.index() as usize >= FALLBACK.len() => {
            return Err(AllocError::UnknownNode(f));
        }
        Some(f) => f.index(),
        None => NO_FALLBACK,
    };
    let old = slot.swap(value, Ordering::AcqRel);
    match (old == NO_FALLBACK, value == NO_FALLBACK) {
        (true, false) => {
            FALLBACKS_SET.fetch_add(1, Ordering::AcqRel);
        }
        (false, true) => {
            FALLBACKS_SET.fetch_sub(1, Ordering::AcqRel);
        }
        _ => {}
    }
    Ok(())
}

/// The node new memory for `node` goes to while the process may not use
/// `node` (see [`set_node_fallback`]); `None` when `node` is usable.
#[inline]
pub fn node_fallback(node: NodeId) -> Option<NodeId> {
    if FALLBACKS_SET.load(Ordering::Acquire) == 0 {
        return None;
    }
    let v = FALLBACK.get(node.index() as usize)?.load(Ordering::Acquire);
    (v != NO_FALLBACK).then_some(NodeId::new(v))
}

/// Refuses explicit placement on a node that has a fallback (see
/// [`set_node_fallback`]): one load when no node has one.
#[inline]
pub(crate) fn check_usable(node: NodeId) -> Result<(), AllocError> {
    match node_fallback(node) {
        Some(_) => Err(AllocError::NoMemory(node)),
        None => Ok(()),
    }
}

/// Checks that memory can be placed on `node`: one `get_mempolicy` call.
///
/// # Errors
/// [`AllocError::UnknownNode`] or [`AllocError::NoMemory`].
pub fn check_node(node: NodeId) -> Result<(), AllocError> {
    check_usable(node)?;
    let real = memory_node(node);
    let i = real.index() as usize;
    if i >= os::linux_max_nodes() {
        return Err(AllocError::UnknownNode(node));
    }
    let mut mask = [0u64; os::linux_max_nodes() / 64];
    if let Err(source) = os::system().allowed_memory_nodes(&mut mask) {
        // NUMA calls refused (a seccomp filter): a one-node machine can
        // still place memory on node 0, and only there.
        if os::numa_refusal_is_moot(&source) {
            return if i == 0 {
                Ok(())
            } else {
                Err(AllocError::UnknownNode(node))
            };
        }
        return Err(AllocError::Refused { node, source });
    }
    if mask[i / 64] & (1 << (i % 64)) != 0 {
        return Ok(());
    }
    let path = format!("/sys/devices/system/node/node{i}");
    if std::path::Path::new(&path).exists() {
        Err(AllocError::NoMemory(node))
    } else {
        Err(AllocError::UnknownNode(node))
    }
}

/// The node the calling thread runs on, as the allocator sees it: the node
/// set by [`set_thread_node`](crate::set_thread_node), else the node of
/// its CPU (cached, refreshed every few thousand allocations); while that
/// node has a fallback ([`set_node_fallback`]), the fallback.
pub fn current_node() -> NodeId {
    crate::thread::current_node()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_well() {
        let e = AllocError::UnknownNode(NodeId::new(7));
        assert_eq!(e.to_string(), "NUMA node7 does not exist on this machine");
        let e = AllocError::Refused {
            node: NodeId::new(1),
            source: OsError {
                op: "mbind",
                errno: libc::EINVAL,
            },
        };
        assert!(e
            .to_string()
            .starts_with("cannot place memory on NUMA node1: mbind failed"));
    }

    #[test]
    fn unknown_nodes_are_refused() {
        assert_eq!(
            check_node(NodeId::new(1000)),
            Err(AllocError::UnknownNode(NodeId::new(1000)))
        );
        assert_eq!(
            check_node(NodeId::new(5000)),
            Err(AllocError::UnknownNode(NodeId::new(5000)))
        );
        assert_eq!(check_node(current_node()), Ok(()));
    }

    #[test]
    fn kinds_fall_back_to_the_initiator() {
        for kind in [
            MemoryKind::Local,
            MemoryKind::LowestLatency,
            MemoryKind::HighestBandwidth,
            MemoryKind::Capacity,
        ] {
            if HOOK.get().is_none() {
                assert_eq!(kind.resolve(NodeId::new(3)), NodeId::new(3));
            }
        }
    }
}
