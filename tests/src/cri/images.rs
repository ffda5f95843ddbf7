//! Images for pod tests, built from host files and imported into containerd's `k8s.io`
//! namespace (no registry): the pause image, nginx, and a static program whose telling
//! syscalls all happen in its first millisecond.

use std::{
    fs,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{ContainerSpec, Seccomp};
use crate::{
    containers::{Containerd, absolute, import_image, import_pause_image, rootfs_with},
    workspace_root,
};

/// nginx from the host's `/usr/sbin/nginx` (Debian's package) plus its shared libraries.
pub const NGINX_IMAGE: &str = "localhost/recorder-tests/nginx:local";
/// caddy from the host's `/usr/bin/caddy` (Debian's package, a Go binary) plus its shared
/// libraries.
pub const CADDY_IMAGE: &str = "localhost/recorder-tests/caddy:local";
/// Where the caddy image expects its Caddyfile (a bind mount per container).
pub const CADDYFILE: &str = "/etc/caddy/Caddyfile";
/// tests/programs/early_syscalls.c, statically linked.
pub const EARLY_IMAGE: &str = "localhost/recorder-tests/early:local";
/// Where the nginx image expects its configuration (a bind mount per container).
pub const NGINX_CONF: &str = "/etc/nginx/nginx.conf";
/// The page nginx serves at `/`.
pub const INDEX_HTML: &str = "<h1>recorder-tests nginx</h1>\n";
/// Syscalls tests/programs/early_syscalls.c makes only in its first millisecond.
pub const EARLY_SYSCALLS: [&str; 3] = ["getcpu", "uname", "sysinfo"];
/// tests/programs/replica.c, statically linked: one image, each replica's arguments choose
/// its distinctive calls, and it runs until the test writes to its FIFO.
pub const REPLICA_IMAGE: &str = "localhost/recorder-tests/replica:local";

/// Three executables in one container (`--by-exe`), see [`import_launcher_image`].
pub const LAUNCHER_IMAGE: &str = "localhost/recorder-tests/launcher:local";
/// Where a replica container sees its control directory (holding the FIFO `go`).
pub const REPLICA_CTL: &str = "/ctl";

/// An image a test may need besides the pause image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// [`NGINX_IMAGE`]
    Nginx,
    /// [`EARLY_IMAGE`]
    Early,
    /// [`REPLICA_IMAGE`]
    Replica,
    /// [`super::databases::REDIS_IMAGE`]
    Redis,
    /// [`super::databases::POSTGRES_IMAGE`]
    Postgres,
    /// [`LAUNCHER_IMAGE`]
    Launcher,
    /// [`CADDY_IMAGE`]
    Caddy,
}

/// Imports the pause image and `images` into `c`; `work` holds the build files.
pub fn import(c: &Containerd, images: &[Image], work: &Path) -> anyhow::Result<()> {
    import_pause_image(c, work).context("importing the pause image")?;
    for image in images {
        match image {
            Image::Nginx => import_nginx_image(c, work).context("importing the nginx image")?,
            Image::Early => import_early_image(c, work).context("importing the early_syscalls image")?,
            Image::Replica => import_replica_image(c, work).context("importing the replica image")?,
            Image::Redis => super::databases::import_redis_image(c, work).context("importing the redis image")?,
            Image::Launcher => import_launcher_image(c, work).context("importing the launcher image")?,
            Image::Postgres => {
                super::databases::import_postgres_image(c, work).context("importing the postgres image")?
            }
            Image::Caddy => import_caddy_image(c, work).context("importing the caddy image")?,
        }
    }
    Ok(())
}

/// Imports the pause, nginx and early images into `c`.
pub fn import_all(c: &Containerd, work: &Path) -> anyhow::Result<()> {
    import(c, &[Image::Nginx, Image::Early], work)
}

/// Builds and imports [`NGINX_IMAGE`]: `/bin/nginx` with its libraries, the `/etc/passwd`
/// and `/etc/group` entries that `user root;` looks up, a document root `/srv/www`, and a
/// default configuration listening on 127.0.0.1:18090.
pub fn import_nginx_image(c: &Containerd, work: &Path) -> anyhow::Result<()> {
    let nginx = Path::new("/usr/sbin/nginx");
    if !nginx.exists() {
        bail!("/usr/sbin/nginx not found; install it with `apt-get install -y nginx`");
    }
    let rootfs = rootfs_with(&[nginx], &absolute(work)?.join("nginx-image"))?;
    let files: [(&str, String); 5] = [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n".to_owned()),
        ("etc/group", "root:x:0:\n".to_owned()),
        // glibc's default without this file tries NIS first for passwd and group.
        ("etc/nsswitch.conf", "passwd: files\ngroup: files\n".to_owned()),
        ("srv/www/index.html", INDEX_HTML.to_owned()),
        (NGINX_CONF.trim_start_matches('/'), nginx_conf(18090)),
    ];
    for (path, text) in files {
        let path = rootfs.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    for dir in ["var/log/nginx", "var/lib/nginx", "run", "root"] {
        fs::create_dir_all(rootfs.join(dir)).with_context(|| format!("creating /{dir}"))?;
    }
    import_image(c, &rootfs, NGINX_IMAGE, &["/bin/nginx"], "k8s.io", work)
}

/// An nginx configuration for one master and one worker in the foreground, listening on
/// 127.0.0.1:`port`, logging errors to stderr, with every temp path under /tmp.
pub fn nginx_conf(port: u16) -> String {
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
user root root;
pid /tmp/nginx.pid;
error_log stderr notice;
events {{
    worker_connections 64;
}}
http {{
    access_log off;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    types {{
        text/html html;
    }}
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        root /srv/www;
        index index.html;
    }}
}}
"#
    )
}

/// A container running [`NGINX_IMAGE`] on 127.0.0.1:`port` (host network): writes the
/// configuration into `work` and bind-mounts it over [`NGINX_CONF`]. Unconfined; set
/// `seccomp` on the result for a profile.
pub fn nginx_container(work: &Path, port: u16) -> anyhow::Result<ContainerSpec> {
    Ok(ContainerSpec {
        name: "nginx".to_owned(),
        image: NGINX_IMAGE.to_owned(),
        mounts: vec![config_mount(work, &format!("nginx-{port}.conf"), &nginx_conf(port), NGINX_CONF)?],
        seccomp: Some(Seccomp::Unconfined),
        ..Default::default()
    })
}

/// Writes `text` to `work/name` and returns the bind mount of it over `target`.
fn config_mount(work: &Path, name: &str, text: &str, target: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let conf = absolute(work)?.join(name);
    fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
    Ok((conf, PathBuf::from(target)))
}

/// Builds and imports [`CADDY_IMAGE`]: `/bin/caddy` with its libraries and the document root
/// `/srv/www` holding [`INDEX_HTML`]. The Caddyfile comes from [`caddy_container`].
pub fn import_caddy_image(c: &Containerd, work: &Path) -> anyhow::Result<()> {
    let caddy = Path::new("/usr/bin/caddy");
    if !caddy.exists() {
        bail!("/usr/bin/caddy not found; install it with `apt-get install -y caddy`");
    }
    let rootfs = rootfs_with(&[caddy], &absolute(work)?.join("caddy-image"))?;
    super::databases::write_files(
        &rootfs,
        &[("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("srv/www/index.html", INDEX_HTML)],
    )?;
    fs::create_dir_all(rootfs.join("etc/caddy")).context("creating /etc/caddy")?;
    import_image(c, &rootfs, CADDY_IMAGE, &["/bin/caddy"], "k8s.io", work)
}

/// A Caddyfile serving `/srv/www` on http://127.0.0.1:`port`: no admin endpoint, no
/// automatic HTTPS (nothing to reach here).
pub fn caddyfile(port: u16) -> String {
    format!(
        "{{\n\tadmin off\n\tauto_https off\n}}\n\n\
         http://127.0.0.1:{port} {{\n\troot * /srv/www\n\tfile_server\n}}\n"
    )
}

/// A container running [`CADDY_IMAGE`] (`caddy run`) on 127.0.0.1:`port` (host network): writes
/// the Caddyfile into `work` and bind-mounts it over [`CADDYFILE`]; caddy's data and config
/// directories are under /tmp. Unconfined; set `seccomp` on the result for a profile.
pub fn caddy_container(work: &Path, port: u16) -> anyhow::Result<ContainerSpec> {
    Ok(ContainerSpec {
        name: "caddy".to_owned(),
        image: CADDY_IMAGE.to_owned(),
        args: ["run", "--config", CADDYFILE, "--adapter", "caddyfile"].map(str::to_owned).to_vec(),
        mounts: vec![config_mount(work, &format!("Caddyfile-{port}"), &caddyfile(port), CADDYFILE)?],
        env: [("HOME", "/tmp"), ("XDG_DATA_HOME", "/tmp/data"), ("XDG_CONFIG_HOME", "/tmp/config")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        seccomp: Some(Seccomp::Unconfined),
        ..Default::default()
    })
}

/// Compiles tests/programs/early_syscalls.c with `gcc -static` and imports it as
/// [`EARLY_IMAGE`] with entrypoint `/bin/early_syscalls`.
pub fn import_early_image(c: &Containerd, work: &Path) -> anyhow::Result<()> {
    import_static_program(c, work, "early_syscalls", EARLY_IMAGE)
}

/// Compiles tests/programs/replica.c with `gcc -static` and imports it as
/// [`REPLICA_IMAGE`] with entrypoint `/bin/replica`.
pub fn import_replica_image(c: &Containerd, work: &Path) -> anyhow::Result<()> {
    import_static_program(c, work, "replica", REPLICA_IMAGE)
}

/// Compiles tests/programs/`program`.c with `gcc -static` and imports it as `image` with
/// entrypoint `/bin/<program>`.
fn import_static_program(c: &Containerd, work: &Path, program: &str, image: &str) -> anyhow::Result<()> {
    let work = absolute(work)?.join(format!("{program}-image"));
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let binary = work.join(program);
    gcc(&format!("{program}.c"), &binary, &["-static", "-O2", "-Wall"])?;
    let rootfs = rootfs_with(&[binary.as_path()], &work)?;
    import_image(c, &rootfs, image, &[&format!("/bin/{program}")], "k8s.io", &work)
}

/// Builds and imports [`LAUNCHER_IMAGE`]: `/bin/exe_launcher` (tests/programs/exe_launcher.c,
/// static: a thread, fork, execv, waitpid) runs `/bin/healthcheck`, which makes exactly
/// `unshare` and `exit_group`, then `/bin/server`, exactly `getcpu` and `exit_group`
/// (tests/programs/syscall_probe.c), and exits 0 when both did.
pub fn import_launcher_image(c: &Containerd, work: &Path) -> anyhow::Result<()> {
    let work = absolute(work)?.join("launcher-image");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let builds: [(&str, &str, &[&str]); 3] = [
        ("healthcheck", "syscall_probe.c", &["-static", "-nostdlib", "-O2"]),
        ("server", "syscall_probe.c", &["-static", "-nostdlib", "-O2", "-DNR=309"]),
        ("exe_launcher", "exe_launcher.c", &["-static", "-O2", "-Wall", "-pthread"]),
    ];
    let mut binaries = Vec::new();
    for (name, source, flags) in builds {
        let binary = work.join(name);
        gcc(source, &binary, flags)?;
        binaries.push(binary);
    }
    let paths: Vec<&Path> = binaries.iter().map(PathBuf::as_path).collect();
    let rootfs = rootfs_with(&paths, &work)?;
    import_image(c, &rootfs, LAUNCHER_IMAGE, &["/bin/exe_launcher", "/bin/healthcheck", "/bin/server"], "k8s.io", &work)
}

/// Compiles tests/programs/`source` to `binary` with `flags`.
fn gcc(source: &str, binary: &Path, flags: &[&str]) -> anyhow::Result<()> {
    let source = workspace_root().join("tests/programs").join(source);
    let out = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(binary)
        .arg(&source)
        .output()
        .context("running gcc; install gcc and libc6-dev")?;
    if !out.status.success() {
        bail!(
            "gcc {} failed (static glibc comes with libc6-dev): {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A container named `name` running [`LAUNCHER_IMAGE`] to the end (Unconfined; set
/// `seccomp` on the result for a profile).
pub fn launcher_container(name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: LAUNCHER_IMAGE.to_owned(),
        seccomp: Some(Seccomp::Unconfined),
        ..Default::default()
    }
}

/// A container running [`EARLY_IMAGE`] that sleeps `sleep_ms` after its early syscalls.
pub fn early_container(sleep_ms: u32) -> ContainerSpec {
    ContainerSpec {
        name: "early".to_owned(),
        image: EARLY_IMAGE.to_owned(),
        args: vec![sleep_ms.to_string()],
        seccomp: Some(Seccomp::Unconfined),
        ..Default::default()
    }
}

/// A container named `name` running [`REPLICA_IMAGE`]: it makes `uname`, plus `getcpu` if
/// `calls` holds 'a' and `sysinfo` if it holds 'b', then waits on the FIFO `ctl/go` (made
/// here if missing; `ctl` is bind-mounted at [`REPLICA_CTL`]) until [`release_replica`].
/// Unconfined; set `seccomp` on the result for a profile.
pub fn replica_container(name: &str, calls: &str, ctl: &Path) -> anyhow::Result<ContainerSpec> {
    let ctl = absolute(ctl)?;
    fs::create_dir_all(&ctl).with_context(|| format!("creating {}", ctl.display()))?;
    let fifo = ctl.join("go");
    if !fifo.exists() {
        let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes())?;
        // SAFETY: mkfifo with a valid NUL-terminated path.
        if unsafe { libc::mkfifo(path.as_ptr(), 0o600) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("mkfifo {}", fifo.display()));
        }
    }
    Ok(ContainerSpec {
        name: name.to_owned(),
        image: REPLICA_IMAGE.to_owned(),
        args: vec![calls.to_owned(), format!("{REPLICA_CTL}/go")],
        mounts: vec![(ctl, PathBuf::from(REPLICA_CTL))],
        seccomp: Some(Seccomp::Unconfined),
        ..Default::default()
    })
}

/// Lets the replica waiting on `ctl/go` finish. Waits (up to [`super::WAIT_TIMEOUT`]) until
/// the replica has opened the FIFO for reading, so it also waits for it to get that far.
pub fn release_replica(ctl: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let fifo = ctl.join("go");
    let deadline = Instant::now() + super::WAIT_TIMEOUT;
    loop {
        // Non-blocking: ENXIO while nobody reads (a replica that died would hang a blocking open).
        match fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo) {
            Ok(mut writer) => {
                writer.write_all(b"go\n").with_context(|| format!("writing {}", fifo.display()))?;
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).with_context(|| format!("no replica reads {}", fifo.display())),
        }
    }
}

/// `GET /` on 127.0.0.1:`port` with HTTP/1.0; returns the whole response (status line,
/// headers, body).
pub fn http_get(port: u16) -> anyhow::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .with_context(|| format!("sending a request to {addr}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).with_context(|| format!("reading the response from {addr}"))?;
    Ok(response)
}

/// Retries [`http_get`] until it answers 200 or `timeout` passes.
pub fn wait_for_http(port: u16, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        match http_get(port) {
            Ok(response) if response.starts_with("HTTP/1.1 200") => return Ok(response),
            Ok(response) if Instant::now() > deadline => {
                bail!("127.0.0.1:{port} answered but not 200 OK: {response:?}")
            }
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!("nothing served on 127.0.0.1:{port} in {timeout:?}")));
            }
            _ => thread::sleep(Duration::from_millis(20)),
        }
    }
}
