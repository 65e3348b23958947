//! `identity new FILE` / `identity show FILE`: the key files of `--identity`.

use std::io::Write;
use std::path::Path;

use netaio_asymmetric::Identity;
use serde_json::json;

use crate::cli::IdentityCommand;
use crate::common::read_identity;
use crate::exit::Failure;
use crate::output::Output;

fn show(out: &Output, file: &Path, identity: &Identity) {
    let ed25519 = hex::encode(identity.verifying_key().to_bytes());
    let x25519 = hex::encode(identity.x25519_public().as_bytes());
    out.event(
        "identity",
        json!({"file": file.display().to_string(), "ed25519": ed25519, "x25519": x25519}),
        || format!("ed25519 {ed25519}\nx25519  {x25519}"),
    );
}

/// Create or show an identity file.
pub fn run(out: &Output, cmd: IdentityCommand) -> Result<(), Failure> {
    match cmd {
        IdentityCommand::New { file } => {
            let identity = Identity::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                // The seed is a secret: readable by its owner only.
                options.mode(0o600);
            }
            options
                .open(&file)
                .and_then(|mut f| writeln!(f, "{}", hex::encode(identity.seed())))
                .map_err(|e| Failure::other(format!("cannot create {}: {e}", file.display())))?;
            show(out, &file, &identity);
        }
        IdentityCommand::Show { file } => show(out, &file, &read_identity(&file)?),
    }
    Ok(())
}
