//! The `notary.keyd.v1.Keyd` gRPC service: authorisation, audit and
//! dispatch to devices. One file per group of RPCs.

mod attest;
mod daemon;
pub(crate) mod import;
mod keys;
mod progress;
mod signing;
mod tokens;
mod yubikey;

use crate::audit::{now_rfc3339, AuditLog, AuditRecord};
use crate::caller::Caller;
use crate::policy::Policy;
use crate::registry::{KeyEntry, Registry};
use crate::signing::SigningCore;
use keyd_proto::keyd as pb;
use std::sync::Arc;
use tonic::Status;

#[derive(Clone)]
pub(crate) struct KeydService {
    pub registry: Arc<Registry>,
    pub policy: Arc<Policy>,
    pub audit: AuditLog,
    pub signing: SigningCore,
    pub default_backend: String,
    pub daemon: Arc<crate::daemon_info::DaemonInfo>,
}

impl KeydService {
    fn audit_base(&self, caller: &Caller, operation: &str) -> AuditRecord {
        AuditRecord {
            time: now_rfc3339(),
            uid: Some(caller.uid),
            gid: Some(caller.gid),
            user: self.policy.user_name(caller.uid).unwrap_or_default(),
            pid: caller.pid,
            operation: operation.to_string(),
            ..Default::default()
        }
    }
}

fn key_message(e: &KeyEntry) -> pb::Key {
    let (role, delegation) = keyd_proto::convert::role_fields(e.role.as_ref());
    pb::Key {
        key_id: e.key_id.clone(),
        keytype: e.key.public.keytype().as_str().to_string(),
        public: e.key.public.public_bytes().to_vec(),
        algorithm: crate::wire::algorithm_message(e.key.algorithm) as i32,
        backend: e.device.clone(),
        uri: e.key.uri.to_string(),
        label: e.key.label.clone(),
        role,
        delegation,
        gun: e
            .gun
            .as_ref()
            .map(|g| g.as_str().to_string())
            .unwrap_or_default(),
        x509_key_id: e.x509_key_id.clone().unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl pb::keyd_server::Keyd for KeydService {
    async fn list_backends(
        &self,
        request: tonic::Request<pb::ListBackendsRequest>,
    ) -> Result<tonic::Response<pb::ListBackendsResponse>, Status> {
        self.list_backends_rpc(request).await
    }

    async fn list_keys(
        &self,
        request: tonic::Request<pb::ListKeysRequest>,
    ) -> Result<tonic::Response<pb::ListKeysResponse>, Status> {
        self.list_keys_rpc(request).await
    }

    async fn get_key(
        &self,
        request: tonic::Request<pb::GetKeyRequest>,
    ) -> Result<tonic::Response<pb::Key>, Status> {
        self.get_key_rpc(request).await
    }

    async fn generate_key(
        &self,
        request: tonic::Request<pb::GenerateKeyRequest>,
    ) -> Result<tonic::Response<pb::Key>, Status> {
        self.generate_key_rpc(request).await
    }

    async fn delete_key(
        &self,
        request: tonic::Request<pb::DeleteKeyRequest>,
    ) -> Result<tonic::Response<pb::DeleteKeyResponse>, Status> {
        self.delete_key_rpc(request).await
    }

    async fn attach_certificate(
        &self,
        request: tonic::Request<pb::AttachCertificateRequest>,
    ) -> Result<tonic::Response<pb::Certificate>, Status> {
        self.attach_certificate_rpc(request).await
    }

    async fn get_certificate(
        &self,
        request: tonic::Request<pb::GetCertificateRequest>,
    ) -> Result<tonic::Response<pb::Certificate>, Status> {
        self.get_certificate_rpc(request).await
    }

    type IssueRootCertificateStream = progress::EventStream<pb::IssueRootCertificateEvent>;

    async fn issue_root_certificate(
        &self,
        request: tonic::Request<pb::IssueRootCertificateRequest>,
    ) -> Result<tonic::Response<Self::IssueRootCertificateStream>, Status> {
        self.issue_root_certificate_rpc(request).await
    }

    type SignStream = progress::EventStream<pb::SignEvent>;

    async fn sign(
        &self,
        request: tonic::Request<pb::SignRequest>,
    ) -> Result<tonic::Response<Self::SignStream>, Status> {
        self.sign_rpc(request).await
    }

    async fn unlock(
        &self,
        request: tonic::Request<pb::UnlockRequest>,
    ) -> Result<tonic::Response<pb::UnlockResponse>, Status> {
        self.unlock_rpc(request).await
    }

    async fn lock(
        &self,
        request: tonic::Request<pb::LockRequest>,
    ) -> Result<tonic::Response<pb::LockResponse>, Status> {
        self.lock_rpc(request).await
    }

    async fn release_device(
        &self,
        request: tonic::Request<pb::ReleaseDeviceRequest>,
    ) -> Result<tonic::Response<pb::ReleaseDeviceResponse>, Status> {
        self.release_device_rpc(request).await
    }

    async fn yubikey_status(
        &self,
        request: tonic::Request<pb::YubiKeyStatusRequest>,
    ) -> Result<tonic::Response<pb::YubiKeyStatusResponse>, Status> {
        self.yubikey_status_rpc(request).await
    }

    async fn yubikey_setup(
        &self,
        request: tonic::Request<pb::YubiKeySetupRequest>,
    ) -> Result<tonic::Response<pb::YubiKeySetupResponse>, Status> {
        self.yubikey_setup_rpc(request).await
    }

    async fn attest_key(
        &self,
        request: tonic::Request<pb::AttestKeyRequest>,
    ) -> Result<tonic::Response<pb::KeyAttestation>, Status> {
        self.attest_key_rpc(request).await
    }

    async fn import_for_migration(
        &self,
        request: tonic::Request<pb::ImportForMigrationRequest>,
    ) -> Result<tonic::Response<pb::Key>, Status> {
        self.import_for_migration_rpc(request).await
    }

    async fn get_daemon_status(
        &self,
        request: tonic::Request<pb::GetDaemonStatusRequest>,
    ) -> Result<tonic::Response<pb::DaemonStatus>, Status> {
        self.get_daemon_status_rpc(request).await
    }
}
