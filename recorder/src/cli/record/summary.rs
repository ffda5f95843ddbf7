//! The one-line summary `record` prints on stderr.

use crate::{
    record::{Recording, Stop},
    text,
};

pub fn line(r: &Recording, names: usize, destination: &str) -> String {
    let why = match r.stop {
        Stop::Emptied => "workload exited".to_owned(),
        Stop::Duration => "duration reached".to_owned(),
        Stop::Signal(libc::SIGINT) => "interrupted".to_owned(),
        Stop::Signal(_) => "terminated".to_owned(),
    };
    let mut line = format!(
        "recorder: {} from {} in {} ({why}) -> {destination}",
        text::count(names as u64, "syscall", "syscalls"),
        text::count(r.processes, "process", "processes"),
        text::human(r.elapsed),
    );
    line.push_str(&format!("; recorder used {:.3}s CPU", r.cpu.as_secs_f64()));
    if !r.startup_observed {
        line.push_str("; startup was not observed (attached to a running workload)");
    }
    if r.stats.ringbuf_drops > 0 {
        line.push_str(&format!("; {} events dropped (profile complete: read from the map)", r.stats.ringbuf_drops));
    }
    if r.stats.map_full > 0 || r.stats.out_of_range > 0 {
        line.push_str(&format!(
            "; WARNING: {} map-full and {} out-of-range syscalls not recorded",
            r.stats.map_full, r.stats.out_of_range
        ));
    }
    line
}
