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
