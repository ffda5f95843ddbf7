//! A private nginx on loopback for the benchmark and the demo.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

pub struct Site {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Site {
    /// A config and document root; nginx runs in the foreground with one
    /// worker (the machine has two cores; wrk gets the other).
    pub fn new(port: u16) -> Result<Site> {
        let dir = tempfile::Builder::new().prefix("recorder-nginx.").tempdir()?;
        let root = dir.path().join("html");
        std::fs::create_dir_all(&root)?;
        std::fs::write(root.join("index.html"), "<html><body>hello from recorder's demo</body></html>\n".repeat(8))?;
        let conf = format!(
            "worker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
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

    /// Waits until nginx answers a GET with 200.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(200) = self.get() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not answer on port {} (see {})",
                    self.port,
                    self.dir.path().join("error.log").display()
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
