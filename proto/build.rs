//! Compiles the .proto files with protox (pure Rust), so no system `protoc`
//! is needed, and keeps the descriptor set for gRPC server reflection.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "notary/keyd/v1/keyd.proto",
        "notary/keyd/v1/audit.proto",
        "signer.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed=proto/{f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptor.bin"), fds.encode_to_vec())?;
    // Messages that carry a PIN or passphrase get a hand-written Debug that hides it
    // (src/redact.rs), so a logged request can never show a secret.
    tonic_prost_build::configure()
        .skip_debug(keyd_secret_messages())
        .compile_fds(fds)?;
    Ok(())
}

fn keyd_secret_messages() -> Vec<String> {
    [
        "SignRequest",
        "IssueRootCertificateRequest",
        "UnlockRequest",
        "GenerateKeyRequest",
        "YubiKeySetupRequest",
        "ImportForMigrationRequest",
    ]
    .iter()
    .map(|m| format!(".notary.keyd.v1.{m}"))
    .collect()
}
