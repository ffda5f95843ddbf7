//! A private nginx on loopback for the benchmark and the demo, and the
//! process handling both need: every wait has a deadline, and nothing is
//! left running when a step fails.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, TcpListener, TcpStream},
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    process::{Child, ExitStatus},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

pub struct Site {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Site {
    /// A config and document root; nginx runs in the foreground with one
    /// worker (the machine has two cores; wrk gets the other), on the first
    /// free port from `preferred` (other nginx instances on the machine must
    /// not answer in its place).
    pub fn new(preferred: u16) -> Result<Site> {
        let port = free_port(preferred)?;
        let dir = tempfile::Builder::new().prefix("recorder-nginx.").tempdir()?;
        // nginx started as root runs its workers as `nobody`, which must
        // reach the document root: a 0700 directory gives 403 for every page.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let root = dir.path().join("html");
        std::fs::create_dir_all(&root)?;
        std::fs::write(root.join("index.html"), "<html><body>hello from recorder's demo</body></html>\n".repeat(8))?;
        let conf = format!(
            "worker_processes 1;\nerror_log {d}/error.log notice;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
               server {{ listen 127.0.0.1:{port}; root {d}/html; }}\n}}\n",
            d = dir.path().display()
        );
        std::fs::create_dir_all(dir.path().join("tmp"))?;
        std::fs::write(dir.path().join("nginx.conf"), conf)?;
        Ok(Site { dir, port })
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// The nginx command line, foreground.
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

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/index.html", self.port)
    }

    /// Waits until nginx answers a GET with 200; fails at once when
    /// `process` (nginx, or the recorder that runs it) exits first.
    pub fn wait_ready(&self, process: &mut Proc, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(200) = self.get() {
                return Ok(());
            }
            if let Some(status) = process.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before nginx answered on port {}; error.log:\n{}",
                    process.what,
                    self.port,
                    error_log(self)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "waited {timeout:?} for nginx to answer 200 on port {}; it did not. error.log:\n{}",
                    self.port,
                    error_log(self)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One GET of the index page; returns the HTTP status.
    pub fn get(&self) -> Result<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        let status = resp.split_whitespace().nth(1).context("empty HTTP response")?;
        Ok(status.parse()?)
    }
}

pub fn error_log(site: &Site) -> String {
    std::fs::read_to_string(site.dir.path().join("error.log")).unwrap_or_default()
}

/// The lines of nginx's error log that say something failed or was denied.
pub fn failures(log: &str) -> Vec<&str> {
    log.lines().filter(|l| ["[alert]", "[emerg]", "Operation not permitted"].iter().any(|m| l.contains(m))).collect()
}

/// The first TCP port from `preferred` that nothing listens on.
fn free_port(preferred: u16) -> Result<u16> {
    (preferred..preferred.saturating_add(100))
        .find(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, *p)).is_ok())
        .with_context(|| format!("no free TCP port on 127.0.0.1 from {preferred}"))
}

/// A child process that is killed with everything it started when dropped
/// (nginx's workers outlive a killed master).
pub struct Proc {
    pub child: Child,
    /// What it is, for messages ("the recorder", "nginx under the profile").
    pub what: &'static str,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to this process alone.
    pub fn signal(&self, signal: i32) -> Result<()> {
        // SAFETY: kill(2) on our own unreaped child (a positive PID, so
        // never a process group).
        if unsafe { libc::kill(self.child.id() as i32, signal) } != 0 {
            bail!("cannot signal {}: {}", self.what, std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` for it to exit; the error names what was
    /// waited for.
    pub fn wait(&mut self, timeout: Duration, waiting_for: &str) -> Result<(ExitStatus, Duration)> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status, started.elapsed()));
            }
            if started.elapsed() > timeout {
                bail!("waited {timeout:?} for {waiting_for}; {} (PID {}) still runs", self.what, self.pid());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Its live children (nginx's workers, when this is the master).
    pub fn children(&self) -> Vec<u32> {
        children(self.pid())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let mut tree = Vec::new();
        let mut queue = vec![self.pid()];
        while let Some(p) = queue.pop() {
            for c in children(p) {
                tree.push(c);
                queue.push(c);
            }
        }
        let _ = self.child.kill();
        for pid in tree {
            // SAFETY: kill(2) on a descendant of our child, found just now
            // by its parent PID; one that went away meanwhile is ESRCH.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// Live (non-zombie) processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { return false };
            let Some(i) = stat.rfind(')') else { return false };
            let mut fields = stat[i + 1..].split_whitespace();
            let state = fields.next();
            state != Some("Z") && fields.next().and_then(|pp| pp.parse::<u32>().ok()) == Some(pid)
        })
        .collect();
    found.sort_unstable();
    found
}
