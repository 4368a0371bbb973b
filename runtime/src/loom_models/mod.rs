//! loom models of the runtime's concurrent core, run on the real code.
//!
//! Built only with `RUSTFLAGS="--cfg loom"`, where `crate::loom` hands the
//! run queue, the task cell, the join waker slot, the parker, the idle set
//! and a timer's shared state loom's instrumented atomics, cells, locks
//! and `Arc`. Each model
//! drives those real modules from 2-3 loom threads; loom runs every
//! interleaving (bounded by `LOOM_MAX_PREEMPTIONS`) and fails on a broken
//! assertion, a deadlock (a sleeper nobody wakes), a leaked `Arc` (a task
//! cell never freed: every model future holds a loom `Arc`), or a data
//! race on a queue slot or a task's stage.
//!
//! Run with `scripts/loom` (or `RUSTFLAGS="--cfg loom" cargo test -p
//! numa-rt-runtime --release --lib loom_models`).
//!
//! What is not modelled: the injector's `crossbeam_queue::SegQueue` is
//! opaque to loom (std atomics, no preemption inside a push or pop), so it
//! acts as a linearizable queue; crossbeam checks it with its own loom
//! suite. The worker loop itself is not run; the injection model replays
//! its park sequence step by step on the real `Idle` and `Parker`.

mod inject;
mod park;
mod queue;
mod support;
mod task;
mod timer;
