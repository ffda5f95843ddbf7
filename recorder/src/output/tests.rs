use std::os::unix::fs::FileTypeExt as _;

use super::*;

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).expect("ls").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn new_file_is_written_atomically_and_nothing_else_is_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.json");
    let out = Output::prepare(Some(&path)).expect("prepare");
    assert!(matches!(out, Output::Atomic { .. }));
    assert!(names_in(dir.path()).is_empty(), "prepare creates nothing");
    out.commit("{}\n").expect("commit");
    assert_eq!(fs::read_to_string(&path).expect("read"), "{}\n");
    assert_eq!(names_in(dir.path()), ["p.json"]);
    assert_eq!(fs::metadata(&path).expect("stat").mode() & 0o777, 0o644);
}

#[test]
fn existing_file_keeps_its_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.json");
    fs::write(&path, "old").expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    Output::prepare(Some(&path)).expect("prepare").commit("new").expect("commit");
    assert_eq!(fs::read_to_string(&path).expect("read"), "new");
    assert_eq!(fs::metadata(&path).expect("stat").mode() & 0o777, 0o600);
}

#[test]
fn symlink_stays_a_symlink_and_its_target_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real");
    fs::create_dir(&real).expect("mkdir");
    let target = real.join("p.json");
    fs::write(&target, "old").expect("write");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink("real/p.json", &link).expect("symlink");
    Output::prepare(Some(&link)).expect("prepare").commit("new").expect("commit");
    assert!(fs::symlink_metadata(&link).expect("lstat").file_type().is_symlink());
    assert_eq!(fs::read_to_string(&target).expect("read"), "new");
    assert_eq!(names_in(&real), ["p.json"]);
}

#[test]
fn dangling_symlink_creates_its_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(dir.path().join("made.json"), &link).expect("symlink");
    Output::prepare(Some(&link)).expect("prepare").commit("x").expect("commit");
    assert!(fs::symlink_metadata(&link).expect("lstat").file_type().is_symlink());
    assert_eq!(fs::read_to_string(dir.path().join("made.json")).expect("read"), "x");
}

#[test]
fn symlink_loop_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a");
    std::os::unix::fs::symlink("b", &a).expect("symlink");
    std::os::unix::fs::symlink("a", dir.path().join("b")).expect("symlink");
    assert!(matches!(Output::prepare(Some(&a)), Err(OutputError::SymlinkLoop(_))));
}

#[test]
fn fifo_is_written_in_place_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    let c = CString::new(fifo.as_os_str().as_bytes()).expect("cstr");
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read_to_string(fifo).expect("read fifo"))
    };
    let out = Output::prepare(Some(&fifo)).expect("prepare");
    assert!(matches!(out, Output::Device { .. }));
    out.commit("through the fifo").expect("commit");
    assert_eq!(reader.join().expect("reader"), "through the fifo");
    assert!(fs::symlink_metadata(&fifo).expect("lstat").file_type().is_fifo(), "still a FIFO");
    assert_eq!(names_in(dir.path()), ["fifo"]);
}

#[test]
fn unix_socket_is_connected_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("s.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut text = String::new();
        io::Read::read_to_string(&mut conn, &mut text).expect("read");
        text
    });
    let out = Output::prepare(Some(&sock)).expect("prepare");
    assert!(matches!(out, Output::Socket { .. }));
    out.commit("over the socket").expect("commit");
    assert_eq!(reader.join().expect("reader"), "over the socket");
    assert!(fs::symlink_metadata(&sock).expect("lstat").file_type().is_socket());
}

#[test]
fn descriptors_of_this_process_are_written_as_they_are() {
    let (read, write) = std::io::pipe().expect("pipe");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&write);
    for path in
        [format!("/dev/fd/{fd}"), format!("/proc/self/fd/{fd}"), format!("/proc/{}/fd/{fd}", std::process::id())]
    {
        let out = Output::prepare(Some(Path::new(&path))).expect("prepare");
        assert_eq!(out, Output::Fd { fd, shown: PathBuf::from(&path) });
    }
    Output::prepare(Some(Path::new(&format!("/dev/fd/{fd}")))).expect("prepare").commit("piped").expect("commit");
    drop(write);
    let mut text = String::new();
    io::Read::read_to_string(&mut &read, &mut text).expect("read");
    assert_eq!(text, "piped");
    assert!(matches!(Output::prepare(Some(Path::new("/dev/fd/987"))), Err(OutputError::FdClosed(_))));
    assert_eq!(
        Output::prepare(Some(Path::new("/dev/stdout"))).expect("stdout"),
        Output::Fd { fd: 1, shown: PathBuf::from("/dev/stdout") }
    );
}

#[test]
fn directory_and_missing_parent_are_refused_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(Output::prepare(Some(dir.path())), Err(OutputError::IsDirectory(_))));
    let err = Output::prepare(Some(Path::new("/nonexistent-dir/p.json"))).expect_err("fails");
    assert!(matches!(err, OutputError::NoParent(_)));
}

#[test]
fn two_outputs_naming_one_file_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Output::prepare(Some(&dir.path().join("p.json"))).expect("a");
    let b = Output::prepare(Some(&dir.path().join("./p.json"))).expect("b");
    assert!(matches!(a.ensure_distinct(&b), Err(OutputError::SameFile { .. })));
    let c = Output::prepare(Some(&dir.path().join("q.json"))).expect("c");
    a.ensure_distinct(&c).expect("different files");
    let null = Output::prepare(Some(Path::new("/dev/null"))).expect("null");
    null.ensure_distinct(&null.clone()).expect("/dev/null twice is fine");
}

#[test]
fn dev_null_is_a_device_output() {
    let out = Output::prepare(Some(Path::new("/dev/null"))).expect("prepare");
    assert!(matches!(out, Output::Device { .. }), "{out:?}");
    out.commit("discarded").expect("commit");
    assert!(fs::metadata("/dev/null").expect("stat").file_type().is_char_device());
}

#[test]
fn a_directory_suggests_one_file_inside_it_however_it_was_typed() {
    let dir = tempfile::tempdir().expect("tmp");
    for typed in ["", "/", "//"] {
        let shown = PathBuf::from(format!("{}{typed}", dir.path().display()));
        let err = Output::prepare(Some(&shown)).expect_err("a directory");
        let message = err.to_string();
        assert!(message.ends_with(&format!("-o {}/profile.json", dir.path().display())), "{message}");
    }
}

#[test]
fn a_write_error_names_the_cause_not_the_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    // tempfile's own errors carry the temporary path; the user never named it.
    let err = tempfile::Builder::new().tempfile_in(dir.path().join("missing")).expect_err("no such directory");
    assert!(err.to_string().contains(" at path "), "{err}");
    let cause = io_cause(&err);
    assert!(!cause.contains("at path") && cause.contains("No such file or directory"), "{cause}");
    let plain = io::Error::from_raw_os_error(libc::ENOSPC);
    assert_eq!(io_cause(&plain), plain.to_string());
}
