//! Clients that count their failures: a loop of HTTP GETs in a thread,
//! wrk, redis-benchmark and pgbench. Every one of them fails loudly when
//! its program is missing rather than reporting "no errors".

use std::{
    io::{Read as _, Write as _},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use crate::{containers::find_program, cri::images::http_get};

/// What a client saw.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    /// The first few failures, for the assertion message.
    pub errors: Vec<String>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.errors.len() < 5 {
            self.errors.push(what);
        }
    }
}

/// GETs of `/` on 127.0.0.1:`port`, one connection each (HTTP/1.0), in a
/// loop until stopped. A response that is not `200` with `body` at its
/// end is a failure, as is a refused or reset connection.
pub struct HttpLoop {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Tally>,
}

impl HttpLoop {
    pub fn start(port: u16, body: &'static str) -> HttpLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut tally = Tally::default();
            while !flag.load(Ordering::Relaxed) {
                match http_get(port) {
                    Ok(page) if page.starts_with("HTTP/1.1 200") && page.ends_with(body) => tally.ok += 1,
                    Ok(page) => tally.fail(format!("unexpected response: {:?}", page.lines().next())),
                    Err(e) => tally.fail(format!("{e:#}")),
                }
                thread::sleep(Duration::from_millis(5));
            }
            tally
        });
        HttpLoop { stop, thread }
    }

    /// Stops the loop and returns what it saw.
    pub fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the HTTP client thread panicked")
    }
}

/// `wrk -t1 -c16 -dSECONDS http://127.0.0.1:PORT/`; requests and errors
/// (socket errors plus non-2xx/3xx responses) from its report.
pub fn wrk(port: u16, seconds: u64) -> (Tally, String) {
    let wrk = find_program("wrk").expect("wrk is needed (cargo xtask setup installs it)");
    let out = Command::new(wrk)
        .args(["-t1", "-c16", &format!("-d{seconds}s"), &format!("http://127.0.0.1:{port}/")])
        .stdin(Stdio::null())
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {}{text}", String::from_utf8_lossy(&out.stderr));
    (parse_wrk(&text), text)
}

/// Reads `N requests in`, `Socket errors: connect a, read b, write c,
/// timeout d` and `Non-2xx or 3xx responses: n` (wrk prints the last two
/// only when they are not zero).
pub fn parse_wrk(text: &str) -> Tally {
    let requests: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in").map(|(n, _)| n.trim().parse().ok()))
        .flatten()
        .unwrap_or(0);
    let mut tally = Tally::default();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            let n: u64 = rest.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum();
            tally.failed += n;
            tally.errors.push(line.to_owned());
        }
        if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            tally.failed += rest.trim().parse::<u64>().unwrap_or(1);
            tally.errors.push(line.to_owned());
        }
    }
    tally.ok = requests.saturating_sub(tally.failed);
    tally
}

/// redis-benchmark against 127.0.0.1:`port`: `requests` of each of the
/// usual commands from 10 clients. It exits at the first error reply or
/// lost connection (redis 7), so a tally of one ok per test that reported
/// and a failure for anything else. The text returned is its report
/// without the progress lines.
pub fn redis_benchmark(port: u16, requests: u32) -> (Tally, String) {
    let program = find_program("redis-benchmark").expect("redis-benchmark is needed (package redis-tools)");
    let out = Command::new(program)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "-c", "10", "-r", "10000"])
        .args(["-n", &requests.to_string(), "-t", "set,get,incr,lpush,rpop,sadd,hset,lrange_100,mset"])
        .stdin(Stdio::null())
        .output()
        .expect("redis-benchmark runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut tally = Tally::default();
    let mut report = Vec::new();
    // Progress lines end in \r; the report's lines in \n.
    for line in text.split('\n').filter_map(|l| l.rsplit('\r').next()).map(str::trim).filter(|l| !l.is_empty()) {
        report.push(line.to_owned());
        if line.contains("requests per second") {
            tally.ok += 1;
        } else {
            tally.fail(line.to_owned());
        }
    }
    if !out.status.success() {
        tally.fail(format!("redis-benchmark exited with {}", out.status));
    }
    (tally, report.join("\n"))
}

/// [`redis_benchmark`], a failure unless all nine of its benchmarks reported.
pub fn redis_benchmark_all(port: u16, requests: u32) -> (Tally, String) {
    let (mut tally, text) = redis_benchmark(port, requests);
    if tally.ok < 9 {
        tally.fail(format!("only {} of 9 benchmarks reported", tally.ok));
    }
    (tally, text)
}

/// `BGSAVE` on redis at 127.0.0.1:`port`, then `INFO persistence` until the save ended: one
/// ok when redis forked its child and the child wrote the RDB (`rdb_last_bgsave_status:ok`).
/// Under a profile without the fork (clone), redis answers BGSAVE with an error.
pub fn redis_bgsave(port: u16) -> (Tally, String) {
    let mut tally = Tally::default();
    let command = |line: &str| -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("{line}\r\n").as_bytes())?;
        let mut reply = vec![0u8; 8192];
        let n = stream.read(&mut reply)?;
        Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
    };
    let started = match command("BGSAVE") {
        Ok(reply) => reply,
        Err(e) => {
            tally.fail(format!("BGSAVE: {e}"));
            return (tally, String::new());
        }
    };
    if !started.starts_with("+Background saving started") {
        tally.fail(format!("BGSAVE answered {:?}", started.trim()));
        return (tally, started);
    }
    let mut info = String::new();
    let ended = crate::servers::wait_until(Duration::from_secs(20), || {
        info = command("INFO persistence").unwrap_or_default();
        info.contains("rdb_bgsave_in_progress:0")
    });
    let status = info.lines().find(|l| l.starts_with("rdb_last_bgsave_status:")).unwrap_or("").trim().to_owned();
    if ended && status == "rdb_last_bgsave_status:ok" {
        tally.ok = 1;
    } else {
        tally.fail(format!("the background save did not succeed: {status:?} (ended: {ended})"));
    }
    (tally, format!("BGSAVE: {} -> {status}", started.trim()))
}

/// `pgbench -i -s 1` (a fresh pgbench schema), then `pgbench -c 4 -j 2 -T SECONDS`.
pub fn pgbench_init_and_run(port: u16, seconds: u32) -> (Tally, String) {
    let (init, init_text) = pgbench(port, &["-i", "-s", "1"]);
    if init.failed > 0 {
        return (init, init_text);
    }
    pgbench(port, &["-c", "4", "-j", "2", "-T", &seconds.to_string()])
}

/// `pgbench ARGS` against 127.0.0.1:`port` as user postgres; the tally is
/// 1 ok, or the failure with pgbench's output (it exits non-zero on any
/// connection or transaction error, and reports failed transactions).
pub fn pgbench(port: u16, args: &[&str]) -> (Tally, String) {
    let program = find_program("pgbench").expect("pgbench is needed (package postgresql-client)");
    let out = Command::new(program)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(args)
        .arg("postgres")
        .stdin(Stdio::null())
        .output()
        .expect("pgbench runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut tally = Tally::default();
    let failed_transactions = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("number of failed transactions:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    if !out.status.success() {
        tally.fail(format!("pgbench {args:?} exited with {}", out.status));
    } else if failed_transactions > 0 {
        tally.fail(format!("{failed_transactions} failed transactions"));
    } else {
        tally.ok = 1;
    }
    (tally, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read() {
        let clean = "Running 2s test @ http://127.0.0.1:1/\n  1 threads and 16 connections\n  4242 requests in 2.00s, 1.00MB read\nRequests/sec:   2121.00\n";
        let t = parse_wrk(clean);
        assert_eq!((t.ok, t.failed), (4242, 0));
        let bad = "  100 requests in 2.00s, 1.00MB read\n  Socket errors: connect 3, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\n";
        let t = parse_wrk(bad);
        assert_eq!((t.ok, t.failed), (90, 10));
    }
}
