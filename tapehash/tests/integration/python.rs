//! The reference: Python's `tapehash==0.1.1` from PyPI, run from the same interpreter as the
//! netaio interop tests: `$NETAIO_PYTHON` (set by `.ci/run`, whose pip line installs it), else
//! `.venv/bin/python` at the repository root, which is created or completed with pip when it
//! lacks the package (network access to PyPI needed once). A Python without it is an error,
//! never a skip.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const PIP_PACKAGE: &str = "tapehash==0.1.1";
const CHECK_VERSION: &str = "import tapehash, sys; \
    sys.exit(0 if tapehash.version() == '0.1.1' else 'need tapehash 0.1.1, found ' + tapehash.version())";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

fn version_ok(python: &Path) -> Result<(), String> {
    let out = Command::new(python)
        .args(["-c", CHECK_VERSION])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn setup(cmd: &mut Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Python interpreter with tapehash 0.1.1 (found or installed once per test run).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(p) = std::env::var_os("NETAIO_PYTHON") {
            let p = PathBuf::from(p);
            if let Err(e) = version_ok(&p) {
                panic!("NETAIO_PYTHON={} is not usable: {e}", p.display());
            }
            return p;
        }
        let venv = repo_root().join(".venv");
        let p = venv.join("bin").join("python");
        if p.exists() && version_ok(&p).is_ok() {
            return p;
        }
        eprintln!(
            "tapehash tests: installing {PIP_PACKAGE} into {}",
            venv.display()
        );
        if !p.exists() {
            setup(
                Command::new("python3").arg("-m").arg("venv").arg(&venv),
                "python3 -m venv .venv",
            );
        }
        setup(
            Command::new(&p).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PIP_PACKAGE,
            ]),
            "pip install tapehash==0.1.1",
        );
        if let Err(e) = version_ok(&p) {
            panic!("{} still lacks {PIP_PACKAGE}: {e}", p.display());
        }
        p
    })
}

/// Run `vectors.py` with `request` (JSON) on stdin; its JSON answer.
pub fn ask(request: &serde_json::Value) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/vectors.py");
    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let body = serde_json::to_vec(request).unwrap();
    // Python reads all of stdin before it writes, so writing first cannot deadlock.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&body).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "vectors.py failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("vectors.py prints JSON")
}
