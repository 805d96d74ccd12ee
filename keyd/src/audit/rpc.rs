//! `notary.keyd.v1.Audit`: the audit public key and where the chain
//! stands, for callers the policy lets list keys. Reading them changes
//! nothing and is not itself audited.

use super::key::{public_pem, AuditKey};
use super::AuditLog;
use crate::caller::Caller;
use crate::policy::{Operation, Policy};
use crate::status::denied;
use keyd_proto::keyd as pb;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub(crate) struct AuditService {
    pub(crate) log: AuditLog,
    /// The audit key, or why there is none.
    pub(crate) key: Result<Arc<AuditKey>, String>,
    pub(crate) policy: Arc<Policy>,
}

impl AuditService {
    fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let caller = Caller::of(request)?;
        if self.policy.allows_any(&caller, Operation::List) {
            Ok(())
        } else {
            Err(denied(format!(
                "uid {} may not list, so it may not see the audit log's state either",
                caller.uid
            )))
        }
    }
}

#[tonic::async_trait]
impl pb::audit_server::Audit for AuditService {
    async fn get_audit_key(
        &self,
        request: Request<pb::GetAuditKeyRequest>,
    ) -> Result<Response<pb::AuditKey>, Status> {
        self.check(&request)?;
        let key = self.key.as_ref().map_err(|why| {
            Status::failed_precondition(format!("the daemon has no audit key: {why}"))
        })?;
        Ok(Response::new(pb::AuditKey {
            key_id: key.key_id.clone(),
            public_key_pem: public_pem(&key.key.public),
            backend: key.backend.clone(),
            algorithm: key.key.algorithm.as_str().to_string(),
        }))
    }

    async fn get_audit_status(
        &self,
        request: Request<pb::GetAuditStatusRequest>,
    ) -> Result<Response<pb::AuditStatus>, Status> {
        self.check(&request)?;
        let s = self.log.snapshot();
        Ok(Response::new(pb::AuditStatus {
            head_seq: s.head.seq,
            head_hash: s.head.hash_hex(),
            dir: self.log.dir.display().to_string(),
            segment: s
                .segment
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            segment_bytes: s.segment_bytes,
            segment_size: s.segment_size,
            last_checkpoint: s.last_checkpoint.map(|c| pb::AuditCheckpoint {
                seq: c.seq,
                time: c.time,
                head_seq: c.head_seq,
                head_hash: c.head,
            }),
            audit_key_id: self
                .key
                .as_ref()
                .map_or_else(|_| String::new(), |k| k.key_id.clone()),
        }))
    }
}
