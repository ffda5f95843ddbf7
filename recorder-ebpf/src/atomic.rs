//! Atomic read-modify-write on shared (not per-CPU) map values.
//!
//! Rust's BPF target has no compare-and-swap, so `core::sync::atomic` offers
//! no `fetch_*` methods there; these wrap the compiler intrinsics, which the
//! BPF backend lowers to the kernel's atomic instructions (`BPF_ATOMIC`
//! add, and or/fetch-or on CPU v3 and Linux 5.12+).

use core::intrinsics::{AtomicOrdering, atomic_or, atomic_xadd};

/// Adds `value` to `*dst` atomically; the old value is not returned, so this
/// is the plain atomic add every kernel supports.
///
/// # Safety
/// `dst` must be valid and 8-byte aligned (a map value), and every
/// concurrent access to it must be atomic or volatile.
#[inline(always)]
pub unsafe fn add(dst: *mut u64, value: u64) {
    // SAFETY: the caller's contract.
    let _ = unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(dst, value) };
}

/// ORs `bits` into `*dst` atomically and returns the previous value.
///
/// # Safety
/// As for [`add`].
#[inline(always)]
pub unsafe fn fetch_or(dst: *mut u64, bits: u64) -> u64 {
    // SAFETY: the caller's contract.
    unsafe { atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(dst, bits) }
}
