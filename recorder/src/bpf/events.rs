//! Decoding ring buffer records.

use recorder_common::Event;

/// Decodes one ring buffer record; `None` for a record of the wrong size
/// (a mismatched BPF object, which build.rs rules out).
pub fn decode(bytes: &[u8]) -> Option<Event> {
    if bytes.len() < std::mem::size_of::<Event>() {
        return None;
    }
    // SAFETY: the length is checked above, Event is repr(C) plain integers
    // (any bit pattern is valid), and read_unaligned has no alignment needs.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
}

#[cfg(test)]
mod tests {
    use recorder_common::{Abi, EventKind, Phase};

    use super::*;

    #[test]
    fn decodes_what_the_bpf_side_writes() {
        let e = Event {
            kind: EventKind::SYSCALL,
            phase: Phase::RUN,
            abi: Abi::NATIVE,
            nr: 59,
            cgroup_id: 42,
            tgid: 7,
            slot: 0,
        };
        // SAFETY: viewing a repr(C) value without padding as bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts((&e as *const Event).cast::<u8>(), std::mem::size_of::<Event>()) };
        assert_eq!(decode(bytes), Some(e));
        assert_eq!(decode(&bytes[..10]), None);
    }
}
