//! `hotkey-proxy`: see the crate's documentation and `hotkey-proxy --help`.

use std::process::ExitCode;

use hotkey_proxy::config::{Config, ConfigError};

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args_os()) {
        Ok(config) => config,
        Err(ConfigError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("hotkey-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = hotkey_proxy::logging::init(&config.log) {
        eprintln!("hotkey-proxy: {e}");
        return ExitCode::from(2);
    }
    // One thread runs everything, accept loop included, as twemproxy's one event loop does:
    // a multi-threaded runtime with one worker would hand every accepted client from the
    // main thread to the worker and pay for work stealing nobody can do.
    let mut builder = if config.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(config.threads);
        builder
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hotkey-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hotkey_proxy::server::run(config, stop_signal(), |_, _| {})) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotkey-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the proxy runs until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
