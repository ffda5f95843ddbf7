//! `recorder inspect`: the seccomp filter a running process, container or
//! pod really runs under, read from the node (nothing runs inside it), its
//! effective allow set per architecture, which of unconfined,
//! runtime/default or a custom (Localhost) profile it is, and the diff
//! against an intended profile.

use std::{collections::BTreeSet, path::PathBuf, str::FromStr as _};

use crate::{
    algebra::diff::{self, Side},
    cli::exit::{Code, Failure},
    cri::{self, ContainerState},
    inspect::{self, Inspection, ReadError},
    profile::{EvalContext, Profile, runtime_default::RuntimeDefault},
    target::{Hierarchy, container},
};

const EXAMPLES: &str = "\
Examples:
  recorder inspect --pid 4242
  recorder inspect --container-id 3f2a9c0d1e2b --against app.json   # is app.json what it runs under?
  recorder inspect --pod web -n default --json
  recorder inspect --pid 4242 --against runtime/default:containerd

The filter is read with PTRACE_SECCOMP_GET_FILTER (the process is stopped for
the moment it takes and detached; needs root) and /proc/PID/status, then each
classic-BPF program is evaluated for every syscall number of every
architecture of this kernel. `runs under` says unconfined, runtime/default
(containerd's or moby's, as this host's libseccomp compiles it; within a few
names of one, another version of it) or custom (a Localhost profile);
--against compares the allow set with a profile.
Exit 30 with --fail-on-mismatch when it differs from --against.";

/// Read the seccomp filter a process, container or pod really runs under.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["pid", "container_id", "pod"]))]
pub struct InspectArgs {
    /// A process.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// A running container (its lowest process: the init), found by its cgroup.
    #[arg(long, value_name = "ID")]
    pub container_id: Option<String>,
    /// Every running container of a pod, found through the CRI.
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// The pod's namespace.
    #[arg(short = 'n', long, value_name = "NAMESPACE", requires = "pod")]
    pub namespace: Option<String>,
    /// Only this container of the pod.
    #[arg(long = "container", value_name = "NAME", requires = "pod")]
    pub container_name: Option<String>,
    /// CRI socket (default: containerd's, then CRI-O's).
    #[arg(long, value_name = "PATH", requires = "pod")]
    pub runtime_endpoint: Option<PathBuf>,
    /// The intended profile: a file, runtime/default or runtime/default:containerd.
    #[arg(long, value_name = "PROFILE")]
    pub against: Option<String>,
    /// Exit 30 when the allow set differs from --against.
    #[arg(long, requires = "against")]
    pub fail_on_mismatch: bool,
    /// Print one JSON object (an array for --pod).
    #[arg(long)]
    pub json: bool,
}

/// One inspected process and what it was compared with.
struct Verdict {
    label: String,
    inspection: Inspection,
    kind: Kind,
    runs_under: String,
    against: Option<(String, diff::Diff, bool)>,
    not_compiled: BTreeSet<String>,
}

pub fn execute(args: InspectArgs) -> Result<u8, Failure> {
    let targets = targets(&args)?;
    let ctx = EvalContext::host();
    let defaults = [RuntimeDefault::Containerd, RuntimeDefault::Moby]
        .into_iter()
        .map(|d| Ok((d.label().to_owned(), d.template()?.evaluate(&ctx))))
        .collect::<Result<Vec<(String, Profile)>, Failure>>()?;
    let intended = match &args.against {
        Some(spec) => Some(side(spec, &ctx)?),
        None => None,
    };
    let mut verdicts = Vec::new();
    for (label, pid) in targets {
        let inspection = inspect::inspect(pid).map_err(read_failure)?;
        let actual = inspection.to_profile();
        let (kind, runs_under) = if inspection.unconfined() {
            (Kind::Unconfined, "unconfined".to_owned())
        } else if inspection.status.mode == 1 {
            (Kind::Strict, "strict mode".to_owned())
        } else {
            runs_under(&defaults, &actual)
        };
        let (against, not_compiled) = match &intended {
            Some((label, profile)) => {
                let expected = compiled(profile);
                let dropped = names(profile).difference(&names(&expected)).cloned().collect();
                let d = diff::diff(
                    &Side { label: label.clone(), profile: expected.clone() },
                    &Side { label: format!("pid {pid}"), profile: actual.clone() },
                );
                let same = same_allow_set(&expected, &actual);
                (Some((label.clone(), d, same)), dropped)
            }
            None => (None, BTreeSet::new()),
        };
        verdicts.push(Verdict { label, inspection, kind, runs_under, against, not_compiled });
    }
    if args.json {
        let list: Vec<serde_json::Value> = verdicts.iter().map(json).collect();
        let value =
            if args.pod.is_some() { serde_json::json!(list) } else { list.into_iter().next().unwrap_or_default() };
        let mut text = serde_json::to_string_pretty(&value).map_err(|e| Failure::new(Code::Internal, e))?;
        text.push('\n');
        print!("{text}");
    } else {
        for v in &verdicts {
            print!("{}", human(v));
        }
    }
    let mismatch = verdicts.iter().any(|v| v.against.as_ref().is_some_and(|(_, _, same)| !same));
    Ok(if args.fail_on_mismatch && mismatch { Code::Drift } else { Code::Ok }.as_u8())
}

/// Which of the three a Kubernetes pod can ask for the filter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unconfined,
    Strict,
    RuntimeDefault,
    Localhost,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Unconfined => "unconfined",
            Kind::Strict => "strict",
            Kind::RuntimeDefault => "runtime/default",
            Kind::Localhost => "localhost",
        }
    }
}

/// At most this many names apart, a filter is a runtime default of another
/// version than the built-in one (containerd 1.6 allows io_uring and not
/// the calls added since, for instance); a Localhost profile is hundreds of
/// names away from either default.
const OTHER_VERSION_DISTANCE: usize = 24;

/// The runtime default the filter is, exactly or as another version of it,
/// or custom.
fn runs_under(defaults: &[(String, Profile)], actual: &Profile) -> (Kind, String) {
    let nearest = defaults
        .iter()
        .map(|(label, p)| {
            let d = diff::diff(
                &Side { label: label.clone(), profile: compiled(p) },
                &Side { label: "actual".into(), profile: actual.clone() },
            );
            let (mut more, mut fewer) = (BTreeSet::new(), BTreeSet::new());
            for (_, a) in d.iter() {
                more.extend(a.only_in_profile.iter().cloned());
                fewer.extend(a.only_in_base.iter().cloned());
            }
            (more.len() + fewer.len(), label, more, fewer)
        })
        .min_by_key(|(distance, ..)| *distance);
    match nearest {
        Some((0, label, ..)) => (Kind::RuntimeDefault, label.clone()),
        Some((distance, label, more, fewer)) if distance <= OTHER_VERSION_DISTANCE => (
            Kind::RuntimeDefault,
            format!("{label}, another version (also allows: {}; does not allow: {})", list(&more), list(&fewer)),
        ),
        _ => (Kind::Localhost, "custom (a Localhost profile)".to_owned()),
    }
}

fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() { "-".to_owned() } else { names.iter().cloned().collect::<Vec<_>>().join(" ") }
}

fn read_failure(e: ReadError) -> Failure {
    let code = match e {
        ReadError::NoSuchProcess(_) => Code::TargetNotFound,
        ReadError::Ptrace { .. } => Code::NotPrivileged,
        ReadError::Status { .. } => Code::Internal,
    };
    Failure::new(code, e)
}

fn side(spec: &str, ctx: &EvalContext) -> Result<(String, Profile), Failure> {
    if let Some(d) = RuntimeDefault::from_spec(spec) {
        return Ok((d.label().to_owned(), d.template()?.evaluate(ctx)));
    }
    let loaded = super::convert::load(std::path::Path::new(spec))?;
    Ok((spec.to_owned(), loaded.profile.evaluate(ctx)))
}

/// (label, pid) of every process to inspect.
fn targets(args: &InspectArgs) -> Result<Vec<(String, i32)>, Failure> {
    if let Some(pid) = args.pid {
        return Ok(vec![(format!("pid {pid}"), pid)]);
    }
    if let Some(id) = &args.container_id {
        let cgroup = container::container_cgroup(&Hierarchy::find()?, id)?;
        let pid = container::processes(&cgroup.path).into_iter().next().ok_or_else(|| {
            Failure::new(Code::TargetNotFound, anyhow::anyhow!("container {id} has no running process"))
        })?;
        return Ok(vec![(format!("container {id} (pid {pid})"), pid)]);
    }
    let name = args.pod.clone().unwrap_or_default();
    crate::k8s_name::validate(crate::k8s_name::Kind::Pod, &name)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Code::Internal, e))?;
    let hierarchy = Hierarchy::find()?;
    rt.block_on(async {
        let client = cri::connect(args.runtime_endpoint.as_deref()).await.map_err(pod_failure)?;
        let pods = client.find_pods(&name, args.namespace.as_deref()).await.map_err(pod_failure)?;
        let namespaces: BTreeSet<&str> = pods.iter().map(|p| p.namespace.as_str()).collect();
        if namespaces.len() > 1 {
            return Err(Failure::new(
                Code::Ambiguous,
                anyhow::anyhow!("pod {name} exists in namespaces {namespaces:?}; pass -n NAMESPACE"),
            ));
        }
        let Some(pod) = pods.iter().find(|p| p.state == cri::PodState::Ready) else {
            return Err(Failure::new(Code::PodNotFound, anyhow::anyhow!("no running pod named {name}")));
        };
        let containers = client.containers(&pod.id, &hierarchy).await.map_err(pod_failure)?;
        let found: Vec<(String, i32)> = containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .filter(|c| args.container_name.as_ref().is_none_or(|n| n == &c.name))
            .filter_map(|c| {
                let pid = i32::try_from(c.pid?).ok()?;
                Some((format!("{}/{} container {} (pid {pid})", pod.namespace, pod.name, c.name), pid))
            })
            .collect();
        if found.is_empty() {
            return Err(Failure::new(
                Code::TargetNotFound,
                anyhow::anyhow!("pod {}/{} has no running container to inspect", pod.namespace, pod.name),
            ));
        }
        Ok(found)
    })
}

fn pod_failure(e: cri::CriError) -> Failure {
    let code = match e {
        cri::CriError::Call { .. } | cri::CriError::EmptyResponse { .. } | cri::CriError::Info { .. } => {
            Code::RuntimeFailed
        }
        cri::CriError::Cgroup(_) => Code::TargetNotFound,
        _ => Code::CriUnavailable,
    };
    Failure::new(code, e)
}

/// `profile` as this host's libseccomp compiles it: names it cannot resolve
/// on an architecture are left out there, as runc and crun (linked to it)
/// do. Only the unconditionally and conditionally permitted names matter.
fn compiled(profile: &Profile) -> Profile {
    let mut out = profile.clone();
    let arches: Vec<libseccomp::ScmpArch> = if profile.architectures.is_empty() {
        vec![libseccomp::ScmpArch::native()]
    } else {
        profile.architectures.iter().filter_map(|a| libseccomp::ScmpArch::from_str(a).ok()).collect()
    };
    for rule in &mut out.syscalls {
        rule.names.retain(|n| {
            arches.iter().any(|a| libseccomp::ScmpSyscall::from_name_by_arch(n, *a).is_ok_and(|s| i32::from(s) >= 0))
        });
    }
    out.syscalls.retain(|r| !r.names.is_empty());
    out
}

fn names(profile: &Profile) -> BTreeSet<String> {
    profile.permitted_names().into_iter().map(str::to_owned).collect()
}

/// Same permitted names on every architecture the comparison covers.
fn same_allow_set(expected: &Profile, actual: &Profile) -> bool {
    let d = diff::diff(
        &Side { label: "expected".into(), profile: expected.clone() },
        &Side { label: "actual".into(), profile: actual.clone() },
    );
    d.iter().all(|(_, a)| a.only_in_base.is_empty() && a.only_in_profile.is_empty())
}

fn human(v: &Verdict) -> String {
    let i = &v.inspection;
    let s = &i.status;
    let mode = match s.mode {
        0 => "no seccomp filter".to_owned(),
        1 => "strict mode".to_owned(),
        _ => format!(
            "{} ({} instructions)",
            crate::text::count(i.filter_lengths.len() as u64, "filter", "filters stacked"),
            i.filter_lengths.iter().map(usize::to_string).collect::<Vec<_>>().join(" + ")
        ),
    };
    let mut out = format!(
        "{} ({}): {mode}; no_new_privs: {}\n  runs under: {}\n",
        v.label,
        s.name,
        if s.no_new_privs { "yes" } else { "no" },
        v.runs_under
    );
    for view in &i.arches {
        let arch = view.arch.map_or("?", |a| a.scmp_name());
        if view.allowed.is_empty() && view.conditional.is_empty() {
            let how = view.denied.keys().cloned().collect::<Vec<_>>().join(", ");
            out.push_str(&format!("  {arch}: nothing allowed ({how})\n"));
            continue;
        }
        let denied: Vec<String> = view.denied.iter().map(|(a, n)| format!("{n} {a}")).collect();
        out.push_str(&format!(
            "  {arch}: {} allowed, {} with argument conditions{}; refused: {}\n",
            view.allowed.len(),
            view.conditional.len(),
            if view.conditional.is_empty() {
                String::new()
            } else {
                format!(" ({})", view.conditional.iter().cloned().collect::<Vec<_>>().join(" "))
            },
            denied.join(", ")
        ));
        if !view.unknown.is_empty() {
            out.push_str(&format!(
                "    not evaluated: {}\n",
                view.unknown.iter().cloned().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    if let Some(native) = i.native().filter(|n| !n.allowed.is_empty()) {
        out.push_str(&format!(
            "  allowed ({}): {}\n",
            native.arch.map_or("?", |a| a.scmp_name()),
            native.allowed.iter().cloned().collect::<Vec<_>>().join(" ")
        ));
    }
    if let Some((label, d, same)) = &v.against {
        if *same {
            out.push_str(&format!("  against {label}: the same allow set\n"));
        } else {
            out.push_str(&format!("  against {label}: DIFFERENT\n"));
            for (arch, a) in d.iter() {
                if !a.only_in_profile.is_empty() {
                    out.push_str(&format!(
                        "    {arch}: the filter allows, {label} does not: {}\n",
                        a.only_in_profile.iter().cloned().collect::<Vec<_>>().join(" ")
                    ));
                }
                if !a.only_in_base.is_empty() {
                    out.push_str(&format!(
                        "    {arch}: {label} allows, the filter does not: {}\n",
                        a.only_in_base.iter().cloned().collect::<Vec<_>>().join(" ")
                    ));
                }
            }
        }
        if !v.not_compiled.is_empty() {
            out.push_str(&format!(
                "    (left out of {label}: names this host's libseccomp cannot compile: {})\n",
                v.not_compiled.iter().cloned().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    out
}

fn json(v: &Verdict) -> serde_json::Value {
    let i = &v.inspection;
    let arches: serde_json::Map<String, serde_json::Value> = i
        .arches
        .iter()
        .map(|view| {
            (
                view.arch.map_or("?", |a| a.scmp_name()).to_owned(),
                serde_json::json!({
                    "allowed": view.allowed,
                    "conditional": view.conditional,
                    "denied": view.denied,
                    "not_evaluated": view.unknown,
                }),
            )
        })
        .collect();
    let mut out = serde_json::json!({
        "target": v.label,
        "pid": i.pid,
        "name": i.status.name,
        "mode": match i.status.mode { 0 => "disabled", 1 => "strict", _ => "filter" },
        "no_new_privs": i.status.no_new_privs,
        "filters": i.filter_lengths.len(),
        "filter_instructions": i.filter_lengths,
        "runs_under": v.runs_under,
        "profile_kind": v.kind.as_str(),
        "architectures": arches,
    });
    if let (Some((label, d, same)), Some(object)) = (&v.against, out.as_object_mut()) {
        let diff: serde_json::Value = serde_json::from_str(&diff::json(d)).unwrap_or_default();
        object.insert(
            "against".to_owned(),
            serde_json::json!({ "profile": label, "same_allow_set": same, "not_compiled": v.not_compiled, "diff": diff }),
        );
    }
    out
}
