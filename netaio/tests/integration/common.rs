//! What the integration tests share.

use std::path::{Path, PathBuf};

use netaio::Message;
use netaio::plugin::{AuthError, AuthPlugin, PluginContext};

/// Accepts messages carrying a fixed token in the auth field `token` (a test plugin, not
/// security): `make` adds it, `check` removes it and refuses a missing or different one.
#[derive(Clone)]
pub struct Token(pub &'static [u8]);

impl AuthPlugin for Token {
    fn make(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
        msg.auth.insert("token", self.0);
        Ok(())
    }
    fn check(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
        match msg.auth.remove("token") {
            Some(t) if t.as_ref() == self.0 => Ok(()),
            Some(_) => Err(AuthError::Invalid),
            None => Err(AuthError::MissingField("token".into())),
        }
    }
}

/// Every `.rs` file under `dir`, in a stable order (bounded depth). Test code: a tree it cannot
/// read is a failed test.
#[allow(clippy::unwrap_used)]
pub fn rust_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    assert!(
        depth < 16,
        "source tree unexpectedly deep at {}",
        dir.display()
    );
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, depth + 1, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The log lines at `INFO` and above (the examples' default level), captured on this thread
/// (the tests run on a current-thread runtime, so the nodes' tasks log here too).
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[allow(clippy::unwrap_used)]
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A dispatcher that lives as long as the process, so that a test's is never the only one
/// registered. With exactly one registered, tracing-core (0.1.36) computes a new callsite's
/// interest from the default dispatcher of the thread that first reaches it: a refusal warning
/// first logged by another test's node, on a thread without a subscriber, was cached as never
/// enabled, and `refusal_diagnostics`'s UDP test missed its warning (in one run in five to two
/// in three of `cargo test -p netaio --test integration udp`).
static SECOND_DISPATCHER: std::sync::LazyLock<tracing::Dispatch> =
    std::sync::LazyLock::new(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::new()));

#[allow(clippy::unwrap_used)]
impl Captured {
    /// Capture this thread's log lines until the guard drops.
    pub fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        std::sync::LazyLock::force(&SECOND_DISPATCHER);
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (out, tracing::subscriber::set_default(subscriber))
    }

    /// The lines at `level` (`"INFO"`, `"WARN"`, …).
    pub fn lines(&self, level: &str) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .filter(|l| l.contains(level))
            .map(str::to_owned)
            .collect()
    }

    /// The `WARN` lines.
    pub fn warnings(&self) -> Vec<String> {
        self.lines("WARN")
    }
}
