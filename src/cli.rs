//! Command-line flags and their environment variables: the whole configuration of the
//! service, parsed by clap (`--help` lists it). The server's flags belong to the
//! top-level command; `check` takes only what it reads (`check --help` lists them):
//! the flags that find the cluster and the namespace ([`ClusterFlags`], shared by both)
//! and the log format.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Connects SparkTest to Kubernetes: job status, logs and deletion over a REST API.
#[derive(Debug, Parser)]
// No server flag before a subcommand: `sparktest-k8s --port 1 check` is refused rather
// than run as a `check` that ignores the flag.
#[command(
    name = "sparktest-k8s",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log line format (`RUST_LOG` sets the level, default `info`).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true, display_order = 100)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the connection and the permissions of the documented Role, print what was
    /// found (never a secret), and exit non-zero with the fix when something is missing.
    Check(CheckArgs),
}

/// The flags of `sparktest-k8s check`: only those that find the cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// Which cluster, as whom, in which namespace: read by the server and by `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterFlags {
    /// Kubeconfig file to use (else $KUBECONFIG, a path list; else in-cluster; else
    /// ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use instead of current-context.
    #[arg(long, env = "KUBE_CONTEXT")]
    pub context: Option<String>,

    /// Namespace of the jobs (else the kubeconfig context's namespace, else the
    /// in-cluster namespace file, else `default`).
    #[arg(long, env = "KUBE_NAMESPACE")]
    pub namespace: Option<String>,

    /// Bounds each apiserver request until its answer, in seconds: what status, logs,
    /// delete, the job list and `check` wait at most for a hung apiserver before a 504.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_seconds: u64,

    /// Bounds the long reads, in seconds: a log body as it streams in.
    #[arg(long, env = "TIMEOUT_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_seconds: u64,

    /// Directory of the in-cluster service-account files.
    #[arg(long, env = "SERVICE_ACCOUNT_DIR", default_value = crate::cluster::SERVICE_ACCOUNT_DIR)]
    pub service_account_dir: PathBuf,
}

impl ClusterFlags {
    /// The inputs of cluster discovery: these flags and the process environment.
    pub fn environment(&self) -> crate::cluster::Environment {
        crate::cluster::Environment::from_process(
            self.kubeconfig.clone(),
            self.context.clone(),
            self.service_account_dir.clone(),
        )
    }

    /// The Kubernetes client's timeouts.
    pub fn client_options(&self) -> crate::kube::ClientOptions {
        crate::kube::ClientOptions {
            timeout: std::time::Duration::from_secs(self.timeout_seconds),
            request_timeout: std::time::Duration::from_secs(self.request_timeout_seconds),
            ..crate::kube::ClientOptions::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for cluster log collectors.
    Json,
}

/// Every setting of the server, each a flag with an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub cluster: ClusterFlags,

    /// Port to serve the API on.
    #[arg(long, env = "PORT", default_value_t = 3001)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Default and maximum number of log lines returned.
    #[arg(long, env = "MAX_LOG_LINES", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_log_lines: u32,

    /// Largest log body returned by the logs endpoints, in bytes; longer logs are cut
    /// and marked `"truncated": true`.
    #[arg(long, env = "MAX_LOG_BYTES", default_value_t = 10 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024))]
    pub max_log_bytes: u64,

    /// Most live streams (log streams and watches) open at once; beyond it, 503.
    #[arg(long, env = "MAX_STREAMS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_streams: u32,

    /// File of bearer tokens that callers of the API must present, one per line (mount
    /// it from a Secret; several tokens allow rotation). Unset: no caller authentication.
    #[arg(long, env = "API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,

    /// Origins allowed to call the API from a browser (CORS), comma-separated, e.g.
    /// `http://localhost:3000`. Unset: none.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,

    /// Allow DELETE of Jobs that SparkTest does not manage (without the label
    /// `app.kubernetes.io/managed-by: sparktest` or `app: sparktest`).
    #[arg(long, env = "DELETE_UNMANAGED", default_value_t = false)]
    pub delete_unmanaged: bool,

    /// Seconds to keep serving after SIGTERM with `/readyz` answering 503, so that the
    /// endpoint leaves the Service before the listener closes (5 in the Deployment).
    #[arg(long, env = "SHUTDOWN_DELAY_SECONDS", default_value_t = 0)]
    pub shutdown_delay_seconds: u64,

    /// Templates file of named executors for `POST /api/test-runs` (see
    /// examples/templates.yaml). Unset: runs give their image and commands themselves.
    #[arg(long, env = "TEMPLATES_FILE")]
    pub templates: Option<PathBuf>,

    /// Namespaces `?namespace=` may name (comma-separated); the service's own namespace
    /// is always allowed and is the default.
    #[arg(long, env = "ALLOWED_NAMESPACES", value_delimiter = ',')]
    pub allowed_namespaces: Vec<String>,

    /// Resource requests of a run that sets none.
    #[arg(
        long,
        env = "DEFAULT_REQUESTS",
        default_value = "cpu=100m,memory=128Mi"
    )]
    pub default_requests: crate::runs::ResourceList,

    /// Resource limits of a run that sets none.
    #[arg(long, env = "DEFAULT_LIMITS", default_value = "cpu=1,memory=512Mi")]
    pub default_limits: crate::runs::ResourceList,

    /// The most CPU and memory a run may request or be limited to; beyond it, 400.
    #[arg(long, env = "MAX_RESOURCES", default_value = "cpu=4,memory=8Gi")]
    pub max_resources: crate::runs::ResourceList,

    /// A run's deadline when neither it nor its template sets `timeout_seconds`.
    #[arg(long, env = "DEFAULT_RUN_TIMEOUT_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::runs::MAX_TIMEOUT_SECONDS)))]
    pub default_run_timeout_seconds: u32,

    /// Seconds a finished run's Job is kept before Kubernetes removes it (unless the
    /// run or its template sets `ttl_seconds_after_finished`).
    #[arg(long, env = "DEFAULT_RUN_TTL_SECONDS", default_value_t = 86400, value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::runs::MAX_TTL_SECONDS)))]
    pub default_run_ttl_seconds: u32,

    /// Retries of a failed run pod when neither the run nor its template sets
    /// `backoff_limit` (0: a failed test is a failed run).
    #[arg(long, env = "DEFAULT_RUN_BACKOFF_LIMIT", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::runs::MAX_BACKOFF_LIMIT)))]
    pub default_run_backoff_limit: u32,

    /// Milliseconds a status or log answer is reused for other callers asking the same
    /// (0: only concurrent callers share one apiserver call). Polling then costs the
    /// apiserver about one call per job and period, however many poll.
    #[arg(long, env = "ANSWER_REUSE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub answer_reuse_ms: u64,

    /// Where finished runs' logs, status and pods are archived: a directory, or
    /// `s3://BUCKET[/PREFIX]` (credentials and endpoint from the AWS_* variables), or
    /// `off`. Unset: `$XDG_DATA_HOME/sparktest-k8s/archive` (else
    /// `~/.local/share/sparktest-k8s/archive`) when writable, else off with a warning.
    #[arg(long, env = "LOG_ARCHIVE")]
    pub log_archive: Option<String>,

    /// The most bytes of one container's log archived; the rest is cut, and the cut is
    /// recorded.
    #[arg(long, env = "LOG_ARCHIVE_MAX_BYTES", default_value_t = 64 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024 * 1024))]
    pub log_archive_max_bytes: u64,

    /// Days an archived run is kept in a directory archive (unset: kept). For S3, use
    /// the bucket's lifecycle rules.
    #[arg(long, env = "LOG_ARCHIVE_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub log_archive_retention_days: Option<u32>,

    /// Reconcile TestRun resources (sparktest.dev/v1alpha1) in the served namespaces
    /// into Jobs, one replica at a time (leader election through a Lease). Needs the
    /// CRD and RBAC of deploy/components/testruns.
    #[arg(long, env = "WATCH_TESTRUNS", default_value_t = false)]
    pub watch_testruns: bool,

    /// Seconds to drain in-flight requests after SIGTERM or SIGINT before exiting.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
}

/// A browser origin as CORS compares it: `http` or `https`, `://`, a host and an
/// optional port, nothing after it (`http://localhost:3000`; no path, no trailing `/`).
pub fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    let rule =
        "an origin is scheme://host[:port] with scheme http or https, e.g. http://localhost:3000";
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| format!("'{value}': {rule}"))?;
    let (host, port) = match rest.rsplit_once(':') {
        // `[::1]:3000`, `host:3000`; a bare IPv6 literal keeps its colons.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok {
        Ok(value.to_string())
    } else {
        Err(format!("'{value}': {rule}"))
    }
}

impl Settings {
    /// `ALLOWED_NAMESPACES` parsed, blanks skipped, each namespace once; an error
    /// names the entry at fault.
    pub fn allowed_namespaces(&self) -> Result<Vec<crate::names::Namespace>, String> {
        let mut list = Vec::new();
        for name in self.allowed_namespaces.iter().map(|n| n.trim()) {
            if name.is_empty() {
                continue;
            }
            let ns: crate::names::Namespace = name.parse().map_err(|e| format!("'{name}': {e}"))?;
            if !list.contains(&ns) {
                list.push(ns);
            }
        }
        Ok(list)
    }

    /// The defaults and maxima of runs, checked against each other.
    pub fn run_defaults(&self) -> Result<crate::runs::RunDefaults, String> {
        let defaults = crate::runs::RunDefaults {
            requests: self.default_requests.clone(),
            limits: self.default_limits.clone(),
            max: self.max_resources.clone(),
            timeout_seconds: self.default_run_timeout_seconds,
            ttl_seconds_after_finished: self.default_run_ttl_seconds,
            backoff_limit: self.default_run_backoff_limit,
        };
        defaults.check()?;
        Ok(defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        // try_parse_from reads the environment too: only flags that have no variable
        // set on test machines are asserted.
        let cli = Cli::try_parse_from(["sparktest-k8s", "--port", "3001"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.settings.port, 3001);
        assert_eq!(cli.settings.bind.to_string(), "0.0.0.0");
        assert_eq!(cli.settings.cluster.timeout_seconds, 300);
        assert_eq!(cli.settings.max_log_lines, 1000);
        assert_eq!(
            cli.settings.run_defaults().unwrap(),
            crate::runs::RunDefaults::default(),
            "the flags' defaults are RunDefaults::default()"
        );
    }

    #[test]
    fn allowed_namespaces_are_each_taken_once_and_must_be_names() {
        let cli = Cli::try_parse_from([
            "sparktest-k8s",
            "--allowed-namespaces",
            "team-a, team-b,,team-a",
        ])
        .unwrap();
        let list = cli.settings.allowed_namespaces().unwrap();
        let names: Vec<&str> = list.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["team-a", "team-b"]);
        let cli = Cli::try_parse_from(["sparktest-k8s", "--allowed-namespaces", "team-a,Team_B"])
            .unwrap();
        assert!(
            cli.settings
                .allowed_namespaces()
                .unwrap_err()
                .contains("Team_B")
        );
    }

    #[test]
    fn resource_flags_parse_and_are_checked_against_the_maximum() {
        let cli =
            Cli::try_parse_from(["sparktest-k8s", "--default-limits", "cpu=8,memory=1Gi"]).unwrap();
        let e = cli.settings.run_defaults().unwrap_err();
        assert_eq!(e, "DEFAULT_LIMITS cpu=8 exceeds MAX_RESOURCES cpu=4");
        assert!(Cli::try_parse_from(["sparktest-k8s", "--max-resources", "gpu=1"]).is_err());
        assert!(Cli::try_parse_from(["sparktest-k8s", "--max-resources", "cpu=lots"]).is_err());
    }

    #[test]
    fn check_takes_the_cluster_flags_and_not_the_servers() {
        let cli = Cli::try_parse_from([
            "sparktest-k8s",
            "check",
            "--kubeconfig",
            "/tmp/kc",
            "--context",
            "x",
            "--namespace",
            "team-a",
            "--log-format",
            "json",
        ])
        .unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!("not check: {:?}", cli.command)
        };
        assert_eq!(args.cluster.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        assert_eq!(args.cluster.context.as_deref(), Some("x"));
        assert_eq!(args.cluster.namespace.as_deref(), Some("team-a"));
        assert_eq!(cli.log_format, LogFormat::Json);
        for server_flag in [["--port", "1"], ["--cors-origins", "http://a"]] {
            let mut argv = vec!["sparktest-k8s", "check"];
            argv.extend(server_flag);
            assert!(Cli::try_parse_from(&argv).is_err(), "{argv:?}");
            // Before the subcommand they are refused too, not silently ignored.
            let mut argv = vec!["sparktest-k8s"];
            argv.extend(server_flag);
            argv.push("check");
            assert!(Cli::try_parse_from(&argv).is_err(), "{argv:?}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(Cli::try_parse_from(["sparktest-k8s", "--timeout-seconds", "0"]).is_err());
        assert!(Cli::try_parse_from(["sparktest-k8s", "--port", "70000"]).is_err());
    }

    #[test]
    fn cors_origins_are_scheme_host_and_port() {
        for ok in [
            "http://localhost:3000",
            "https://sparktest.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
        ] {
            assert_eq!(parse_origin(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "localhost:3000",
            "http://",
            "http://localhost:3000/",
            "http://localhost:3000/app",
            "ftp://host",
            "http://host:0",
            "http://host:99999",
            "http://ho st",
            "*",
        ] {
            let e = parse_origin(bad).unwrap_err();
            assert!(e.contains("scheme://host[:port]"), "{bad}: {e}");
        }
    }
}
