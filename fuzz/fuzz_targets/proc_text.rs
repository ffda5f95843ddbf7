//! `/proc` and cgroup files: `/proc/PID/cgroup`, `/proc/PID/stat`,
//! `/proc/PID/status`, `cgroup.events`, `cgroup.procs`. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recorder::target::proc_text;

fuzz_target!(|text: &str| {
    let _ = proc_text::v2_path(text);
    let _ = proc_text::populated(text);
    let _ = proc_text::pids(text);
    for n in [0, 3, 4, 9, 22, usize::MAX] {
        let _ = proc_text::stat_field::<u64>(text, n);
    }
    let _ = recorder::inspect::read::parse_status(text);
});
