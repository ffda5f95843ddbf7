//! A private nginx on loopback, run on the host (`recorder record --
//! nginx`, `recorder run --profile P -- nginx`) or from a root filesystem
//! (`ctr run --rootfs`): one master and `workers` workers in the
//! foreground, errors (and notices: reload, exit) logged to a file.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

/// The page nginx serves at `/`.
pub const INDEX_HTML: &str = "<h1>recorder lifecycle nginx</h1>\n";

/// What nginx writes to its error log when a syscall is denied, or when
/// something it needed failed outright.
pub const FAILURE_MARKS: [&str; 3] = ["[alert]", "[emerg]", "Operation not permitted"];

/// A prefix directory with a configuration, a document root and logs.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub workers: u32,
}

impl Site {
    /// Everything under a new directory in /tmp. The directory is 0755:
    /// nginx started as root runs its workers as `nobody`, which must
    /// reach the document root (a 0700 temporary directory gives 403).
    pub fn new(port: u16, workers: u32) -> Site {
        let dir = tempfile::Builder::new().prefix("lifecycle-nginx.").tempdir_in("/tmp").expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod 0755");
        let d = dir.path().display().to_string();
        for sub in ["html", "tmp", "logs"] {
            fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        fs::write(dir.path().join("html/index.html"), INDEX_HTML).expect("index.html");
        fs::write(dir.path().join("nginx.conf"), config(&ConfigPaths::under(&d), port, workers)).expect("nginx.conf");
        Site { dir, port, workers }
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// The nginx command line: foreground, this prefix and configuration.
    pub fn argv(&self) -> Vec<String> {
        vec![
            "/usr/sbin/nginx".to_owned(),
            "-c".to_owned(),
            self.conf().display().to_string(),
            "-p".to_owned(),
            self.dir.path().display().to_string(),
            "-g".to_owned(),
            "daemon off;".to_owned(),
        ]
    }

    pub fn error_log_path(&self) -> PathBuf {
        self.dir.path().join("logs/error.log")
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.error_log_path()).unwrap_or_default()
    }
}

/// Where a configuration puts things.
pub struct ConfigPaths {
    pub pid: String,
    pub error_log: String,
    pub root: String,
    pub temp: String,
}

impl ConfigPaths {
    /// Everything under the directory `d` (a [`Site`]'s layout).
    pub fn under(d: &str) -> ConfigPaths {
        ConfigPaths {
            pid: format!("{d}/logs/nginx.pid"),
            error_log: format!("{d}/logs/error.log"),
            root: format!("{d}/html"),
            temp: format!("{d}/tmp"),
        }
    }
}

/// The configuration: `workers` workers (the default user, `nobody`),
/// notices logged (nginx notes reloads and exits at that level), no
/// access log, listening on 127.0.0.1:`port`.
pub fn config(paths: &ConfigPaths, port: u16, workers: u32) -> String {
    let ConfigPaths { pid, error_log, root, temp } = paths;
    format!(
        r#"worker_processes {workers};
pid {pid};
error_log {error_log} notice;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    types {{
        text/html html;
    }}
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        index index.html;
    }}
}}
"#
    )
}

/// The lines of `log` that say something failed (see [`FAILURE_MARKS`]).
pub fn failures(log: &str) -> Vec<&str> {
    log.lines().filter(|l| FAILURE_MARKS.iter().any(|m| l.contains(m))).collect()
}

/// Writes the files an nginx root filesystem needs besides the binary:
/// users (root, and `nobody` for the workers), the document root and a
/// configuration under /etc/nginx, with logs in /var/log/nginx (readable
/// from the host through the rootfs directory).
pub fn populate_rootfs(rootfs: &Path, port: u16, workers: u32) {
    let paths = ConfigPaths {
        pid: "/tmp/nginx.pid".to_owned(),
        error_log: "/var/log/nginx/error.log".to_owned(),
        root: "/srv/www".to_owned(),
        temp: "/tmp".to_owned(),
    };
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n".to_owned(),
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n".to_owned()),
        // glibc's default without this file tries NIS first for passwd and group.
        ("etc/nsswitch.conf", "passwd: files\ngroup: files\n".to_owned()),
        ("srv/www/index.html", INDEX_HTML.to_owned()),
        ("etc/nginx/nginx.conf", config(&paths, port, workers)),
    ];
    for (path, text) in files {
        let path = rootfs.join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
    }
    for dir in ["var/log/nginx", "var/lib/nginx", "run", "root"] {
        fs::create_dir_all(rootfs.join(dir)).expect("mkdir");
    }
}
