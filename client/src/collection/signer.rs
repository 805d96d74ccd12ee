//! Signing metadata with keys held by notary-keyd. The daemon is asked by
//! the key's bare ID (a root key may carry another GUN's certificate now);
//! the signature is listed under the ID the metadata uses and is checked
//! against that key before it is kept.

use crate::commands::with_pin_retry;
use crate::connect::Client;
use crate::errors::KeydError;
use crate::progress;
use anyhow::{anyhow, bail, Result};
use keyd_proto::convert::role_fields;
use keyd_proto::keyd as pb;
use keyd_proto::Reason;
use notary_tuf::metadata::{canonical_key_id, Role};
use notary_tuf::{verify, PublicKey, Signature, SignedEnvelope};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) struct KeydSigner {
    client: Client,
    gun: String,
}

impl KeydSigner {
    pub(crate) fn new(client: Client, gun: &str) -> KeydSigner {
        KeydSigner {
            client,
            gun: gun.to_string(),
        }
    }

    pub(crate) fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The notary-keyd key behind a metadata key, if the caller can see one.
    pub(crate) async fn find(&mut self, listed: &PublicKey) -> Result<Option<pb::Key>> {
        let bare = if listed.keytype().is_x509() {
            listed.bare_key()?.key_id()
        } else {
            listed.key_id()
        };
        match self.client.get_key(pb::GetKeyRequest { key: bare }).await {
            Ok(key) => Ok(Some(key.into_inner())),
            // A key notary-keyd does not have is someone else's (or the
            // server's); a key it refuses to show is a policy matter the
            // person must hear about.
            Err(status)
                if status.code() == tonic::Code::NotFound
                    || Reason::of(&status) == Some(Reason::KeyNotFound) =>
            {
                Ok(None)
            }
            Err(status) => Err(KeydError::from(status).into()),
        }
    }

    /// Signs `envelope` as `role` with every key of the role that
    /// notary-keyd holds and will use, each key once however many IDs the
    /// role lists it under (verifiers count it once). A key notary-keyd
    /// refuses (bound elsewhere, locked, on an unavailable backend, not
    /// allowed) is skipped with a warning; only fewer than `threshold`
    /// signing keys is an error, and it names the role and every refusal.
    pub(crate) async fn sign_role(
        &mut self,
        envelope: &mut SignedEnvelope,
        role: &str,
        keys: &BTreeMap<String, PublicKey>,
        keyids: &[String],
        threshold: u32,
    ) -> Result<()> {
        let mut signed_keys = BTreeSet::new();
        let mut refused = Vec::new();
        for id in keyids {
            let Some(listed) = keys.get(id) else { continue };
            if signed_keys.contains(&canonical_key_id(listed)?) {
                continue;
            }
            let Some(key) = self.find(listed).await? else {
                continue;
            };
            match self.sign_with(envelope, role, id, listed, &key).await {
                Ok(()) => {
                    signed_keys.insert(canonical_key_id(listed)?);
                }
                Err(e) if is_refusal(&e) => {
                    eprintln!("warning: skipping key {} for {role}: {e:#}", key.key_id);
                    refused.push(format!("key {}: {e:#}", key.key_id));
                }
                Err(e) => return Err(e),
            }
        }
        let signed = signed_keys.len();
        if signed >= (threshold as usize).max(1) {
            return Ok(());
        }
        let why = if refused.is_empty() {
            String::new()
        } else {
            format!("; refused: {}", refused.join("; "))
        };
        if signed == 0 && refused.is_empty() {
            bail!(
                "none of the {role} keys of {} is in notary-keyd (key IDs: {}); \
                 `notaryctl key list` shows the keys you can use",
                self.gun,
                keyids.join(", ")
            );
        }
        bail!(
            "{role} of {} needs {threshold} signature(s) by distinct keys, but only {signed} of \
             its keys signed{why}",
            self.gun
        )
    }

    /// One signature by `key`, listed in the metadata as `listed_id`.
    pub(crate) async fn sign_with(
        &mut self,
        envelope: &mut SignedEnvelope,
        role: &str,
        listed_id: &str,
        listed: &PublicKey,
        key: &pb::Key,
    ) -> Result<()> {
        let payload = envelope.signed_bytes.clone();
        let (role_kind, delegation) = role_fields(Some(&Role::parse(role)?));
        let result = with_pin_retry(&key.backend, None, |pin| {
            let request = pb::SignRequest {
                key_id: key.key_id.clone(),
                payload: payload.clone(),
                gun: self.gun.clone(),
                role: role_kind,
                delegation: delegation.clone(),
                pin: pin.map(crate::pin::for_request).unwrap_or_default(),
            };
            let mut client = self.client.clone();
            async move { progress::follow(client.sign(request).await?.into_inner()).await }
        })
        .await?;
        let method = result
            .method()
            .notary()
            .ok_or_else(|| anyhow!("notary-keyd returned a {role} signature without a method"))?;
        verify(listed, method, &payload, &result.signature).map_err(|e| {
            anyhow!(
                "notary-keyd returned a {role} signature that does not verify; not using it ({e})"
            )
        })?;
        envelope.signatures.push(Signature {
            keyid: listed_id.to_string(),
            method,
            sig: result.signature,
        });
        Ok(())
    }
}

/// A request notary-keyd answered with a refusal, as opposed to a lost
/// connection or a signature that did not verify (those stop the publish).
fn is_refusal(e: &anyhow::Error) -> bool {
    e.downcast_ref::<KeydError>()
        .is_some_and(|k| !k.connection_lost())
}
