//! `notaryctl audit key` and `notaryctl audit status`: the daemon's audit
//! public key (to check the log's checkpoints with `notary-keyd audit
//! verify --key`) and where the log's chain stands.

use crate::errors::Reply;
use crate::output;
use anyhow::Result;
use clap::Args;
use keyd_proto::keyd as pb;
use keyd_proto::keyd::audit_client::AuditClient;
use serde::Serialize;
use tonic::transport::Channel;

#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// Print only the PEM public key (for a file to pass to `notary-keyd
    /// audit verify --key`).
    #[arg(long)]
    pem: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn key(channel: Channel, args: &KeyArgs) -> Result<()> {
    let key = AuditClient::new(channel)
        .get_audit_key(pb::GetAuditKeyRequest {})
        .await
        .reply()?;
    if !args.pem {
        println!("key ID:    {}", key.key_id);
        println!("algorithm: {}", key.algorithm);
        println!("backend:   {}", key.backend);
    }
    print!("{}", key.public_key_pem);
    Ok(())
}

#[derive(Serialize)]
struct StatusJson<'a> {
    head_seq: u64,
    head_hash: &'a str,
    dir: &'a str,
    segment: &'a str,
    segment_bytes: u64,
    segment_size: u64,
    audit_key_id: &'a str,
    last_checkpoint: Option<CheckpointJson<'a>>,
}

#[derive(Serialize)]
struct CheckpointJson<'a> {
    seq: u64,
    time: &'a str,
    head_seq: u64,
    head_hash: &'a str,
}

pub(crate) async fn status(channel: Channel, args: &StatusArgs) -> Result<()> {
    let s = AuditClient::new(channel)
        .get_audit_status(pb::GetAuditStatusRequest {})
        .await
        .reply()?;
    if args.json {
        let json = StatusJson {
            head_seq: s.head_seq,
            head_hash: &s.head_hash,
            dir: &s.dir,
            segment: &s.segment,
            segment_bytes: s.segment_bytes,
            segment_size: s.segment_size,
            audit_key_id: &s.audit_key_id,
            last_checkpoint: s.last_checkpoint.as_ref().map(|c| CheckpointJson {
                seq: c.seq,
                time: &c.time,
                head_seq: c.head_seq,
                head_hash: &c.head_hash,
            }),
        };
        println!("{}", output::json(&json)?);
        return Ok(());
    }
    println!("head:            seq {} {}", s.head_seq, s.head_hash);
    println!(
        "segment:         {}/{} ({} of {} bytes used)",
        s.dir, s.segment, s.segment_bytes, s.segment_size
    );
    match &s.last_checkpoint {
        Some(c) => println!(
            "last checkpoint: seq {} at {}, signs seq {} {}",
            c.seq, c.time, c.head_seq, c.head_hash
        ),
        None => println!("last checkpoint: none since the daemon started"),
    }
    println!("audit key:       {}", s.audit_key_id);
    Ok(())
}
