//! `recorder daemon`: learn every workload on a node (see `crate::daemon`).

use std::{net::SocketAddr, path::PathBuf};

use recorder_common::capacity;

use super::{
    duration,
    exit::{Code, Failure},
};
use crate::{
    bpf::preflight,
    daemon::{self, Config, identity::Filter},
    k8s_name::{Kind, validate},
};

const EXAMPLES: &str = "\
Examples:
  recorder daemon --state-dir /var/lib/recorder --listen 127.0.0.1:9464
  curl -s localhost:9464/v1/workloads
  curl -s localhost:9464/v1/profiles/shop/web/nginx > web-nginx.json
  curl -s 'localhost:9464/v1/profiles/shop/web/nginx?format=spo'
  recorder daemon --namespace shop --selector app=web --stable-after 30m

One BPF attach records every container under the kubelet's parent cgroup
(kubepods.slice or kubepods; --cgroup-parent overrides), from its first
syscall, with the runtime's setup split off. Containers are named through the
CRI (no API server). Profiles are keyed by workload (Deployment, StatefulSet,
DaemonSet, Job, or the bare pod) and container, and merged over replicas and
restarts; a new image digest starts a new generation. Each is learning,
stable (no new syscall for --stable-after) or partial (startup not seen, a
kubectl exec inside, or a map overflow), never stable while partial.

Nothing is lost: the learned maps and the programs are pinned in bpffs
(--pin-dir), so the kernel keeps recording while the daemon restarts, and
what was learned is saved to --state-dir every --snapshot-interval, when a
container is gone (before the kernel forgets it) and on SIGTERM.";

/// Learn seccomp profiles for every workload on this node, continuously.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct DaemonArgs {
    /// Where snapshots of what was learned are kept.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/recorder")]
    pub state_dir: PathBuf,
    /// Where the read-only HTTP API listens. Anything but loopback exposes
    /// every workload's profile to the network (a warning says so).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// The kubelet's parent cgroup of all pods (default: kubepods.slice or
    /// kubepods under the cgroup v2 mount).
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<PathBuf>,
    /// The host's cgroup v2 hierarchy is mounted here (a pod: its own
    /// /sys/fs/cgroup is a private cgroup namespace's view). The host's
    /// /sys/fs/cgroup on pure v2 hosts; its unified/ directory is used on
    /// hybrid ones. Cgroup ids and levels stay the kernel's global ones.
    #[arg(long, value_name = "PATH")]
    pub host_cgroup_root: Option<PathBuf>,
    /// What a start-up failure that a restart cannot fix (a missing
    /// capability, no BTF, no bpffs, no cgroup v2) does: `exit` with its
    /// code, or `stay`: say why once and keep serving /healthz (200) and
    /// /readyz (503 with the reason) until SIGTERM, so a DaemonSet shows a
    /// pod that is not ready, with the reason, instead of a crash loop.
    #[arg(long, value_name = "exit|stay", default_value = "exit", value_parser = ["exit", "stay"])]
    pub on_start_error: String,
    /// The CRI socket (default: containerd's, then CRI-O's).
    #[arg(long, value_name = "PATH")]
    pub runtime_endpoint: Option<PathBuf>,
    /// Only pods in this namespace (repeatable). Others are dropped in the
    /// kernel.
    #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Only pods with this label (repeatable; all must match).
    #[arg(long = "selector", short = 'l', value_name = "KEY=VALUE")]
    pub selectors: Vec<String>,
    /// A workload is stable after this long without a new syscall (and at
    /// least this long after it was first seen).
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub stable_after: String,
    /// How often what was learned is saved (also on every container exit
    /// and on SIGTERM).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub snapshot_interval: String,
    /// How often the CRI and the cgroup tree are polled.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub poll_interval: String,
    /// Containers tracked at once in the kernel (384 bytes of bitmaps each).
    #[arg(long, value_name = "N", default_value_t = capacity::DAEMON_SLOTS, value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub max_containers: u32,
    /// The bpffs directory the learned maps and programs are pinned in
    /// (a bpffs is mounted on its parent when there is none).
    #[arg(long, value_name = "DIR", default_value = "/sys/fs/bpf/recorder")]
    pub pin_dir: PathBuf,
    /// Do not pair syscall entries and exits to see calls that pods' own
    /// profiles deny (saves the pairing's cost on every recorded syscall).
    #[arg(long)]
    pub no_learn_denials: bool,
    /// Attribute each workload's calls to the executables that made them,
    /// served at /v1/profiles/NAMESPACE/WORKLOAD/CONTAINER/by-exe.
    /// Information only (a filter cannot differ per executable); it costs
    /// an exe lookup on every recorded syscall (see BENCHMARKS.md).
    #[arg(long)]
    pub by_exe: bool,
    /// Remove the pins in --pin-dir and exit: the kernel stops recording
    /// (what was learned since the last snapshot is dropped). For uninstalling.
    #[arg(long)]
    pub unpin: bool,
}

pub fn execute(args: DaemonArgs) -> Result<u8, Failure> {
    crate::bpf::preflight::check_open_files(crate::bpf::preflight::MIN_OPEN_FILES)?;
    if args.unpin {
        let removed = daemon::bpffs::remove_pins(&args.pin_dir).map_err(|e| Failure::new(Code::OutputUnwritable, e))?;
        eprintln!("recorder: removed {removed} pins from {}; the kernel no longer records", args.pin_dir.display());
        return Ok(0);
    }
    for ns in &args.namespaces {
        validate(Kind::Namespace, ns)?;
    }
    let mut filter = Filter { namespaces: args.namespaces.clone(), ..Filter::default() };
    for selector in &args.selectors {
        let Some((key, value)) = selector.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(Failure::new(
                Code::Usage,
                anyhow::anyhow!("--selector {selector:?} is not KEY=VALUE; e.g. --selector app=web"),
            ));
        };
        filter.selector.insert(key.to_owned(), value.to_owned());
    }
    let config = Config {
        state_dir: args.state_dir,
        listen: args.listen,
        cgroup_parent: args.cgroup_parent,
        host_cgroup_root: args.host_cgroup_root,
        runtime_endpoint: args.runtime_endpoint,
        filter,
        stable_after: duration::parse(&args.stable_after)?,
        snapshot_interval: duration::parse(&args.snapshot_interval)?,
        poll_interval: duration::parse(&args.poll_interval)?,
        slots: args.max_containers,
        pin_dir: args.pin_dir,
        learn_denials: !args.no_learn_denials,
        by_exe: args.by_exe,
    };
    let listen = config.listen;
    let started = (|| -> Result<(), Failure> {
        preflight::check_privileges()?;
        preflight::check_btf()?;
        daemon::run(config)?;
        Ok(())
    })();
    match started {
        Err(failure) if args.on_start_error == "stay" && restart_cannot_fix(failure.code) => {
            // One line, as main.rs prints it, then the not-ready API.
            eprintln!("recorder: error: {failure}");
            eprintln!("recorder: not recording; serving /healthz and /readyz on {listen} until SIGTERM");
            daemon::degraded::serve(listen, failure.to_string())?;
            // Said once already; the exit status still tells which failure.
            Ok(failure.code.as_u8())
        }
        other => other.map(|()| 0),
    }
}

/// Start-up failures that come from the node or the pod spec, which the
/// same process would hit again after a restart.
fn restart_cannot_fix(code: Code) -> bool {
    matches!(code, Code::NotPrivileged | Code::NoCgroupV2 | Code::KernelUnsupported | Code::BpfFailed)
}
