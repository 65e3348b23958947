//! [`stop_signals`]: a future that completes on Ctrl-C or SIGTERM, for the long-running programs,
//! and [`after`], for their `--seconds N`.

use std::future::Future;

/// Completes on SIGINT (Ctrl-C) or SIGTERM, naming which. The handlers are installed by this call,
/// not when the future is first polled, so a signal right after startup already counts.
#[cfg(unix)]
pub fn stop_signals() -> impl Future<Output = &'static str> {
    use tokio::signal::unix::{Signal, SignalKind, signal};

    fn install(kind: SignalKind, name: &str) -> Option<Signal> {
        signal(kind)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for {name}"))
            .ok()
    }
    async fn next(s: &mut Option<Signal>) {
        match s {
            // `None` means the signal stream ended: treat it as a stop request too.
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let mut int = install(SignalKind::interrupt(), "Ctrl-C");
    let mut term = install(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = next(&mut int) => "Ctrl-C",
            () = next(&mut term) => "SIGTERM",
        }
    }
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
pub fn stop_signals() -> impl Future<Output = &'static str> {
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        "Ctrl-C"
    }
}

/// Completes after `seconds`, or never when `None`.
pub async fn after(seconds: Option<u64>) {
    match seconds {
        Some(s) => tokio::time::sleep(std::time::Duration::from_secs(s)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn after_zero_seconds_completes_and_none_does_not() {
        super::after(Some(0)).await;
        let never = tokio::time::timeout(std::time::Duration::from_millis(20), super::after(None));
        assert!(never.await.is_err());
    }
}
