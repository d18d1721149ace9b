//! The binary: parse flags, start logging, then serve (or `check`) and pick the exit code.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sparktest_k8s::tokens::ApiTokens;
use sparktest_k8s::cli::{Cli, Command, LogFormat};
use sparktest_k8s::runs::templates::Templates;
use sparktest_k8s::{AppState, check, cluster, names::Namespace, state};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Check(args)) => runtime.block_on(check::run(&args.cluster)),
        None => runtime.block_on(serve(cli.settings)),
    }
}

async fn serve(settings: sparktest_k8s::cli::Settings) -> ExitCode {
    let (connection, config) = state::connect(&settings.cluster);
    let namespace =
        cluster::default_namespace(settings.cluster.namespace.as_deref(), config.as_ref());
    let namespace: Namespace = match namespace.parse() {
        Ok(ns) => ns,
        Err(e) => {
            tracing::error!(error = %e, %namespace, "the namespace cannot be used");
            return ExitCode::FAILURE;
        }
    };
    let limits = state::LogLimits {
        max_lines: settings.max_log_lines,
        max_bytes: settings.max_log_bytes,
    };
    let api_tokens = match &settings.api_tokens_file {
        None => {
            tracing::warn!(
                "caller authentication is OFF: set API_TOKENS_FILE to require bearer tokens"
            );
            None
        }
        Some(path) => match ApiTokens::load(path.clone()) {
            Ok(tokens) => {
                tracing::info!(path = %path.display(), tokens = tokens.count(), "caller authentication is on");
                Some(std::sync::Arc::new(tokens))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load the API tokens");
                return ExitCode::FAILURE;
            }
        },
    };
    let Some(runs) = run_config(&settings) else {
        return ExitCode::FAILURE;
    };
    let allowed_namespaces = match settings.allowed_namespaces() {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "ALLOWED_NAMESPACES names an invalid namespace");
            return ExitCode::FAILURE;
        }
    };
    let addr = std::net::SocketAddr::new(settings.bind, settings.port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot bind");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%addr, %namespace, "serving the SparkTest Kubernetes API");
    if connection.client.is_err() {
        tracing::warn!("serving without Kubernetes: the job endpoints answer 503");
    }
    let streams = state::StreamLimits {
        max_streams: settings.max_streams as usize,
        ..state::StreamLimits::default()
    };
    let policy = state::Policy {
        api_tokens,
        delete_unmanaged: settings.delete_unmanaged,
        cors_origins: settings.cors_origins.clone(),
        allowed_namespaces,
        runs: std::sync::Arc::new(runs),
    };
    let state = AppState::with_policy(connection, namespace, limits, streams, policy);
    state.start_caches();
    let drain = sparktest_k8s::Drain {
        delay: Duration::from_secs(settings.shutdown_delay_seconds),
        grace: Duration::from_secs(settings.shutdown_grace_seconds),
    };
    sparktest_k8s::run(listener, state, shutdown_signal(), drain).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// The run defaults and the templates file, checked before serving: a broken one is
/// logged naming the file, template and field, and the service does not start.
fn run_config(settings: &sparktest_k8s::cli::Settings) -> Option<state::RunConfig> {
    let defaults = match settings.run_defaults() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "the run resource settings contradict each other");
            return None;
        }
    };
    let templates = match &settings.templates {
        None => Default::default(),
        Some(path) => match Templates::load(path, &defaults) {
            Ok(t) => {
                tracing::info!(path = %path.display(), templates = t.len(), "run templates loaded");
                t
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load the run templates");
                return None;
            }
        },
    };
    Some(state::RunConfig {
        defaults,
        templates,
    })
}

/// SIGTERM (sent by Kubernetes on every rollout) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// `RUST_LOG` as `target=level` directives (`info`, `sparktest_k8s=debug,hyper=warn`);
/// tracing-subscriber's `Targets` parses them without a regex engine.
fn init_tracing(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    const DEFAULT: &str = "info,warp::server=off";
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| DEFAULT.to_string());
    let filter: tracing_subscriber::filter::Targets = directives.parse().unwrap_or_else(|e| {
        eprintln!("RUST_LOG {directives:?} is not a list of target=level directives ({e}); using {DEFAULT}");
        DEFAULT.parse().expect("the default directives parse")
    });
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(fmt).init(),
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).init(),
    }
}
