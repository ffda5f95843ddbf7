#!/usr/bin/python3
"""Derive, by recording, the syscalls that nginx, redis and postgres make only when they
are stopped (their "shutdown set"), per stop signal, and validate the sets by enforcing
profiles with and without them (recorder/data/shutdown/*.json, docs/shutdown-sets.md).

A profile recorded while a server runs (`record --pid`, `record --pod --duration`) never
sees the server's shutdown; under it the server cannot stop gracefully. The shutdown set is
what such a profile needs on top.

derive (per server configuration, stop signal and run):
  1. start the server in the foreground in a cgroup v2 of its own (signals at their
     default dispositions), warm it up with client traffic (clients run outside the
     cgroup);
  2. phase A-busy: `recorder record --cgroup CG --duration 10s` under client traffic;
     phase A-idle: 3 s after the traffic ended, the same for 5 s without traffic;
  3. phase B: `recorder record --cgroup CG` (no duration); either under traffic
     ("loaded": the signal comes while the clients are busy) or idle ("idle": no traffic
     at all in B); the stop signal goes to the main PID only (as systemd, docker and the
     kubelet do); the recording ends when the cgroup is empty.
  The run's shutdown set is B minus the configuration's steady state: for a loaded run
  the union of all A-busy and A-idle recordings of that configuration, for an idle run
  the union of the A-idle recordings only (so calls that an idle server never makes but
  its shutdown does, e.g. nginx's error-log write, are kept even though a busy server
  makes them too: a profile recorded on an idle server lacks them).
  A server's set for a signal is the union over runs and configurations, less NOISE.

validate (per configuration and signal; --validate-configs):
  P0 = a recording of startup + serving that never saw a stop (record --cgroup with a
       duration, started on the empty cgroup before the server; the server is SIGKILLed
       through cgroup.kill afterwards) + the configuration's A unions;
  P1 = P0 + the server's shipped set for the signal (--write-data DIR/<server>.json if
       it exists, else the sets just derived);
  with --eliminate also P1 minus each name it adds to P0, one at a time.
  The server runs under `recorder run --profile P`, serves, gets the signal (loaded and
  idle) and the time until its cgroup is empty is measured (hang = not empty after
  --validate-timeout, then it is killed); exit status, leftover pid files, redis' RDB,
  postgres' cluster state and EPERM lines in the server log are noted.

Configurations (--servers takes server names or configuration labels):
  nginx-wp1, nginx-wp2 (worker_processes); redis-nopersist, redis-rdb, redis-aof,
  redis-rdb-bgsave, redis-aof-rewrite, redis-rdb-large; postgres.

Usage (root; needs nginx, redis-server + redis-tools, postgresql-15, wrk, pgbench):
    tests/scripts/derive-shutdown-sets.py [--servers nginx,redis,postgres] [--runs 6]
        [--write-data recorder/data/shutdown] [--eliminate] [--validate-reps 2]
        [--skip-validate | --skip-derive] [--workdir DIR]
    tests/scripts/derive-shutdown-sets.py --reanalyze A/results.json,B/results.json
        [--write-data recorder/data/shutdown]
  See docs/shutdown-sets.md.

Never points `recorder -o` at anything but a fresh regular file inside the work dir.
Every cgroup it creates (under <cgroup2 mount>/shutdown-derive-<pid>) is killed and
removed at the end, whatever happens, and so is the SysV / POSIX shared memory of the
postmasters it started.
"""

import argparse
import collections
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

RECORDER = os.environ.get("RECORDER", "/work/helper-bin/recorder")
PG_BIN = "/usr/lib/postgresql/15/bin"
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGQUIT": signal.SIGQUIT, "SIGINT": signal.SIGINT}

A_BUSY = 10       # seconds of recording under traffic
A_IDLE = 5        # seconds of recording without traffic
B_TRAFFIC = 6     # seconds of traffic in a loaded phase B
SIGNAL_AT = 2.5   # the signal comes this long after the traffic of a loaded B started
IDLE_WAIT = 1.0   # ... or this long after an idle B started recording
IDLE_SETTLE = 3   # seconds between the end of A-busy's traffic and A-idle


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def cgroup2_mount():
    for line in open("/proc/self/mountinfo"):
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] == "cgroup2":
            return fields[4]
    sys.exit("no cgroup v2 mounted")


def populated(cg):
    with open(os.path.join(cg, "cgroup.events")) as f:
        for line in f:
            k, v = line.split()
            if k == "populated":
                return v == "1"
    return False


class Cgroups:
    """Our cgroups, all under one parent that is removed at the end."""

    def __init__(self):
        self.root = os.path.join(cgroup2_mount(), f"shutdown-derive-{os.getpid()}")
        os.mkdir(self.root)
        self.children = []

    def new(self, name):
        path = os.path.join(self.root, name)
        os.mkdir(path)
        self.children.append(path)
        return path

    @staticmethod
    def kill(cg, timeout=10):
        if not os.path.isdir(cg):
            return
        if populated(cg):
            with open(os.path.join(cg, "cgroup.kill"), "w") as f:
                f.write("1")
        end = time.time() + timeout
        while populated(cg) and time.time() < end:
            time.sleep(0.02)

    def remove(self, cg):
        self.kill(cg)
        for _ in range(100):
            try:
                os.rmdir(cg)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)
        if cg in self.children and not os.path.isdir(cg):
            self.children.remove(cg)

    def cleanup(self):
        for cg in list(self.children):
            self.remove(cg)
        try:
            os.rmdir(self.root)
        except OSError as e:
            log("could not remove", self.root, e)


LIVE = []  # processes we started that must not outlive us


def track(p):
    LIVE.append(p)
    return p


def stop_process(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in LIVE:
        LIVE.remove(p)


def default_signals():
    """Children start with every signal at its default disposition, as a container's
    process does (a shell's background job would inherit SIGINT and SIGQUIT ignored,
    and a server that installs no handler for them would not stop)."""
    for s in range(1, signal.NSIG):
        if s in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def client(cmd):
    """A traffic client (outside every cgroup of ours)."""
    return track(subprocess.Popen(cmd, preexec_fn=default_signals, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def spawn_in(cmd, cg, user=None, stdout=None, env=None):
    """Start cmd as a member of cgroup cg (it joins before exec), optionally as user."""
    ids = None
    if user:
        pw = pwd.getpwnam(user)
        ids = (pw.pw_uid, pw.pw_gid, os.getgrouplist(user, pw.pw_gid))

    def pre():
        default_signals()
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write("0")
        if ids:
            os.setgroups(ids[2])
            os.setgid(ids[1])
            os.setuid(ids[0])

    return track(subprocess.Popen(cmd, preexec_fn=pre, stdin=subprocess.DEVNULL,
                                  stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
                                  start_new_session=True, env=env, cwd="/"))


def run_quiet(cmd, **kw):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


# ---------------------------------------------------------------- recorder

class Recorder:
    def __init__(self, workdir):
        self.workdir = workdir
        self.n = 0

    def start(self, cg, tag, duration=None):
        """Start `record --cgroup cg` into a fresh regular file; returns (proc, path)."""
        self.n += 1
        out = os.path.join(self.workdir, f"rec-{os.getpid()}", f"{self.n:04d}-{tag}.json")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        # The recorder replaces whatever path -o names: only ever a new file of ours.
        assert os.path.realpath(out).startswith(os.path.realpath(self.workdir) + os.sep)
        assert not os.path.lexists(out), out
        cmd = [RECORDER, "record", "-q", "--cgroup", cg, "-o", out]
        if duration:
            cmd += ["--duration", f"{duration}s"]
        errf = open(out[:-5] + ".stderr", "w")
        p = track(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf))
        errf.close()
        self.wait_attached(p)
        return p, out

    @staticmethod
    def wait_attached(p):
        """The probe is attached once the recorder holds its BPF links."""
        end = time.time() + 10
        while time.time() < end:
            if p.poll() is not None:
                raise RuntimeError(f"recorder exited early: {p.returncode}")
            try:
                links = sum(1 for fd in os.listdir(f"/proc/{p.pid}/fd")
                            if "bpf_link" in os.readlink(f"/proc/{p.pid}/fd/{fd}"))
            except OSError:
                links = 0
            if links >= 4:
                time.sleep(0.3)
                return
            time.sleep(0.02)
        raise RuntimeError("recorder did not attach within 10 s")

    @staticmethod
    def finish(p, out, timeout=30):
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(p, signal.SIGINT, timeout=30)
        if p in LIVE:
            LIVE.remove(p)
        if p.returncode != 0:
            raise RuntimeError(f"recorder failed ({p.returncode}), see {out[:-5]}.stderr")
        return names_of(out)


def names_of(profile_path):
    with open(profile_path) as f:
        doc = json.load(f)
    return sorted({n for rule in doc.get("syscalls", []) if rule.get("action") == "SCMP_ACT_ALLOW"
                   for n in rule.get("names", [])})


def write_profile(path, names):
    rules = [{"names": sorted(names), "action": "SCMP_ACT_ALLOW"}]
    if "clone3" not in names:  # as the recorder writes it: glibc falls back to clone
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
    doc = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
           "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": rules}
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    os.chmod(path, 0o644)


# ---------------------------------------------------------------- servers

def free_port(preferred):
    for port in range(preferred, preferred + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def wait_tcp(port, p, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if p.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


class Server:
    server = ""
    label = ""
    user = None

    @property
    def pids(self):
        """Main PIDs of every instance started."""
        if "_pids" not in self.__dict__:
            self._pids = set()
        return self._pids

    def version(self):
        raise NotImplementedError

    def setup(self, workdir):
        """Once per configuration."""

    def prepare_run(self):
        """Before each start."""

    def cmd(self):
        raise NotImplementedError

    def wait_ready(self, p, timeout=30):
        raise NotImplementedError

    def warm(self):
        t = self.traffic(2)
        t.wait()
        LIVE.remove(t)

    def traffic(self, secs):
        raise NotImplementedError

    def log_path(self):
        raise NotImplementedError

    def denied_lines(self, offset):
        """Log lines since offset that tell of a denied call."""
        try:
            with open(self.log_path(), errors="replace") as f:
                f.seek(offset)
                text = f.read()
        except OSError:
            return []
        return [l for l in text.splitlines() if "not permitted" in l or "EPERM" in l]

    def after_stop(self):
        """What the stop left behind (pid files, saved data), to tell a clean stop."""
        return {}

    def during_a_busy(self):
        """Called when the A-busy recording and its traffic have started."""

    def before_signal(self):
        """Called right before the stop signal; returns notes for the results."""
        return {}

    def cleanup_ipc(self):
        """After a kill: remove what a killed server leaves outside its directory."""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path())
        except OSError:
            return 0


class Nginx(Server):
    server = "nginx"

    def __init__(self, workers):
        self.workers = workers
        self.label = f"nginx-wp{workers}"

    def version(self):
        return run_quiet(["nginx", "-v"]).stdout.strip().splitlines()[0]

    def setup(self, workdir):
        self.prefix = os.path.join(workdir, self.label)
        for d in ("logs", "html", "tmp"):
            os.makedirs(os.path.join(self.prefix, d), exist_ok=True)
        self.port = free_port(18080 + 10 * self.workers)
        with open(os.path.join(self.prefix, "html", "index.html"), "w") as f:
            f.write("<html><body><h1>Welcome to nginx!</h1></body></html>\n" * 10)
        with open(os.path.join(self.prefix, "html", "big.bin"), "wb") as f:
            f.write(os.urandom(256 * 1024))
        for root, dirs, files in os.walk(self.prefix):
            for n in dirs:
                os.chmod(os.path.join(root, n), 0o755)
            for n in files:
                os.chmod(os.path.join(root, n), 0o644)
        # Like the official image's nginx.conf (notice-level error log, sendfile,
        # keepalive), with a pid file, on a private prefix and loopback port.
        conf = f"""
user www-data;
worker_processes {self.workers};
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log notice;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {self.prefix}/logs/access.log;
    # Private temp paths: nginx chowns its temp directories to `user` at startup, and
    # the shared /var/lib/nginx ones may be left owned by someone else.
    client_body_temp_path {self.prefix}/tmp/body;
    proxy_temp_path {self.prefix}/tmp/proxy;
    fastcgi_temp_path {self.prefix}/tmp/fastcgi;
    uwsgi_temp_path {self.prefix}/tmp/uwsgi;
    scgi_temp_path {self.prefix}/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.prefix}/html;
        index index.html;
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
"""
        self.conf = os.path.join(self.prefix, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.script = os.path.join(self.prefix, "paths.lua")
        with open(self.script, "w") as f:
            f.write('local paths = {"/", "/index.html", "/big.bin", "/missing"}\n'
                    'request = function() return wrk.format("GET", paths[math.random(#paths)]) end\n')

    def prepare_run(self):
        if os.path.exists(os.path.join(self.prefix, "nginx.pid")):
            os.unlink(os.path.join(self.prefix, "nginx.pid"))

    def after_stop(self):
        return {"pidfile_left": os.path.exists(os.path.join(self.prefix, "nginx.pid"))}

    def cmd(self):
        return ["nginx", "-p", self.prefix, "-c", self.conf, "-g", "daemon off;"]

    def wait_ready(self, p, timeout=30):
        return wait_tcp(self.port, p, timeout)

    def traffic(self, secs):
        return client(["wrk", "-t", "2", "-c", "16", "-d", f"{secs}s", "-s", self.script,
                       f"http://127.0.0.1:{self.port}/"])

    def log_path(self):
        return os.path.join(self.prefix, "logs", "error.log")


class Redis(Server):
    server = "redis"
    PERSIST = {
        "nopersist": 'save ""\nappendonly no\n',
        # Redis' own default when started without a config (the official image):
        "rdb": "save 3600 1 300 100 60 10000\nappendonly no\n",
        "aof": 'save ""\nappendonly yes\nappendfsync everysec\n',
    }
    # With a ~40 MB dataset and a background save (BGSAVE) or AOF rewrite started in the
    # A-busy phase (it is part of serving) and again right before the stop signal, so
    # that the stop finds a fork child at work (killed by the parent) and the final save
    # is large enough for incremental fsync (sync_file_range every 4 MB).
    PERSIST["rdb-bgsave"] = PERSIST["rdb"]
    PERSIST["aof-rewrite"] = PERSIST["aof"]
    # The same ~40 MB dataset without a background save while serving (a recording
    # shorter than the save interval): the stop's own save then needs sync_file_range.
    PERSIST["rdb-large"] = PERSIST["rdb"]
    BIG = ("rdb-bgsave", "aof-rewrite", "rdb-large")
    CHILD_JOB = {"rdb-bgsave": ("BGSAVE", "rdb_bgsave_in_progress:1"),
                 "aof-rewrite": ("BGREWRITEAOF", "aof_rewrite_in_progress:1")}

    def __init__(self, persistence):
        if persistence not in self.PERSIST:
            sys.exit(f"unknown redis configuration {persistence}")
        self.persistence = persistence
        self.label = f"redis-{persistence}"
        self.child_job = self.CHILD_JOB.get(persistence)

    def cli(self, *args):
        return run_quiet(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args]).stdout

    def warm(self):
        if self.persistence in self.BIG:
            t = client(["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port), "-q",
                        "-c", "10", "-n", "100000", "-r", "200000", "-d", "512", "-t", "set"])
            t.wait()
            LIVE.remove(t)
        super().warm()

    def during_a_busy(self):
        if self.child_job:
            self.cli(self.child_job[0])

    def before_signal(self):
        if not self.child_job:
            return {}
        self.cli(self.child_job[0])
        return {"child_in_progress": self.child_job[1] in self.cli("INFO", "persistence")}

    def version(self):
        return run_quiet(["redis-server", "--version"]).stdout.strip().splitlines()[0]

    def setup(self, workdir):
        self.dir = os.path.join(workdir, self.label)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.port = free_port(16379 + 10 * list(self.PERSIST).index(self.persistence))
        self.conf = os.path.join(self.dir, "redis.conf")
        with open(self.conf, "w") as f:
            f.write(f"bind 127.0.0.1\nport {self.port}\ndaemonize no\nlogfile \"\"\n"
                    f"dir {self.data}\n" + self.PERSIST[self.persistence])
        self.logfile = os.path.join(self.dir, "server.log")

    def prepare_run(self):
        shutil.rmtree(self.data)
        os.makedirs(self.data)

    def after_stop(self):
        if self.persistence.startswith("rdb"):
            return {"rdb_saved": os.path.exists(os.path.join(self.data, "dump.rdb"))}
        return {}

    def cmd(self):
        return ["redis-server", self.conf]

    def wait_ready(self, p, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if p.poll() is not None:
                return False
            r = run_quiet(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "ping"])
            if "PONG" in r.stdout:
                return True
            time.sleep(0.1)
        return False

    def traffic(self, secs):
        return client(["timeout", "-s", "INT", str(secs), "redis-benchmark", "-h", "127.0.0.1",
                       "-p", str(self.port), "-q", "-l", "-c", "10", "-n", "20000", "-r", "100000",
                       "-t", "set,get,incr,lpush,rpop,sadd,hset,lrange_100,mset"])

    def log_path(self):
        return self.logfile


class Postgres(Server):
    server = "postgres"
    user = "postgres"
    label = "postgres"

    def version(self):
        return run_quiet([f"{PG_BIN}/postgres", "--version"]).stdout.strip().splitlines()[0]

    def setup(self, workdir):
        self.dir = os.path.join(workdir, self.label)
        self.sock = os.path.join(self.dir, "sock")
        self.template = os.path.join(self.dir, "template")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.sock, exist_ok=True)
        pw = pwd.getpwnam("postgres")
        for d in (self.dir, self.sock):
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o755)
        self.port = free_port(15432)
        self.shm_before = {n for n in os.listdir("/dev/shm") if n.startswith("PostgreSQL.")}
        self.logfile = os.path.join(self.dir, "server.log")
        if os.path.exists(self.template):
            shutil.rmtree(self.template)
        r = run_quiet(["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D",
                       self.template, "-U", "postgres", "-A", "trust"], cwd="/")
        if r.returncode:
            raise RuntimeError("initdb failed:\n" + r.stdout)
        # Fill it once (pgbench -i) and stop it cleanly, so every run starts from the
        # same clean state (an immediate shutdown would leave crash recovery to the next).
        with open(self.logfile, "a") as lf:
            p = spawn_in(self._cmd(self.template), self._scratch_cg, "postgres", lf)
            self.pids.add(p.pid)
        try:
            if not self.wait_ready(p):
                raise RuntimeError("postgres did not start for pgbench -i")
            r = run_quiet(["pgbench", "-i", "-s", "2", "-h", self.sock, "-p", str(self.port),
                           "-U", "postgres", "postgres"])
            if r.returncode:
                raise RuntimeError("pgbench -i failed:\n" + r.stdout)
        finally:
            p.send_signal(signal.SIGINT)
            p.wait(timeout=60)
            LIVE.remove(p)

    def cleanup_ipc(self):
        # A postmaster that was killed (or denied shmdt/shmctl) leaves its SysV segment
        # and its /dev/shm dynamic shared memory; a later start of the same data
        # directory can fail on the segment ("pre-existing shared memory block").
        pids = self.pids
        if not hasattr(self, "shm_before"):
            return
        with open("/proc/sysvipc/shm") as f:
            next(f)
            for line in f:
                fl = line.split()
                if int(fl[4]) in pids and fl[6] == "0":
                    run_quiet(["ipcrm", "-m", fl[1]])
        for n in os.listdir("/dev/shm"):
            if n.startswith("PostgreSQL.") and n not in self.shm_before:
                os.unlink(os.path.join("/dev/shm", n))

    def prepare_run(self):
        if os.path.exists(self.data):
            shutil.rmtree(self.data)
        subprocess.run(["cp", "-a", self.template, self.data], check=True)

    def after_stop(self):
        out = run_quiet([f"{PG_BIN}/pg_controldata", self.data]).stdout
        state = next((l.split(":", 1)[1].strip() for l in out.splitlines()
                      if l.startswith("Database cluster state")), "?")
        return {"pidfile_left": os.path.exists(os.path.join(self.data, "postmaster.pid")),
                "cluster_state": state}

    def _cmd(self, data):
        return [f"{PG_BIN}/postgres", "-D", data, "-p", str(self.port), "-k", self.sock,
                "-c", "listen_addresses=127.0.0.1", "-c", "logging_collector=off"]

    def cmd(self):
        return self._cmd(self.data)

    def wait_ready(self, p, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if p.poll() is not None:
                return False
            r = run_quiet(["pg_isready", "-q", "-U", "postgres", "-h", self.sock, "-p", str(self.port)])
            if r.returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def traffic(self, secs):
        return client(["pgbench", "-c", "4", "-j", "2", "-T", str(int(secs)), "-h", self.sock,
                       "-p", str(self.port), "-U", "postgres", "postgres"])

    def log_path(self):
        return self.logfile


def make_servers(names):
    out = []
    for n in names:
        if n == "nginx":
            out += [Nginx(1), Nginx(2)]
        elif n == "redis":
            out += [Redis(p) for p in Redis.PERSIST]
        elif n == "postgres":
            out += [Postgres()]
        elif n.startswith("nginx-wp"):
            out.append(Nginx(int(n[len("nginx-wp"):])))
        elif n.startswith("redis-"):
            out.append(Redis(n[len("redis-"):]))
        else:
            sys.exit(f"unknown server or configuration {n}")
    return out


# ---------------------------------------------------------------- phases

def start_server(srv, cgroups, tag, cmd=None):
    srv.prepare_run()
    cg = cgroups.new(tag)
    logf = open(srv.log_path(), "a")
    p = spawn_in(cmd or srv.cmd(), cg, srv.user, logf)
    logf.close()
    srv.pids.add(p.pid)
    return cg, p


def wait_stopped(p, cg, t0, timeout):
    """Seconds from t0 until the main process and the whole cgroup are gone."""
    main_exit = None
    while time.time() - t0 < timeout:
        if main_exit is None and p.poll() is not None:
            main_exit = time.time() - t0
        if main_exit is not None and not populated(cg):
            return main_exit, time.time() - t0
        time.sleep(0.01)
    return main_exit, None


def derive_run(srv, sig_name, variant, idx, cgroups, rec, hang_timeout):
    tag = f"{srv.label}-{sig_name}-{variant}-{idx}"
    cg, p = start_server(srv, cgroups, tag)
    run = {"config": srv.label, "server": srv.server, "signal": sig_name, "variant": variant,
           "run": idx}
    traffic = []
    try:
        if not srv.wait_ready(p):
            raise RuntimeError(f"{tag}: server did not start (see {srv.log_path()})")
        srv.warm()
        # A-busy
        r, out = rec.start(cg, tag + "-A-busy", duration=A_BUSY)
        t = srv.traffic(A_BUSY + 1)
        traffic.append(t)
        srv.during_a_busy()
        run["A_busy"] = rec.finish(r, out, timeout=A_BUSY + 30)
        try:  # the clients end on their own a second later
            t.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        stop_process(t, signal.SIGINT)
        # Let the aftermath of the traffic (WAL and AOF flushes, client teardown) pass,
        # so that A-idle is what a long-idle server does.
        time.sleep(IDLE_SETTLE)
        # A-idle
        r, out = rec.start(cg, tag + "-A-idle", duration=A_IDLE)
        run["A_idle"] = rec.finish(r, out, timeout=A_IDLE + 30)
        # B
        r, out = rec.start(cg, tag + "-B")
        if variant == "loaded":
            t = srv.traffic(B_TRAFFIC)
            traffic.append(t)
            time.sleep(SIGNAL_AT)
        else:
            time.sleep(IDLE_WAIT)
        run.update(srv.before_signal())
        t0 = time.time()
        os.kill(p.pid, SIGNALS[sig_name])
        main_exit, empty = wait_stopped(p, cg, t0, hang_timeout)
        run["main_exit_s"] = main_exit
        run["stopped_s"] = empty
        run["exit_status"] = p.poll()
        if empty is None:
            log(f"{tag}: still running {hang_timeout}s after {sig_name}; killing")
            Cgroups.kill(cg)
        run["B"] = rec.finish(r, out, timeout=30)
    finally:
        for t in traffic:
            stop_process(t, signal.SIGINT)
        cgroups.remove(cg)
        srv.cleanup_ipc()
        if p.poll() is None:
            p.kill()
        p.wait()
        if p in LIVE:
            LIVE.remove(p)
    return run


def record_start_serve(srv, cgroups, rec):
    """Startup + serving, never stopped: what `record --pod --duration` sees of a new pod."""
    tag = f"{srv.label}-start-serve"
    srv.prepare_run()
    cg = cgroups.new(tag)
    r, out = rec.start(cg, tag, duration=A_BUSY + 8)
    t0 = time.time()
    logf = open(srv.log_path(), "a")
    p = spawn_in(srv.cmd(), cg, srv.user, logf)
    logf.close()
    srv.pids.add(p.pid)
    try:
        if not srv.wait_ready(p):
            raise RuntimeError(f"{tag}: server did not start")
        srv.warm()
        t = srv.traffic(A_BUSY)
        t.wait()
        LIVE.remove(t)
        names = rec.finish(r, out, timeout=A_BUSY + 40)
        log(f"{tag}: {len(names)} names in {time.time() - t0:.1f}s")
    finally:
        cgroups.remove(cg)  # SIGKILL: no syscall of a shutdown path
        srv.cleanup_ipc()
        p.wait()
        if p in LIVE:
            LIVE.remove(p)
    return names


def validate_run(srv, profile, sig_name, variant, cgroups, tag, hang_timeout):
    cmd = [RECORDER, "run", "--profile", profile, "--"] + srv.cmd()
    offset = srv.log_size()
    cg, p = start_server(srv, cgroups, tag, cmd=cmd)
    res = {"variant": variant}
    traffic = []
    try:
        if not srv.wait_ready(p):
            res["error"] = "did not start"
            res["denied"] = srv.denied_lines(offset)[:5]
            return res
        srv.warm()
        if variant == "loaded":
            traffic.append(srv.traffic(B_TRAFFIC))
            time.sleep(SIGNAL_AT)
        else:
            time.sleep(IDLE_WAIT)
        res.update(srv.before_signal())
        t0 = time.time()
        os.kill(p.pid, SIGNALS[sig_name])
        main_exit, empty = wait_stopped(p, cg, t0, hang_timeout)
        res.update(main_exit_s=main_exit, stopped_s=empty, exit_status=p.poll())
    finally:
        for t in traffic:
            stop_process(t, signal.SIGINT)
        cgroups.remove(cg)
        srv.cleanup_ipc()
        if p.poll() is None:
            p.kill()
        p.wait()
        if p in LIVE:
            LIVE.remove(p)
    res["denied"] = srv.denied_lines(offset)[:5]
    res.update(srv.after_stop())
    return res


# ---------------------------------------------------------------- analysis

def analyze(runs):
    by_config = collections.defaultdict(list)
    for r in runs:
        by_config[r["config"]].append(r)
    per_run = {}
    steady = {}
    for config, rs in by_config.items():
        busy = set().union(*(r["A_busy"] for r in rs))
        idle = set().union(*(r["A_idle"] for r in rs))
        steady[config] = {"A_busy_union": sorted(busy), "A_idle_union": sorted(idle),
                          "A_runs": len(rs)}
        for r in rs:
            # An idle stop is compared with the idle phases only, unless something was
            # done to the server right before the signal (redis BGSAVE/BGREWRITEAOF
            # through redis-cli: serving activity, also done in the A-busy phases).
            pre_activity = "child_in_progress" in r
            base = idle if r["variant"] == "idle" and not pre_activity else busy | idle
            per_run[(config, r["signal"], r["variant"], r["run"])] = sorted(set(r["B"]) - base)
    return steady, per_run


def summarize(runs, steady, per_run):
    servers = collections.defaultdict(lambda: collections.defaultdict(set))
    stability = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    nruns = collections.Counter()
    for (config, sig, variant, _), names in per_run.items():
        server = next(r["server"] for r in runs if r["config"] == config)
        servers[server][sig] |= set(names)
        stability[(config, sig, variant)]["names"].update(names)
        nruns[(config, sig, variant)] += 1
    return servers, stability, nruns


def times_table(runs):
    t = collections.defaultdict(list)
    for r in runs:
        t[(r["config"], r["signal"], r["variant"])].append(r.get("stopped_s"))
    return t


def fmt_times(ts):
    return ", ".join("hang" if x is None else f"{x:.2f}" for x in ts)


def print_report(runs, steady, per_run, validation):
    servers, stability, nruns = summarize(runs, steady, per_run)
    print("\n== steady state (A unions) ==")
    for config, s in steady.items():
        print(f"{config}: A-busy {len(s['A_busy_union'])} names, A-idle {len(s['A_idle_union'])} "
              f"names over {s['A_runs']} runs; idle-only: "
              f"{sorted(set(s['A_idle_union']) - set(s['A_busy_union']))}")
    print("\n== per configuration/signal/variant: name (runs it appeared in / runs) ==")
    tt = times_table(runs)
    for key in sorted(stability):
        c = stability[key]["names"]
        n = nruns[key]
        print(f"{' '.join(key)} [{n} runs; stop s: {fmt_times(tt[key])}]: " +
              " ".join(f"{k}({v}/{n})" for k, v in sorted(c.items())))
    print("\n== shutdown sets (measured; shipped = without the noise) ==")
    for server, sigs in servers.items():
        for sig in SIGNALS:
            names = sigs.get(sig, set())
            noise = sorted(names & set(NOISE.get(server, {})))
            print(f"{server} {sig}: {sorted(names - set(noise))}" + (f"  noise: {noise}" if noise else ""))
    if validation:
        print("\n== validation: seconds from signal to empty cgroup ==")
        for v in validation:
            print(f"{v['config']} {v['signal']} {v['profile']} ({v['names']} names): " + "; ".join(
                f"{r['variant']}: {r.get('error') or ('hang' if r.get('stopped_s') is None else format(r['stopped_s'], '.2f'))}"
                f" exit={r.get('exit_status')}" + (f" denied={len(r['denied'])}" if r.get("denied") else "")
                + "".join(f" {k}={r[k]}" for k in ("pidfile_left", "rdb_saved", "cluster_state") if k in r)
                for r in v["results"]))


# Names measured in phase B that are left out of the shipped sets, with the reason
# (docs/shutdown-sets.md). Validation runs with the shipped sets, so without these.
JEMALLOC_THREAD = ("jemalloc started a background thread (jemalloc_bg_thd) during stops "
                   "that killed a BGSAVE child; not part of the stop, which completes "
                   "without it")
NOISE = {
    "redis": {
        "madvise": "a jemalloc purge in 1 of 3 idle SIGINT runs only (SIGTERM takes the same "
                   "path and never showed it); a denied purge is harmless",
        "clone3": JEMALLOC_THREAD, "mprotect": JEMALLOC_THREAD, "prctl": JEMALLOC_THREAD,
        "rseq": JEMALLOC_THREAD, "rt_sigprocmask": JEMALLOC_THREAD,
        "set_robust_list": JEMALLOC_THREAD,
    },
}


def shipped_sets(runs, per_run):
    servers, _, _ = summarize(runs, None, per_run)
    out = {}
    for server, sigs in servers.items():
        noise = NOISE.get(server, {})
        out[server] = {sig: sorted(sigs.get(sig, set()) - set(noise)) for sig in SIGNALS}
    return out


def write_data(out_dir, runs, per_run, versions, configs_of):
    os.makedirs(out_dir, exist_ok=True)
    for server, sigs in shipped_sets(runs, per_run).items():
        n = sum(1 for r in runs if r["server"] == server)
        configs = sorted({r["config"] for r in runs if r["server"] == server})
        doc = {
            "server": server,
            "version": versions[server],
            "method": (
                f"Per stop signal, the union over {n} recorded runs ({', '.join(configs)}) "
                "of the syscalls recorded by `recorder record --cgroup` from just before the "
                "signal (sent to the main PID only, under client traffic or idle) until the "
                "cgroup was empty, minus every syscall recorded while the same configuration "
                "served with traffic and idle (idle stops: minus the idle recordings only), "
                "less the noise listed in docs/shutdown-sets.md "
                "(tests/scripts/derive-shutdown-sets.py)."),
            "runs": n,
            "signals": sigs,
            "union": sorted(set().union(*map(set, sigs.values()))),
        }
        path = os.path.join(out_dir, f"{server}.json")
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        log("wrote", path)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="nginx,redis,postgres")
    ap.add_argument("--signals", default="SIGTERM,SIGQUIT,SIGINT")
    ap.add_argument("--runs", type=int, default=6,
                    help="runs per configuration and signal (alternately loaded and idle)")
    ap.add_argument("--hang-timeout", type=float, default=60,
                    help="seconds after the signal before a phase-B run counts as hung")
    ap.add_argument("--validate-reps", type=int, default=2)
    ap.add_argument("--validate-timeout", type=float, default=15,
                    help="seconds after the signal before a validation run counts as hung")
    ap.add_argument("--skip-validate", action="store_true")
    ap.add_argument("--validate-configs", default="all",
                    help="configurations to validate, comma-separated labels (default: all)")
    ap.add_argument("--eliminate", action="store_true",
                    help="also validate P1 minus each name it adds to P0, one at a time")
    ap.add_argument("--skip-derive", action="store_true",
                    help="only validate: the runs (A unions) from --workdir's results.json, "
                         "the sets from --write-data")
    ap.add_argument("--write-data", metavar="DIR", help="write <server>.json here")
    ap.add_argument("--workdir", help="keep recordings here (default: a new temp dir)")
    ap.add_argument("--reanalyze", metavar="RESULTS",
                    help="only analyze results.json files (comma-separated: merged)")
    args = ap.parse_args()

    if args.reanalyze:
        res = {"runs": [], "validation": [], "versions": {}}
        for path in args.reanalyze.split(","):
            with open(path) as f:
                part = json.load(f)
            for k in ("runs", "validation"):
                res[k] += part.get(k, [])
            res["versions"].update(part.get("versions", {}))
        steady, per_run = analyze(res["runs"])
        print_report(res["runs"], steady, per_run, res.get("validation"))
        if args.write_data:
            write_data(args.write_data, res["runs"], per_run, res["versions"], None)
        return

    if os.geteuid() != 0:
        sys.exit("needs root")
    if not os.path.exists("/dev/null") or not os.path.isfile(RECORDER):
        sys.exit(f"recorder not found at {RECORDER}")

    workdir = args.workdir or tempfile.mkdtemp(prefix="shutdown-derive.")
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, 0o755)
    log("work dir", workdir)
    results_path = os.path.join(workdir, "results.json")
    sig_names = args.signals.split(",")
    servers = make_servers(args.servers.split(","))

    cgroups = Cgroups()
    rec = Recorder(workdir)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    res = {"runs": [], "validation": [], "versions": {}}
    if args.skip_derive and os.path.exists(results_path):
        with open(results_path) as f:
            res = json.load(f)
        res["validation"] = []

    def save():
        with open(results_path + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        os.replace(results_path + ".tmp", results_path)

    try:
        for srv in servers:
            srv._scratch_cg = None
            if isinstance(srv, Postgres):
                srv._scratch_cg = cgroups.new("postgres-setup")
            srv.setup(workdir)
            if srv._scratch_cg:
                cgroups.remove(srv._scratch_cg)
            res["versions"][srv.server] = srv.version()

        if not args.skip_derive:
            for srv in servers:
                for sig in sig_names:
                    for i in range(args.runs):
                        variant = "loaded" if i % 2 == 0 else "idle"
                        run = derive_run(srv, sig, variant, i, cgroups, rec, args.hang_timeout)
                        res["runs"].append(run)
                        save()
                        log(f"{srv.label} {sig} {variant} #{i}: stopped in "
                            f"{run['stopped_s'] if run['stopped_s'] is None else round(run['stopped_s'], 2)}s; "
                            f"A-busy {len(run['A_busy'])} A-idle {len(run['A_idle'])} B {len(run['B'])}")
            steady, per_run = analyze(res["runs"])
            if args.write_data:
                write_data(args.write_data, res["runs"], per_run, res["versions"], None)
        steady, per_run = analyze(res["runs"])

        if not args.skip_validate:
            for srv in servers:
                if args.validate_configs != "all" and srv.label not in args.validate_configs.split(","):
                    continue
                if args.write_data and os.path.exists(os.path.join(args.write_data, f"{srv.server}.json")):
                    with open(os.path.join(args.write_data, f"{srv.server}.json")) as f:
                        shipped = {k: set(v) for k, v in json.load(f)["signals"].items()}
                else:
                    shipped = {k: set(v) for k, v in
                               shipped_sets(res["runs"], per_run)[srv.server].items()}
                start_serve = set(record_start_serve(srv, cgroups, rec))
                st = steady.get(srv.label, {"A_busy_union": [], "A_idle_union": []})
                p0 = start_serve | set(st["A_busy_union"]) | set(st["A_idle_union"])
                for sig in sig_names:
                    for pname, names in (("P0", p0), ("P1", p0 | shipped.get(sig, set()))):
                        path = os.path.join(workdir, f"{srv.label}-{sig}-{pname}.json")
                        write_profile(path, names)
                        entry = {"config": srv.label, "signal": sig, "profile": pname,
                                 "names": len(names), "path": path,
                                 "added": sorted(names - p0), "results": []}
                        for rep in range(args.validate_reps):
                            for variant in ("loaded", "idle"):
                                tag = f"val-{srv.label}-{sig}-{pname}-{variant}-{rep}"
                                r = validate_run(srv, path, sig, variant, cgroups, tag,
                                                 args.validate_timeout)
                                entry["results"].append(r)
                                log(tag, r)
                        res["validation"].append(entry)
                        save()
                    if args.eliminate:
                        # Each added name left out in turn: which ones the stop needs.
                        full = p0 | shipped.get(sig, set())
                        for name in sorted(full - p0):
                            path = os.path.join(workdir, f"{srv.label}-{sig}-P1-no-{name}.json")
                            write_profile(path, full - {name})
                            entry = {"config": srv.label, "signal": sig, "profile": f"P1-{name}",
                                     "names": len(full) - 1, "path": path, "results": []}
                            for variant in ("loaded", "idle"):
                                tag = f"elim-{srv.label}-{sig}-{name}-{variant}"
                                r = validate_run(srv, path, sig, variant, cgroups, tag,
                                                 args.validate_timeout)
                                entry["results"].append(r)
                                log(tag, r)
                            res["validation"].append(entry)
                            save()
        print_report(res["runs"], steady, per_run, res["validation"])
        log("results in", results_path)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for p in list(LIVE):
            stop_process(p, signal.SIGINT if p.args and p.args[0] == RECORDER else signal.SIGTERM)
        cgroups.cleanup()
        for srv in servers:
            srv.cleanup_ipc()
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode), "/dev/null is no longer a device"
    return 0


if __name__ == "__main__":
    sys.exit(main())
