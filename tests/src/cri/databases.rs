//! redis and postgres images built from Debian's packages (no registry),
//! their containers, and how to tell they are up.
//!
//! - redis: `/bin/redis-server` with its libraries; it runs as root with
//!   its data directory (`/data`) bind-mounted from the host, so the RDB
//!   file it writes when it stops can be checked there.
//! - postgres: the server binary at its Debian path (it finds its share
//!   and library directories relative to itself), `/usr/share/postgresql/
//!   <version>`, plpgsql, the UTC zone file, and a `postgres` user with the host's uid and gid. The
//!   cluster is made on the host with initdb (as that user) and
//!   bind-mounted; the container runs as that user (postgres refuses root).

use std::{
    fs,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, anyhow, bail};

use super::{ContainerSpec, Seccomp};
use crate::containers::{Containerd, absolute, find_program, import_image, rootfs_with, shared_libraries};

/// redis-server from the host (Debian's redis-server package).
pub const REDIS_IMAGE: &str = "localhost/recorder-tests/redis:local";
/// postgres from the host (Debian's postgresql package).
pub const POSTGRES_IMAGE: &str = "localhost/recorder-tests/postgres:local";
/// Where the redis container keeps its RDB file.
pub const REDIS_DATA: &str = "/data";
/// Where the postgres container's cluster is mounted.
pub const PGDATA: &str = "/var/lib/postgresql/data";

/// Builds and imports [`REDIS_IMAGE`]: `/bin/redis-server` (the package's
/// binary; `/usr/bin/redis-server` is a link that decides its mode by
/// name), its libraries, root in /etc/passwd, an empty `/data`.
pub fn import_redis_image(c: &Containerd, work: &Path) -> anyhow::Result<()> {
    let binary = Path::new("/usr/bin/redis-server");
    if !binary.exists() {
        bail!("/usr/bin/redis-server not found; install it with `apt-get install -y redis-server`");
    }
    let rootfs = rootfs_with(&[binary], &absolute(work)?.join("redis-image"))?;
    write_files(&rootfs, &[("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")])?;
    fs::create_dir_all(rootfs.join(REDIS_DATA.trim_start_matches('/')))?;
    import_image(c, &rootfs, REDIS_IMAGE, &["/bin/redis-server"], "k8s.io", work)
}

/// A redis container on 127.0.0.1:`port` (host network) that saves to
/// `data` (a host directory, mounted at [`REDIS_DATA`]) with redis's
/// default save points, so a clean SIGTERM writes `dump.rdb` there.
pub fn redis_container(port: u16, data: &Path) -> ContainerSpec {
    let args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "no",
        "--dir",
        REDIS_DATA,
        "--save",
        "3600 1 300 100 60 10000",
        "--appendonly",
        "no",
        "--logfile",
        "",
    ]
    .map(str::to_owned);
    ContainerSpec {
        name: "redis".to_owned(),
        image: REDIS_IMAGE.to_owned(),
        args: args.to_vec(),
        writable_mounts: vec![(data.to_path_buf(), PathBuf::from(REDIS_DATA))],
        seccomp: Some(Seccomp::Unconfined),
        ..Default::default()
    }
}

/// True when redis on 127.0.0.1:`port` answers PING with PONG.
pub fn redis_ready(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// The newest server under /usr/lib/postgresql: (version, bin directory).
pub fn postgres_install() -> anyhow::Result<(String, PathBuf)> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, String)> = fs::read_dir(root)
        .with_context(|| format!("{} not found; install it with `apt-get install -y postgresql`", root.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            e.path().join("bin/postgres").exists().then_some((name.parse().ok()?, name))
        })
        .collect();
    versions.sort();
    let (_, version) = versions.pop().ok_or_else(|| anyhow!("no postgres server under {}", root.display()))?;
    let bin = root.join(&version).join("bin");
    Ok((version, bin))
}

/// The host's `postgres` user: (uid, gid).
pub fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres")).then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
        })
        .ok_or_else(|| anyhow!("no postgres user; the postgresql package creates it (apt-get install -y postgresql)"))
}

/// Builds and imports [`POSTGRES_IMAGE`].
pub fn import_postgres_image(c: &Containerd, work: &Path) -> anyhow::Result<()> {
    let (version, bin) = postgres_install()?;
    let (uid, gid) = postgres_user()?;
    let rootfs = rootfs_with(&[], &absolute(work)?.join("postgres-image"))?;
    let server = bin.join("postgres");
    copy_into(&rootfs, &server)?;
    for lib in shared_libraries(&server)? {
        copy_into(&rootfs, &lib)?;
    }
    let share = PathBuf::from(format!("/usr/share/postgresql/{version}"));
    let target = rootfs.join(share.strip_prefix("/")?);
    fs::create_dir_all(target.parent().expect("share has a parent"))?;
    let out = Command::new("cp").arg("-a").arg(&share).arg(&target).output().context("running cp")?;
    if !out.status.success() {
        bail!("copying {} failed: {}", share.display(), String::from_utf8_lossy(&out.stderr));
    }
    // The postmaster refuses to start without its library directory; the
    // procedural language every database has is its only module loaded on use.
    let lib = bin.parent().ok_or_else(|| anyhow!("{} has no parent", bin.display()))?.join("lib");
    fs::create_dir_all(rootfs.join(lib.strip_prefix("/")?))?;
    copy_into(&rootfs, &lib.join("plpgsql.so"))?;
    for zone in ["/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Etc/UTC"] {
        copy_into(&rootfs, Path::new(zone)).context("the UTC zone file (package tzdata)")?;
    }
    let passwd =
        format!("root:x:0:0:root:/root:/bin/sh\npostgres:x:{uid}:{gid}:PostgreSQL:/var/lib/postgresql:/bin/sh\n");
    let group = format!("root:x:0:\npostgres:x:{gid}:\n");
    write_files(&rootfs, &[("etc/passwd", &passwd), ("etc/group", &group)])?;
    fs::create_dir_all(rootfs.join(PGDATA.trim_start_matches('/')))?;
    import_image(c, &rootfs, POSTGRES_IMAGE, &[&server.display().to_string()], "k8s.io", work)
}

/// A cluster made on the host by initdb, owned by the postgres user.
/// Removed with the directory.
pub struct PgData {
    dir: tempfile::TempDir,
}

impl PgData {
    /// `initdb` (as the postgres user) into a new directory under /tmp:
    /// trust authentication, C locale, UTF-8.
    pub fn init() -> anyhow::Result<PgData> {
        let (_, bin) = postgres_install()?;
        let (uid, gid) = postgres_user()?;
        let dir = tempfile::Builder::new().prefix("lifecycle-pg.").tempdir_in("/tmp")?;
        // The postgres user must reach the cluster through this directory.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let data = dir.path().join("data");
        fs::create_dir(&data)?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700))?;
        std::os::unix::fs::chown(&data, Some(uid), Some(gid))?;
        let runuser = find_program("runuser").context("runuser (package util-linux)")?;
        let out = Command::new(runuser)
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            .stdin(Stdio::null())
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(PgData { dir })
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// A postgres container on 127.0.0.1:`port` (host network) over `data`,
/// as the postgres user, its socket in /tmp, logging to stderr.
pub fn postgres_container(port: u16, data: &PgData) -> anyhow::Result<ContainerSpec> {
    let (_, bin) = postgres_install()?;
    let (uid, gid) = postgres_user()?;
    let args = [
        "-D",
        PGDATA,
        "-p",
        &port.to_string(),
        "-k",
        "/tmp",
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "timezone=UTC",
        "-c",
        "log_timezone=UTC",
    ]
    .map(str::to_owned);
    Ok(ContainerSpec {
        name: "postgres".to_owned(),
        image: POSTGRES_IMAGE.to_owned(),
        command: vec![bin.join("postgres").display().to_string()],
        args: args.to_vec(),
        writable_mounts: vec![(data.data(), PathBuf::from(PGDATA))],
        run_as: Some((i64::from(uid), i64::from(gid))),
        seccomp: Some(Seccomp::Unconfined),
        ..Default::default()
    })
}

/// True when postgres on 127.0.0.1:`port` accepts connections
/// (`pg_isready`).
pub fn postgres_ready(port: u16) -> bool {
    let Ok(program) = find_program("pg_isready") else { return false };
    Command::new(program)
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Copies the host file `path` to the same path under `rootfs`
/// (following links: the rootfs gets the file).
fn copy_into(rootfs: &Path, path: &Path) -> anyhow::Result<()> {
    let target = rootfs.join(path.strip_prefix("/").unwrap_or(path));
    fs::create_dir_all(target.parent().ok_or_else(|| anyhow!("{} has no parent", target.display()))?)?;
    fs::copy(path, &target).with_context(|| format!("copying {} into the rootfs", path.display()))?;
    Ok(())
}

/// Writes each (path under `rootfs`, text), making the directories it needs.
pub(super) fn write_files(rootfs: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    for (path, text) in files {
        let path = rootfs.join(path);
        fs::create_dir_all(path.parent().ok_or_else(|| anyhow!("{} has no parent", path.display()))?)?;
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
