//! `recorder collect`: fetch every workload's profile from several daemons
//! and merge them per workload, with coverage across nodes. Kubernetes is
//! the distributed engine: each node learns locally; the result travels as
//! files or SeccompProfile resources, with no cluster store of our own.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use http_body_util::BodyExt as _;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

use super::exit::{Code, Failure};
use crate::{
    algebra::merge::{COVERAGE_ANNOTATION, merge},
    k8s_name::{Kind, NameError, validate},
    output::{self, Output, beneath},
    profile::{
        self,
        write::{self, Format, WriteOptions},
    },
};

const EXAMPLES: &str = "\
Examples:
  recorder collect http://node-a:9464 http://node-b:9464 -o profiles/
  recorder collect http://node-a:9464 -o profiles/ --format spo     # kubectl apply -f profiles/
  recorder collect http://127.0.0.1:9464 --install                   # into the kubelet's seccomp root

Every (namespace, workload, container) any daemon learned gets one profile:
the union over nodes of each node's merged profile (newest image
generation), written as <namespace>_<workload>_<container>.json (or .yaml for
--format spo). How many nodes needed each syscall goes to the SPO coverage
annotation. A node that cannot be reached is an error: a merge that silently
missed a node would be narrower than the workload needs.";

/// Fetch and merge every workload's profile from several daemons.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct CollectArgs {
    /// The daemons' API base URLs, e.g. http://node-a:9464.
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
    /// Directory for the profiles (must exist).
    #[arg(short, long, value_name = "DIR", required_unless_present = "install")]
    pub output: Option<PathBuf>,
    /// Output dialect.
    #[arg(long, value_enum, default_value_t = Format::Oci)]
    pub format: Format,
    /// Write each profile into the kubelet's seccomp root as
    /// recorder/<namespace>/<workload>/<container>.json.
    #[arg(long, conflicts_with = "output")]
    pub install: bool,
    /// The kubelet's seccomp root, for --install.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/kubelet/seccomp", requires = "install")]
    pub seccomp_root: PathBuf,
    /// Per request.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{url}: {message}; is the daemon running and is this its --listen address?")]
    Unreachable { url: String, message: String },
    #[error("{url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("{url} did not answer within {seconds}s")]
    Timeout { url: String, seconds: u64 },
    /// A name in a daemon's workload list that Kubernetes would refuse:
    /// checked before it goes into a URL or a file name.
    #[error(transparent)]
    Name(#[from] NameError),
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, http_body_util::Empty<bytes::Bytes>>;

async fn get(client: &HttpClient, url: &str, timeout: Duration) -> Result<String, FetchError> {
    let unreachable = |message: String| FetchError::Unreachable { url: url.to_owned(), message };
    let uri: hyper::Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| unreachable(e.to_string()))?;
    let request = async {
        let response = client.get(uri).await.map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| unreachable(e.to_string()))?.to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        if status != 200 {
            return Err(FetchError::Status { url: url.to_owned(), status, body: text.trim().to_owned() });
        }
        Ok(text)
    };
    tokio::time::timeout(timeout, request)
        .await
        .map_err(|_| FetchError::Timeout { url: url.to_owned(), seconds: timeout.as_secs() })?
}

pub fn execute(args: CollectArgs) -> Result<u8, Failure> {
    let timeout = super::duration::parse(&args.timeout)?;
    if let Some(dir) = &args.output {
        if !dir.is_dir() {
            return Err(output::OutputError::NoParent(dir.clone()).into());
        }
        output::check_writable(dir)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Code::Internal, e))?;
    let fetched = runtime.block_on(fetch_all(&args.urls, timeout)).map_err(|e| match e {
        FetchError::Name(e) => Failure::from(e),
        e => Failure::new(Code::RuntimeFailed, e),
    })?;
    let mut written = 0;
    for ((namespace, workload, container), texts) in &fetched {
        let mut inputs = Vec::new();
        for (url, text) in texts {
            inputs.push(profile::parse_str(text, url)?.profile);
        }
        let merged = merge(&inputs).map_err(|e| Failure::new(Code::BadProfile, e))?;
        let name = format!("{namespace}-{workload}-{container}");
        let mut opts = WriteOptions { name: Some(name), annotations: BTreeMap::new() };
        opts.annotations.insert(COVERAGE_ANNOTATION.to_owned(), merged.coverage.to_annotation());
        let profile = merged.profile.with_enosys_clone3();
        let text = write::write(&profile, args.format, &opts).map_err(|e| Failure::new(Code::BadProfile, e))?.text;
        let path = if args.install {
            let rel = PathBuf::from("recorder").join(namespace).join(workload).join(format!("{container}.json"));
            beneath::write(&args.seccomp_root, &rel, text.as_bytes())?
        } else {
            let ext = if args.format == Format::Spo { "yaml" } else { "json" };
            let dir = args.output.clone().unwrap_or_default();
            let path = dir.join(format!("{namespace}_{workload}_{container}.{ext}"));
            Output::prepare(Some(&path))?.commit(&text)?;
            path
        };
        eprintln!(
            "recorder: {namespace}/{workload}/{container}: merged from {} -> {}",
            crate::text::count(texts.len() as u64, "node", "nodes"),
            path.display()
        );
        written += 1;
    }
    eprintln!("recorder: {} from {}", crate::text::count(written as u64, "profile", "profiles"), args.urls.join(", "));
    Ok(0)
}

/// (namespace, workload, container) -> (node URL, that node's OCI profile).
type Fetched = BTreeMap<(String, String, String), Vec<(String, String)>>;

async fn fetch_all(urls: &[String], timeout: Duration) -> Result<Fetched, FetchError> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut fetched = Fetched::new();
    for base in urls {
        let base = base.trim_end_matches('/');
        let list = get(&client, &format!("{base}/v1/workloads"), timeout).await?;
        let workloads: Vec<serde_json::Value> = serde_json::from_str(&list).map_err(|e| FetchError::Unreachable {
            url: format!("{base}/v1/workloads"),
            message: format!("not a workload list ({e})"),
        })?;
        let mut newest: BTreeMap<(String, String, String), (u64, String)> = BTreeMap::new();
        for w in &workloads {
            let field = |k: &str| w.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            let key = (field("namespace"), field("workload"), field("container"));
            let seen = w.get("seconds_since_new_syscall").and_then(serde_json::Value::as_u64).unwrap_or(u64::MAX);
            let generation = field("generation");
            // The generation that learned most recently is the one running.
            if newest.get(&key).is_none_or(|(s, _)| seen < *s) {
                newest.insert(key, (seen, generation));
            }
        }
        for ((namespace, workload, container), (_, generation)) in newest {
            // Names come from the daemons: the same rules as for pods, before
            // they go into a URL or, later, a file name.
            validate(Kind::Namespace, &namespace)?;
            validate(Kind::Object, &workload)?;
            validate(Kind::Container, &container)?;
            let url = format!(
                "{base}/v1/profiles/{namespace}/{workload}/{container}?format=oci&generation={}",
                percent_encode(&generation)
            );
            let text = get(&client, &url, timeout).await?;
            fetched.entry((namespace, workload, container)).or_default().push((base.to_owned(), text));
        }
    }
    Ok(fetched)
}

/// Query-string escaping for an image reference (`sha256:...`, `@`).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
