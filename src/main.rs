//! The binary: parse flags, start logging, then serve (or `check`) and pick the exit code.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sparktest_k8s::cli::{Cli, Command, LogFormat};
use sparktest_k8s::{AppState, check};

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
    let state = match AppState::from_settings(&settings) {
        Ok(state) => state,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
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
    tracing::info!(%addr, namespace = %state.namespace(), "serving the SparkTest Kubernetes API");
    if state.client().is_err() {
        tracing::warn!("serving without Kubernetes: the job endpoints answer 503");
    }
    state.start_caches();
    // TestRuns (--watch-testruns): the controller and its leader election.
    let testruns = if settings.watch_testruns {
        sparktest_k8s::testruns::start(&state)
    } else {
        None
    };
    let drain = sparktest_k8s::Drain {
        delay: Duration::from_secs(settings.shutdown_delay_seconds),
        grace: Duration::from_secs(settings.shutdown_grace_seconds),
    };
    sparktest_k8s::run(listener, state, shutdown_signal(), drain).await;
    // The TestRun controller stopped with the drain; let it hand its Lease back, so
    // that the other replica takes over at once rather than when the Lease expires.
    if let Some(testruns) = testruns {
        let _ = tokio::time::timeout(Duration::from_secs(5), testruns).await;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
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
