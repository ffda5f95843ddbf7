#!/usr/bin/env python3
"""Re-derive the syscalls an OCI runtime makes after installing the container's seccomp
filter (tests/src/runtime_base.rs).

Runs the runtime directly on a `runc spec` bundle (same init code path as under
containerd's shim, no shim to trace) whose entrypoint is a static program that writes
"hello" and calls uname.

1. observe: N runs under `strace -f` with a profile that allows everything; prints, per
   syscall, in how many runs the thread that installed the filter called it between the
   filter and execve of the entrypoint.
2. eliminate: profile = the program's own syscalls + everything observed, errno EPERM for
   the rest (or kill, with --kill-default). For each observed syscall, M runs without it;
   it is needed when some run fails before the program runs.
3. confirm: M*5 runs with the program's syscalls + the needed set; when some fail, the
   same with each observed-but-not-needed syscall added back, keeping the first that makes
   every run pass (runc's `futex`: a Go futex wake on the filtered thread is rare but fatal).

Needs root, gcc + libc6-dev, strace, and the runtime. Usage:
    tests/scripts/derive-runtime-base.py [--runtime runc|crun] [--observe 30] [--eliminate 20]
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HELLO_C = r"""
#include <errno.h>
#include <sys/utsname.h>
#include <unistd.h>
int main(void) {
    if (write(1, "hello\n", 6) == -1) return errno == EPERM ? 42 : 1;
    struct utsname u;
    if (uname(&u) == -1) return errno == EPERM ? 43 : 2;
    return 0;
}
"""
# The program's own syscalls (strace -f of the static binary; glibc 2.36, x86_64).
PROGRAM = ["execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
           "prlimit64", "readlink", "getrandom", "mprotect", "write", "uname", "exit_group"]
PROGRAM_EXITS = {0, 42, 43}  # the program ran (possibly with a denied call of its own)

LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()")


def post_filter_syscalls(strace_file):
    """Syscalls of the filter-installing thread after the filter, up to execve."""
    tid, calls = None, []
    with open(strace_file, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            t, resumed, name = m.groups()
            if tid is None:
                if (name == "prctl" and "PR_SET_SECCOMP" in line) or (
                        name == "seccomp" and "SECCOMP_SET_MODE_FILTER" in line and "{len=" in line):
                    tid = t
                continue
            if t != tid or resumed:
                continue
            calls.append(name)
            if name == "execve":
                break
    return calls


def fix_crun_hybrid():
    path = "/sys/fs/cgroup/unified/cgroup.controllers"
    if not os.path.exists(path):
        return
    for controller in open(path).read().split():
        target = f"/sys/fs/cgroup/{controller}"
        os.makedirs(target, exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", controller, "cgroup", target], check=True)


class Bundle:
    def __init__(self, runtime, workdir):
        self.runtime = shutil.which(runtime) or f"/usr/sbin/{runtime}"
        self.dir = os.path.join(workdir, "bundle")
        self.state = os.path.join(workdir, "state")
        rootfs = os.path.join(self.dir, "rootfs")
        for d in ["proc", "dev", "sys", "tmp", "etc"]:
            os.makedirs(os.path.join(rootfs, d))
        src = os.path.join(workdir, "hello.c")
        open(src, "w").write(HELLO_C)
        subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(rootfs, "hello"), src],
                       check=True)
        spec_tool = shutil.which("runc") or self.runtime
        subprocess.run([spec_tool, "spec"], cwd=self.dir, check=True)
        with open(os.path.join(self.dir, "config.json")) as f:
            self.spec = json.load(f)
        self.spec["process"]["terminal"] = False
        self.spec["process"]["args"] = ["/hello"]
        self.runs = 0

    def run(self, seccomp, strace_to=None):
        spec = dict(self.spec)
        spec["linux"] = dict(spec["linux"], seccomp=seccomp)
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(spec, f)
        self.runs += 1
        cid = f"derive-{os.getpid()}-{self.runs}"
        cmd = [self.runtime, "--root", self.state, "run", cid]
        if strace_to:
            cmd = ["strace", "-f", "-o", strace_to] + cmd
        try:
            p = subprocess.run(cmd, cwd=self.dir, capture_output=True, timeout=60)
            result = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired:
            # A Go thread looping on a denied rt_sigreturn under strace never ends.
            result = None, b"", b"timeout"
        subprocess.run([self.runtime, "--root", self.state, "delete", "-f", cid],
                       capture_output=True)
        return result


def profile(allow, default):
    p = {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64"],
         "syscalls": [{"names": sorted(set(allow)), "action": "SCMP_ACT_ALLOW"}]}
    if default == "SCMP_ACT_ERRNO":
        p["defaultErrnoRet"] = 1
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runtime", default="runc", choices=["runc", "crun"])
    ap.add_argument("--observe", type=int, default=30)
    ap.add_argument("--eliminate", type=int, default=20)
    ap.add_argument("--kill-default", action="store_true",
                    help="default action SCMP_ACT_KILL_PROCESS instead of errno EPERM")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    if args.runtime == "crun":
        fix_crun_hybrid()
    default = "SCMP_ACT_KILL_PROCESS" if args.kill_default else "SCMP_ACT_ERRNO"

    with tempfile.TemporaryDirectory(prefix="derive-") as work:
        b = Bundle(args.runtime, work)
        allow_all = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                     "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]}
        seen = collections.Counter()
        trace = os.path.join(work, "strace.out")
        for _ in range(args.observe):
            rc, out, err = b.run(allow_all, strace_to=trace)
            if rc != 0 or out != b"hello\n":
                sys.exit(f"unconfined run failed: rc={rc} {out!r} {err!r}")
            seen.update(set(post_filter_syscalls(trace)))
        print(f"== observed after the filter ({args.runtime}, {args.observe} runs under strace)")
        for name, n in sorted(seen.items()):
            print(f"  {name:14} {n}/{args.observe}")

        observed = sorted(seen)
        needed = []
        print(f"== elimination ({default}, {args.eliminate} runs each)")
        for name in observed:
            allow = [s for s in set(PROGRAM) | set(observed) if s != name]
            failures = collections.Counter()
            for _ in range(args.eliminate):
                rc, out, err = b.run(profile(allow, default))
                if rc not in PROGRAM_EXITS:
                    failures[(rc, err.decode(errors="replace").strip().splitlines()[:1][0]
                              if err.strip() else "")] += 1
            n = sum(failures.values())
            print(f"  without {name:14} {n}/{args.eliminate} failed before the program"
                  + "".join(f"\n      rc={rc}: {msg}" for (rc, msg) in failures))
            if n:
                needed.append(name)

        # Rare failures (a Go runtime futex wake, a preemption signal) can hide in step 2:
        # run the needed set many times, then add back each observed-but-not-needed
        # syscall alone to see which one removes the failures.
        confirm = args.eliminate * 5

        def confirm_runs(allow):
            failures = collections.Counter()
            for _ in range(confirm):
                rc, out, err = b.run(profile(set(PROGRAM) | set(allow), default))
                if rc != 0 or out != b"hello\n":
                    lines = err.decode(errors="replace").strip().splitlines()
                    failures[(rc, lines[0] if lines else "")] += 1
            return failures

        def show(label, failures):
            n = sum(failures.values())
            print(f"  {label}: {confirm - n}/{confirm} runs printed hello, exit 0"
                  + "".join(f"\n      {k}x rc={rc}: {msg}" for (rc, msg), k in failures.items()))
            return n

        print(f"== confirm (program syscalls + set, {confirm} runs each)")
        bad = show(f"needed {needed}", confirm_runs(needed))
        if bad:
            for name in [s for s in observed if s not in needed]:
                if not show(f"needed + {name}", confirm_runs(needed + [name])):
                    needed = sorted(needed + [name])
                    break
            bad = show(f"final {needed}", confirm_runs(needed))
        print("pub const POST_FILTER: &[&str] = &[" + ", ".join(f'"{s}"' for s in needed) + "];")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
