//! The manager's own stop signals: SIGINT and SIGTERM end a run cleanly (running
//! attempts are stopped and the run stays resumable). Every front end gets the same
//! behaviour because the launcher, not the front end, listens.

/// Resolves on SIGINT or SIGTERM with the signal's name. If the handlers cannot be
/// installed it never resolves (the run can still be stopped by its front end).
pub async fn shutdown_signal() -> String {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT".to_string(),
        _ = term.recv() => "SIGTERM".to_string(),
    }
}
