//! `Sign` and `IssueRootCertificate` on the Unix socket: the caller's
//! request as typed values for the signing core, progress events, and the
//! reply.

use super::progress::{delivered_stream, progress_stream, EventStream};
use super::KeydService;
use crate::audit::AuditRecord;
use crate::caller::Caller;
use crate::edge::{self, KeyRef};
use crate::policy::{KeyFacts, Operation, Policy};
use crate::registry::{KeyEntry, Registry};
use crate::signing::{ProgressSink, Purpose, Requester, SignRequest};
use crate::status::{invalid, key_not_found, refusal};
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::{Gun, Role};
use notary_tuf::signature::SignatureMethod;
use notary_tuf::KeyType;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// A Unix-socket caller, as the signing core asks about it.
struct LocalCaller<'a> {
    caller: &'a Caller,
    policy: &'a Policy,
}

impl Requester for LocalCaller<'_> {
    fn allows(&self, op: Operation, facts: &KeyFacts<'_>) -> bool {
        self.policy.allows(self.caller, op, facts)
    }

    fn who(&self) -> String {
        format!("uid {}", self.caller.uid)
    }

    async fn find(&self, registry: &Registry, key: &KeyRef) -> Result<Arc<KeyEntry>, Status> {
        let may_rescan = self.policy.allows_any(self.caller, Operation::Sign)
            || self.policy.allows_any(self.caller, Operation::SignRaw);
        // Only a caller some rule lets sign learns where a missing key is.
        registry
            .find_for(key.as_str(), may_rescan)
            .await
            .ok_or_else(|| {
                if may_rescan {
                    registry.missing(key.as_str())
                } else {
                    key_not_found(key.as_str())
                }
            })
    }
}

fn sign_request(req: pb::SignRequest) -> Result<SignRequest, Status> {
    Ok(SignRequest {
        key: KeyRef::parse(&req.key_id)?,
        role: edge::role(req.role, &req.delegation)?,
        gun: edge::gun(&req.gun)?,
        pin: edge::pin(req.pin),
        payload: req.payload,
    })
}

impl KeydService {
    pub(super) async fn sign_rpc(
        &self,
        request: Request<pb::SignRequest>,
    ) -> Result<Response<EventStream<pb::SignEvent>>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let this = self.clone();
        let wrap = |p| pb::SignEvent {
            event: Some(pb::sign_event::Event::Progress(p)),
        };
        Ok(Response::new(delivered_stream(
            wrap,
            |progress| async move {
                let record = this.audit_base(&caller, "sign");
                let req = match sign_request(req) {
                    Ok(req) => req,
                    Err(st) => return (this.audit.begin(record).close(Err(st)).await, None),
                };
                let asked_for = req.key.clone();
                let requester = LocalCaller {
                    caller: &caller,
                    policy: &this.policy,
                };
                let (signed, requested) =
                    match this.signing.sign(&requester, req, &progress, record).await {
                        Ok(done) => done,
                        Err(st) => return (Err(st), None),
                    };
                let entry = &signed.entry;
                // Listed under the ID the request used: the x509 ID for a
                // root key with a certificate, else the bare ID.
                let key_id = match &entry.x509_key_id {
                    Some(x509) if x509 == asked_for.as_str() => x509.clone(),
                    _ => entry.key_id.clone(),
                };
                let method = SignatureMethod::for_key_type(entry.key.public.keytype());
                let event = pb::SignEvent {
                    event: Some(pb::sign_event::Event::Result(pb::SignResult {
                        key_id,
                        method: pb::SignatureMethod::from_notary(method) as i32,
                        signature: signed.signature,
                    })),
                };
                (Ok(event), Some(requested))
            },
        )))
    }

    pub(super) async fn issue_root_certificate_rpc(
        &self,
        request: Request<pb::IssueRootCertificateRequest>,
    ) -> Result<Response<EventStream<pb::IssueRootCertificateEvent>>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let this = self.clone();
        let wrap = |p| pb::IssueRootCertificateEvent {
            event: Some(pb::issue_root_certificate_event::Event::Progress(p)),
        };
        Ok(Response::new(progress_stream(
            wrap,
            |progress| async move {
                let mut audited = this
                    .audit
                    .begin(this.audit_base(&caller, "issue-root-certificate"));
                let outcome = this
                    .issue_checked(&caller, req, &progress, audited.record())
                    .await;
                let (entry, pem) = audited.close(outcome).await?;
                let updated = this.store_certificate(&entry, &pem).await?;
                Ok(pb::IssueRootCertificateEvent {
                    event: Some(pb::issue_root_certificate_event::Event::Certificate(
                        pb::Certificate {
                            key_id: updated.key_id.clone(),
                            x509_key_id: updated.x509_key_id.clone().unwrap_or_default(),
                            certificate_pem: pem,
                        },
                    )),
                })
            },
        )))
    }

    /// Builds and signs the root certificate; the caller writes `record`
    /// with the outcome and stores the certificate.
    async fn issue_checked(
        &self,
        caller: &Caller,
        req: pb::IssueRootCertificateRequest,
        progress: &ProgressSink,
        record: &mut AuditRecord,
    ) -> Result<(Arc<KeyEntry>, String), Status> {
        record.role = Some(Role::Root);
        let key = KeyRef::parse(&req.key_id)?;
        record.key_id = key.as_str().to_string();
        let gun: Gun = edge::gun(&req.gun)?
            .ok_or_else(|| invalid("a root certificate needs the GUN (its CN)"))?;
        record.gun = Some(gun.clone());
        let entry = self
            .named_key(caller, Operation::Generate, &key, record)
            .await?;
        // Root keys are shared across GUNs in notary, so only the role
        // binding is enforced here; a GUN binding must still match.
        Purpose::of(&entry, Some(Role::Root), Some(gun.clone()))?;
        self.may_certify(caller, &entry, Some(&gun), "issue a root certificate for")?;
        if entry.key.public.keytype() != KeyType::Ecdsa {
            return Err(invalid(format!(
                "key {} is {}: notary root certificates need an ECDSA key",
                entry.key_id,
                entry.key.public.keytype()
            )));
        }
        let days = if req.validity_days == 0 {
            3650
        } else {
            req.validity_days
        };
        let mut serial = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let tbs = notary_tuf::rootcert::root_cert_tbs(
            gun.as_str(),
            entry.key.public.public_bytes(),
            serial,
            now,
            days,
        )
        .map_err(|e| invalid(e.to_string()))?;
        let signature = self
            .signing
            .on_device(&entry, tbs.clone(), edge::pin(req.pin), progress)
            .await?;
        let pem = notary_tuf::rootcert::assemble_root_cert(&tbs, &signature)
            .map_err(|e| refusal(Reason::DeviceError, e.to_string()))?;
        notary_tuf::rootcert::check_root_cert(&pem, gun.as_str(), now).map_err(|e| {
            refusal(
                Reason::DeviceError,
                format!("issued certificate fails notary's checks: {e}"),
            )
        })?;
        Ok((entry, pem))
    }
}
