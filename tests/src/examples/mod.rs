//! The proven example profiles in `examples/profiles/`: the workloads (Debian's nginx, redis,
//! postgres and caddy, each in a local image), how each is recorded through the CRI
//! ([`record`]), how a profile is proven under a runtime ([`prove`]), and what the shipped
//! files hold ([`files`]).
//!
//! tests/tests/examples.rs drives it: its ignored `regenerate` test (run by
//! `cargo xtask examples`) writes the files; its other tests check them and fail when they are
//! stale. xtask cannot depend on this crate, so it runs that test binary, as
//! `cargo xtask self-profile` does.

pub mod files;
pub mod prove;
pub mod record;

use std::{
    any::Any,
    path::{Path, PathBuf},
};

use crate::{
    cri::{
        ContainerSpec,
        databases::{self, PgData},
        images::{self, Image},
    },
    servers::clients::{self, Tally},
    workspace_root,
};

/// The command that writes `examples/profiles/` again; every staleness failure names it.
pub const REGENERATE: &str = "cargo xtask examples";

/// The pods' namespace, while recorded and while proven.
pub const NAMESPACE: &str = "examples";

/// StopContainer's grace period (a pod's terminationGracePeriodSeconds).
pub const GRACE_SECONDS: i64 = 20;

/// A clean stop takes far less than the grace period: a server whose shutdown is denied hangs
/// until the grace period ends and is killed.
pub const STOP_DEADLINE_SECONDS: f64 = 5.0;

/// The baseline of `diff.txt` and of the size comparison: what `RuntimeDefault` means on the
/// containerd that runs the pods.
pub const BASELINE: &str = "runtime/default:containerd";

/// A container to run, and what must outlive it (its data directory).
pub type Container = (ContainerSpec, Box<dyn Any>);

/// One example: a server from a Debian package, its image, its own client.
pub struct Workload {
    /// The directory under examples/profiles, the pod's name and the container's name.
    pub name: &'static str,
    /// What it is, for the index.
    pub what: &'static str,
    pub image: Image,
    /// Debian packages whose versions the profile depends on (server and client); with
    /// [`RUNTIME_PACKAGES`] they are the provenance the staleness test compares.
    pub packages: &'static [&'static str],
    /// The server's executable on the host (the image holds the same file), for
    /// `recorder likely`.
    pub executable: &'static str,
    /// The client, as a shell command with `PORT` for the port (provenance).
    pub client_command: &'static str,
    /// Is it up on this port?
    pub ready: fn(u16) -> bool,
    /// The client's run; its tally must have no failure.
    pub client: fn(u16) -> (Tally, String),
    /// The container to run on `port`, with what must outlive it (a data directory).
    pub container: fn(&Path, u16) -> anyhow::Result<Container>,
    /// Lines the container's log must hold after a graceful stop.
    pub stop_log: &'static [&'static str],
}

/// The container runtimes and containerd: their versions are provenance too.
pub const RUNTIME_PACKAGES: &[&str] = &["containerd", "runc", "crun"];

/// Every example, in the order of the index.
pub fn workloads() -> [Workload; 4] {
    [
        web_server(
            ("nginx", "web server (master and worker processes)"),
            Image::Nginx,
            &["nginx", "wrk"],
            "/usr/sbin/nginx",
            |work, port| Ok((images::nginx_container(work, port)?, Box::new(()))),
            &["signal 15 (SIGTERM) received", "exit"],
        ),
        Workload {
            name: "redis",
            what: "cache (a forked child saves the RDB)",
            image: Image::Redis,
            packages: &["redis-server", "redis-tools"],
            executable: "/usr/bin/redis-server",
            client_command: "redis-benchmark -h 127.0.0.1 -p PORT -q -c 10 -r 10000 -n 10000 \
                             -t set,get,incr,lpush,rpop,sadd,hset,lrange_100,mset && \
                             redis-cli -p PORT BGSAVE (until rdb_last_bgsave_status:ok)",
            ready: databases::redis_ready,
            client: redis_client,
            container: |_, port| {
                let data = tempfile::Builder::new().prefix("examples-redis.").tempdir_in("/tmp")?;
                Ok((databases::redis_container(port, data.path()), Box::new(data)))
            },
            stop_log: &["Received SIGTERM", "DB saved on disk", "ready to exit, bye bye"],
        },
        Workload {
            name: "postgres",
            what: "database (postmaster, background workers, a backend per connection)",
            image: Image::Postgres,
            packages: &["postgresql-15", "postgresql-client-15"],
            executable: "/usr/lib/postgresql/15/bin/postgres",
            client_command: "pgbench -h 127.0.0.1 -p PORT -U postgres -i -s 1 postgres && \
                             pgbench -h 127.0.0.1 -p PORT -U postgres -c 4 -j 2 -T 4 postgres",
            ready: databases::postgres_ready,
            client: |port| clients::pgbench_init_and_run(port, 4),
            container: |_, port| {
                let data = PgData::init()?;
                Ok((databases::postgres_container(port, &data)?, Box::new(data)))
            },
            stop_log: &["received smart shutdown request", "database system is shut down"],
        },
        web_server(
            ("caddy", "web server (one Go process)"),
            Image::Caddy,
            &["caddy", "wrk"],
            "/usr/bin/caddy",
            |work, port| Ok((images::caddy_container(work, port)?, Box::new(()))),
            &["shutting down apps, then terminating", "shutdown complete"],
        ),
    ]
}

/// A web server served by wrk, ready when `GET /` answers 200.
fn web_server(
    (name, what): (&'static str, &'static str),
    image: Image,
    packages: &'static [&'static str],
    executable: &'static str,
    container: fn(&Path, u16) -> anyhow::Result<Container>,
    stop_log: &'static [&'static str],
) -> Workload {
    Workload {
        name,
        what,
        image,
        packages,
        executable,
        client_command: "wrk -t1 -c16 -d3s http://127.0.0.1:PORT/",
        ready: http_ready,
        client: |port| clients::wrk(port, 3),
        container,
        stop_log,
    }
}

/// Every image the examples need.
pub fn images() -> Vec<Image> {
    workloads().iter().map(|w| w.image).collect()
}

/// `examples/profiles` in this checkout.
pub fn examples_dir() -> PathBuf {
    workspace_root().join("examples/profiles")
}

/// redis-benchmark, then a background save: the fork that redis's default `save` rules make
/// in production (a profile without it makes redis refuse writes once a save failed).
fn redis_client(port: u16) -> (Tally, String) {
    let (mut tally, mut report) = clients::redis_benchmark_all(port, 10_000);
    let (save, save_report) = clients::redis_bgsave(port);
    tally.ok += save.ok;
    tally.failed += save.failed;
    tally.errors.extend(save.errors);
    report.push('\n');
    report.push_str(&save_report);
    (tally, report)
}

/// A 200 to `GET /` (caddy, a Go server, answers HTTP/1.0 requests as HTTP/1.0).
fn http_ready(port: u16) -> bool {
    images::http_get(port).is_ok_and(|p| p.split_whitespace().nth(1) == Some("200"))
}
