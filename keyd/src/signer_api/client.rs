//! Who is calling the signer API: the TLS client certificate, already
//! chained to `client_ca` by the handshake. Allowed when its CN or one of
//! its DNS/URI SANs is in `allowed_clients`; the first entry of that list
//! it names is the client's name, which owns the keys it creates.
//!
//! A client reaches only its own keys, and those of the clients
//! `[signer_api] shares` lists for it (two notary-servers of one
//! deployment); another client's key looks like no key at all.

use super::store::ApiKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tonic::{Request, Status};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

const COMMON_NAME: &str = "2.5.4.3";

/// An authenticated, allowed caller.
#[derive(Clone, Debug)]
pub(super) struct Client {
    /// The certificate's subject (RFC 4514), recorded in the audit log.
    pub subject: String,
    /// The `allowed_clients` entry it matched: who owns what it creates.
    pub name: String,
}

/// Why a caller was refused; the subject is known when the certificate
/// parsed, so refusals can be audited with it.
pub(super) struct Refusal {
    pub subject: String,
    pub status: Status,
}

/// What a client certificate says about its holder: the subject, and
/// whether one of its names is allowed.
#[derive(Clone)]
struct Verdict {
    subject: String,
    /// The first `allowed_clients` entry the certificate names.
    allowed: Option<String>,
}

/// notary-server presents the same certificate on every call, and parsing it
/// was a tenth of the signer API's CPU per signature (perf), so verdicts are
/// kept per certificate (DER bytes), a few at most.
const VERDICT_CACHE: usize = 32;

#[derive(Clone)]
pub(super) struct AllowedClients {
    names: Arc<Vec<String>>,
    /// Client name -> the other clients whose keys it reaches too.
    shares: Arc<HashMap<String, Vec<String>>>,
    verdicts: Arc<Mutex<HashMap<Vec<u8>, Verdict>>>,
}

impl AllowedClients {
    pub(super) fn new(names: &[String], shares: &HashMap<String, Vec<String>>) -> AllowedClients {
        AllowedClients {
            names: Arc::new(
                names
                    .iter()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
            ),
            shares: Arc::new(shares.clone()),
            verdicts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Whether `client` may use `key`: one it created, or one a client it
    /// shares with created. A key recorded without an owner belongs to the
    /// certificate subject that created it.
    pub(super) fn reaches(&self, client: &Client, key: &ApiKey) -> bool {
        if key.owner.is_empty() {
            return key.created_by == client.subject;
        }
        key.owner == client.name
            || self
                .shares
                .get(&client.name)
                .is_some_and(|others| others.contains(&key.owner))
    }

    pub(super) fn identify<T>(&self, request: &Request<T>) -> Result<Client, Refusal> {
        let refuse = |subject: String, status| Refusal { subject, status };
        let certs = request.peer_certs().ok_or_else(|| {
            refuse(
                String::new(),
                Status::unauthenticated("no client certificate"),
            )
        })?;
        let leaf = certs.first().ok_or_else(|| {
            refuse(
                String::new(),
                Status::unauthenticated("no client certificate"),
            )
        })?;
        let verdict = self.verdict(leaf.as_ref()).map_err(|e| {
            refuse(
                String::new(),
                Status::unauthenticated(format!("client certificate does not parse: {e}")),
            )
        })?;
        if let Some(name) = verdict.allowed {
            Ok(Client {
                subject: verdict.subject,
                name,
            })
        } else {
            let status = Status::permission_denied(format!(
                "client {:?} is not in [signer_api] allowed_clients",
                verdict.subject
            ));
            Err(refuse(verdict.subject, status))
        }
    }

    fn verdict(&self, der: &[u8]) -> Result<Verdict, x509_cert::der::Error> {
        let lock = || self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = lock().get(der) {
            return Ok(known.clone());
        }
        let cert = Certificate::from_der(der)?;
        let verdict = Verdict {
            subject: cert.tbs_certificate.subject.to_string(),
            allowed: {
                let named = names(&cert);
                self.names.iter().find(|n| named.contains(n)).cloned()
            },
        };
        let mut verdicts = lock();
        if verdicts.len() >= VERDICT_CACHE {
            verdicts.clear();
        }
        verdicts.insert(der.to_vec(), verdict.clone());
        Ok(verdict)
    }

    pub(super) fn interceptor(
        &self,
    ) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
        let allowed = self.clone();
        move |request| match allowed.identify(&request) {
            Ok(_) => Ok(request),
            Err(r) => Err(r.status),
        }
    }
}

/// The certificate's CNs and DNS/URI subject alternative names.
fn names(cert: &Certificate) -> Vec<String> {
    let tbs = &cert.tbs_certificate;
    let mut out: Vec<String> = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid.to_string() == COMMON_NAME)
        .filter_map(|atv| std::str::from_utf8(atv.value.value()).ok())
        .map(str::to_string)
        .collect();
    if let Ok(Some((_, SubjectAltName(sans)))) = tbs.get::<SubjectAltName>() {
        for san in sans {
            match san {
                GeneralName::DnsName(n) => out.push(n.to_string()),
                GeneralName::UniformResourceIdentifier(u) => out.push(u.to_string()),
                _ => {}
            }
        }
    }
    out
}
