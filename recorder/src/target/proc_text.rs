//! The text of `/proc` and cgroup files, parsed without touching the file
//! system: what `/proc/PID/cgroup`, `/proc/PID/stat`, `cgroup.events` and
//! `cgroup.procs` say. Pure functions, so the fuzz targets (fuzz/) can feed
//! them anything a hostile or broken kernel interface could.

/// The cgroup v2 path in `/proc/PID/cgroup` (the `0::/path` line), as the
/// kernel wrote it (absolute, relative to the v2 mount).
pub fn v2_path(cgroup_file: &str) -> Option<&str> {
    cgroup_file.lines().find_map(|l| l.strip_prefix("0::"))
}

/// `populated 1` in `cgroup.events`: a process is in the cgroup or below.
pub fn populated(events: &str) -> bool {
    events.lines().any(|l| l == "populated 1")
}

/// The PIDs listed in `cgroup.procs`, one a line; lines that are not a PID
/// are skipped.
pub fn pids(procs: &str) -> Vec<i32> {
    procs.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The fields of `/proc/PID/stat` after the command name, so that index 0 is
/// field 3 (state). The command (field 2) may hold spaces and parentheses:
/// it ends at the last `)`.
pub fn stat_fields_after_comm(stat: &str) -> Option<Vec<&str>> {
    let after_comm = stat.get(stat.rfind(')')? + 1..)?;
    Some(after_comm.split_whitespace().collect())
}

/// Field `n` (1-based, as proc(5) numbers them; 3 or more) of `/proc/PID/stat`, parsed.
pub fn stat_field<T: std::str::FromStr>(stat: &str, n: usize) -> Option<T> {
    stat_fields_after_comm(stat)?.get(n.checked_sub(3)?)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_file_v2_line() {
        assert_eq!(v2_path("12:pids:/x\n0::/a/b\n"), Some("/a/b"));
        assert_eq!(v2_path("12:pids:/x\n"), None);
    }

    #[test]
    fn stat_with_hostile_command_name() {
        let stat = "42 (a) b ) c) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0";
        assert_eq!(stat_field::<i32>(stat, 4), Some(7));
        assert_eq!(stat_field::<u64>(stat, 22), Some(12345));
        assert_eq!(stat_field::<u64>(stat, 2), None);
        assert_eq!(stat_field::<u64>("no paren", 4), None);
        assert_eq!(stat_field::<u64>("1 (x)", 4), None);
    }

    #[test]
    fn events_and_procs() {
        assert!(populated("populated 1\nfrozen 0\n"));
        assert!(!populated("populated 0\n"));
        assert_eq!(pids("1\n 2 \nx\n\n3"), [1, 2, 3]);
    }
}
