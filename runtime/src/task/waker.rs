//! The `Waker` of a task: a pointer to its header, counted as one of the
//! task's references. Waking never allocates.

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::raw::{Header, RawTask};
use super::state::ToNotified;

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake_by_val, wake_by_ref, drop_waker);

/// A waker borrowed for one poll: it holds no reference of its own.
pub(crate) struct WakerRef {
    waker: ManuallyDrop<Waker>,
}

impl Deref for WakerRef {
    type Target = Waker;
    fn deref(&self) -> &Waker {
        &self.waker
    }
}

/// Makes the waker passed to a task's `poll`. The caller keeps the task
/// alive for as long as the `WakerRef` lives.
pub(crate) fn waker_ref(ptr: NonNull<Header>) -> WakerRef {
    let raw = RawWaker::new(ptr.as_ptr() as *const (), &VTABLE);
    // SAFETY: the vtable's functions follow the RawWaker contract for a
    // pointer to a live task header; ManuallyDrop keeps the borrowed waker
    // from dropping a reference it does not own.
    let waker = unsafe { Waker::from_raw(raw) };
    WakerRef {
        waker: ManuallyDrop::new(waker),
    }
}

fn header<'a>(ptr: *const ()) -> &'a Header {
    // SAFETY: every RawWaker with this vtable points to a live header (it
    // holds a reference, or is a WakerRef whose task is being polled).
    unsafe { &*(ptr as *const Header) }
}

fn raw(ptr: *const ()) -> RawTask {
    // SAFETY: as in `header`; the pointer is non-null.
    unsafe { RawTask::from_raw(NonNull::new_unchecked(ptr as *mut Header)) }
}

unsafe fn clone(ptr: *const ()) -> RawWaker {
    header(ptr).state.ref_inc();
    RawWaker::new(ptr, &VTABLE)
}

unsafe fn wake_by_val(ptr: *const ()) {
    let header = header(ptr);
    match header.state.transition_to_notified_by_val() {
        // SAFETY: the waker's reference becomes the queue's.
        (ToNotified::Submit, _) => unsafe { (header.vtable.schedule)(raw(ptr).header_ptr()) },
        // SAFETY: the waker's reference was the last one.
        (ToNotified::DoNothing, true) => unsafe { (header.vtable.dealloc)(raw(ptr).header_ptr()) },
        (ToNotified::DoNothing, false) => {}
    }
}

unsafe fn wake_by_ref(ptr: *const ()) {
    let header = header(ptr);
    if let ToNotified::Submit = header.state.transition_to_notified_by_ref() {
        // SAFETY: the transition added the reference the queue takes.
        unsafe { (header.vtable.schedule)(raw(ptr).header_ptr()) }
    }
}

unsafe fn drop_waker(ptr: *const ()) {
    // SAFETY: a cloned waker owns one reference.
    unsafe { raw(ptr).drop_reference() }
}
