//! `Handle`: a cheap, cloneable reference to a runtime for spawning and
//! blocking from anywhere.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::context;
use super::metrics::RuntimeMetrics;
use crate::locality::{Placement, PlacementError, Policy, Target};
use crate::scheduler::current_thread::{block_on_thread, CtShared};
use crate::scheduler::shared::Shared;
use crate::task::{self, Home, Id, JoinHandle};
use crate::topology::Topology;
use crate::NodeId;

/// The panic message of a nested `block_on`.
pub(crate) const NESTED_BLOCK_ON: &str = "Cannot start a runtime from within a runtime: \
     `block_on` was called on a thread that is already driving numa_rt tasks (a worker \
     thread or another `block_on`). Await the future instead, or move the blocking part \
     into `spawn_blocking`.";

/// The panic message when no runtime is current.
pub(crate) const NO_RUNTIME: &str = "there is no numa_rt runtime on this thread: \
     this must be called from a task or a `block_on` of a numa_rt Runtime \
     (build one with `numa_rt::runtime::Builder`, or use `#[numa_rt::main]`)";

/// A reference to a runtime, to spawn tasks on it from any thread.
///
/// ```
/// use numa_rt_runtime::runtime::{Builder, Handle};
/// let rt = Builder::new_multi_thread().worker_threads(1).build().unwrap();
/// let handle = rt.handle().clone();
/// let answer = std::thread::spawn(move || handle.block_on(async {
///     Handle::current().spawn(async { 7 }).await.unwrap()
/// })).join().unwrap();
/// assert_eq!(answer, 7);
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Scheduler,
}

#[derive(Clone)]
pub(crate) enum Scheduler {
    MultiThread(Arc<Shared>),
    CurrentThread(Arc<CtShared>),
}

/// The flavor of a runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeFlavor {
    /// Tasks run on the thread in `block_on`.
    CurrentThread,
    /// Tasks run on per-node pools of worker threads.
    MultiThread,
}

/// `Handle::try_current` found no runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryCurrentError(());

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NO_RUNTIME)
    }
}

impl std::error::Error for TryCurrentError {}

impl Handle {
    /// The handle of the runtime this code runs in.
    ///
    /// # Panics
    /// Outside a runtime (a task, `block_on` or `Runtime::enter`), with a
    /// message saying so; [`try_current`](Self::try_current) returns an
    /// error instead.
    #[track_caller]
    pub fn current() -> Handle {
        match context::handle() {
            Some(handle) => handle,
            None => panic!("{NO_RUNTIME}"),
        }
    }

    /// The handle of the runtime this code runs in, if any.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        context::handle().ok_or(TryCurrentError(()))
    }

    /// Spawns a task on this runtime. From a worker, its home is the
    /// worker's node; from elsewhere, the least loaded node.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let id = Id::next();
        match &self.inner {
            Scheduler::MultiThread(shared) => {
                // A `#[locality]` future starts where its targets placed it.
                let home = crate::locality::take_spawn_hint::<F>(shared)
                    .unwrap_or_else(|| Home::preferred(shared.default_pool()));
                shared.spawn(future, id, home)
            }
            Scheduler::CurrentThread(shared) => shared.spawn(future, id),
        }
    }

    /// Spawns a task placed by `target` (a `NodeId`, `NodeSet`, `CpuSet`,
    /// `Placement`, `Strict(..)` or any [`Target`]). A target that reports
    /// no node (a file on tmpfs, a loopback socket) is spawned as by
    /// [`spawn`](Self::spawn).
    ///
    /// # Panics
    /// When the target cannot be placed on this runtime's nodes (for
    /// example a strict target on a node without workers); use
    /// [`try_spawn_on`](Self::try_spawn_on) to get the error instead.
    #[track_caller]
    pub fn spawn_on<T, F>(&self, target: T, future: F) -> JoinHandle<F::Output>
    where
        T: Target,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.try_spawn_on(target, future) {
            Ok(handle) => handle,
            Err(err) => panic!("spawn_on: {err}"),
        }
    }

    /// Like [`spawn_on`](Self::spawn_on), but returns an error when the
    /// target cannot be placed.
    pub fn try_spawn_on<T, F>(
        &self,
        target: T,
        future: F,
    ) -> Result<JoinHandle<F::Output>, PlacementError>
    where
        T: Target,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let placement = match &self.inner {
            Scheduler::MultiThread(shared) => target.placement_in(&shared.topology, &shared.cost),
            Scheduler::CurrentThread(shared) => target.placement(&shared.topology),
        };
        let placement = match placement {
            Ok(placement) => placement,
            Err(err) if err.is_no_targets() => return Ok(self.spawn(future)),
            Err(err) => return Err(err),
        };
        let id = Id::next();
        match &self.inner {
            Scheduler::MultiThread(shared) => {
                let home = resolve(shared, &placement)?;
                Ok(shared.spawn(future, id, home))
            }
            Scheduler::CurrentThread(shared) => {
                if placement.policy == Policy::Strict
                    && !placement.allowed.contains_node(shared.node)
                {
                    return Err(PlacementError::new(format!(
                        "strict placement on nodes {} but this current-thread runtime runs on {}",
                        placement.allowed, shared.node
                    )));
                }
                Ok(shared.spawn(future, id))
            }
        }
    }

    /// Runs a blocking closure on the blocking pool of the current node (or
    /// the least loaded one from outside the runtime).
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (pools, node) = match &self.inner {
            Scheduler::MultiThread(shared) => {
                let pool = shared.default_pool();
                (&shared.blocking, shared.pools[pool].node)
            }
            Scheduler::CurrentThread(shared) => (&shared.blocking, shared.node),
        };
        task::blocking::spawn(self, pools, node, f)
    }

    /// Runs `future` to completion on the current thread.
    ///
    /// On a current-thread runtime, this thread also runs the runtime's
    /// tasks meanwhile (unless another thread already does).
    ///
    /// # Panics
    /// When called from a thread that is already driving a runtime (a
    /// worker, or inside another `block_on`).
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let node = self.home_node_for_block_on();
        let Ok(_guard) = context::enter_runtime(self.clone(), node) else {
            panic!("{NESTED_BLOCK_ON}");
        };
        match &self.inner {
            Scheduler::MultiThread(_) => {
                crate::io::driver::leave_foreign_driver();
                block_on_thread(future)
            }
            Scheduler::CurrentThread(shared) => shared.block_on(future),
        }
    }

    fn home_node_for_block_on(&self) -> Option<NodeId> {
        match &self.inner {
            Scheduler::MultiThread(_) => None,
            Scheduler::CurrentThread(shared) => Some(shared.node),
        }
    }

    /// Makes this runtime current on this thread until the guard drops, so
    /// `spawn` and `Handle::current` work outside a task.
    pub fn enter(&self) -> EnterGuard<'_> {
        EnterGuard {
            _guard: context::set_handle(self.clone(), None),
            _handle: std::marker::PhantomData,
        }
    }

    /// This runtime's metrics.
    pub fn metrics(&self) -> RuntimeMetrics {
        RuntimeMetrics::new(self.clone())
    }

    /// The flavor of the runtime.
    pub fn runtime_flavor(&self) -> RuntimeFlavor {
        match &self.inner {
            Scheduler::MultiThread(_) => RuntimeFlavor::MultiThread,
            Scheduler::CurrentThread(_) => RuntimeFlavor::CurrentThread,
        }
    }

    /// The topology the runtime was built on.
    pub fn topology(&self) -> &Topology {
        match &self.inner {
            Scheduler::MultiThread(shared) => &shared.topology,
            Scheduler::CurrentThread(shared) => &shared.topology,
        }
    }

    /// The nodes that have workers, in pool order.
    pub fn nodes(&self) -> Vec<NodeId> {
        match &self.inner {
            Scheduler::MultiThread(shared) => shared.pools.iter().map(|p| p.node).collect(),
            Scheduler::CurrentThread(shared) => vec![shared.node],
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("flavor", &self.runtime_flavor())
            .field("nodes", &self.nodes())
            .finish()
    }
}

/// Keeps a runtime current on this thread; see [`Handle::enter`].
pub struct EnterGuard<'a> {
    _guard: context::SetGuard,
    _handle: std::marker::PhantomData<&'a Handle>,
}

impl fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnterGuard")
    }
}

/// Turns a placement into a home pool and the pools allowed to run it.
pub(crate) fn resolve(shared: &Shared, placement: &Placement) -> Result<Home, PlacementError> {
    let pool_of = |node: NodeId| shared.pools.iter().position(|p| p.node == node);
    let strict = placement.policy == Policy::Strict;
    let home_pool = match pool_of(placement.home) {
        Some(pool) => Some(pool),
        None => {
            // Nearest node (to the requested home) among those allowed
            // (strict) or among all pools (preferred).
            let mut candidates: Vec<usize> = (0..shared.pools.len())
                .filter(|&i| !strict || placement.allowed.contains_node(shared.pools[i].node))
                .collect();
            candidates.sort_by_key(|&i| {
                shared
                    .topology
                    .distance(placement.home, shared.pools[i].node)
            });
            candidates.first().copied()
        }
    };
    let Some(home_pool) = home_pool else {
        let nodes: Vec<String> = shared.pools.iter().map(|p| p.node.to_string()).collect();
        return Err(PlacementError::new(format!(
            "strict placement on nodes {} (home {}), but this runtime has workers only on {}",
            placement.allowed,
            placement.home,
            nodes.join(", ")
        )));
    };
    if !strict {
        return Ok(Home::preferred(home_pool));
    }
    let mut allowed = 0u64;
    for (i, pool) in shared.pools.iter().enumerate().take(64) {
        if placement.allowed.contains_node(pool.node) {
            allowed |= 1 << i;
        }
    }
    Ok(Home {
        pool: home_pool as u32,
        strict: true,
        allowed,
    })
}
