//! What the fuzz targets in `fuzz/` reach of the daemon (see lib.rs):
//! the config parser and reload as the daemon runs them, and both gRPC
//! APIs built by the start-up code itself (`open_service`,
//! `SignerApi::new`).
//!
//! Only the transport is missing. A Unix-socket caller is this process: its
//! credentials are read from a socket pair exactly as `peer.rs` reads an
//! accepted connection's, and attached to every request as the server
//! attaches them. The signer API identifies its caller from the TLS
//! connect info in each request's extensions, which only a real handshake
//! makes; the fuzz target performs one and attaches it.

use crate::config::Config;
use crate::peer;
use crate::reload::Reloader;
use crate::signer_api::SignerApi;
use crate::start::open_service;
use keyd_proto::keyd::keyd_server::KeydServer;
use std::path::Path;
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Routes;
use tonic::transport::server::Connected;

/// A configuration as `--check-config`, start-up and a reload read it.
#[derive(Debug)]
pub struct ParsedConfig(Config);

impl ParsedConfig {
    /// Parses and validates `text`, read from `path` (named in errors); the
    /// error is the message the daemon prints.
    pub fn parse(path: &Path, text: &str) -> Result<ParsedConfig, String> {
        Config::parse(path, text)
            .map(ParsedConfig)
            .map_err(|e| e.to_string())
    }

    /// The `[[backend]]` names, in file order.
    pub fn backend_names(&self) -> Vec<&str> {
        self.0.backends.iter().map(|b| b.name.as_str()).collect()
    }

    /// Where new keys go when a request names no backend.
    pub fn default_backend(&self) -> &str {
        self.0.default_backend()
    }

    /// The backend the signer API makes keys in, when it is configured.
    pub fn signer_api_backend(&self) -> Option<&str> {
        let api = self.0.signer_api.as_ref()?;
        Some(api.backend.as_deref().unwrap_or(self.default_backend()))
    }

    /// How many `[[policy]]` rules the file has.
    pub fn policy_rules(&self) -> usize {
        self.0.policies.len()
    }
}

/// A reload (SIGHUP) of the file at `path` by a daemon started from
/// `started_with`: the policy rules it applied and the sections it says
/// need a restart.
pub fn reload(path: &Path, started_with: &str) -> Result<(usize, Vec<String>), String> {
    let policy = Arc::new(crate::policy::Policy::new(0, None, Vec::new()));
    let reloaded = Reloader::new(path.to_path_buf(), started_with, policy)
        .reload()
        .map_err(|e| e.to_string())?;
    Ok((reloaded.policy_rules, reloaded.needs_restart))
}

/// Both APIs of a daemon opened from a config, served in-process.
pub struct Daemon {
    keyd: Routes,
    signer_api: Option<Routes>,
}

impl Daemon {
    /// Opens what `run` opens for `config_text`: the state dir, the audit
    /// log, the backends and their keys, the policy (with `daemon_uid` as
    /// the daemon's own user) and, with `[signer_api]`, its key store. No
    /// socket is bound and no TLS material is read.
    pub async fn open(config_text: &str, daemon_uid: u32) -> Result<Daemon, String> {
        let config =
            Config::parse(Path::new("fuzz.toml"), config_text).map_err(|e| e.to_string())?;
        let service = open_service(&config, daemon_uid)
            .await
            .map_err(|e| format!("{e:#}"))?
            .service;
        let max = config.server.max_message_bytes;
        let signer_api = match &config.signer_api {
            Some(api) => {
                let keys = (
                    Arc::clone(&service.registry),
                    service.audit.clone(),
                    config.default_backend(),
                );
                let (reporter, _) = tonic_health::server::health_reporter();
                let api = SignerApi::new(
                    api,
                    &config.server.state_dir,
                    service.signing.clone(),
                    keys,
                    reporter,
                )
                .await
                .map_err(|e| e.to_string())?;
                let (key_management, signer) = api.services(max);
                Some(Routes::new(key_management).add_service(signer))
            }
            None => None,
        };
        let (ours, _theirs) = tokio::net::UnixStream::pair().map_err(|e| e.to_string())?;
        let peer = peer::accept(ours)
            .map_err(|e| e.to_string())?
            .connect_info();
        let keyd = KeydServer::new(service)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let keyd = InterceptedService::new(keyd, move |mut request: tonic::Request<()>| {
            request.extensions_mut().insert(peer.clone());
            Ok(request)
        });
        Ok(Daemon {
            keyd: Routes::new(keyd),
            signer_api,
        })
    }

    /// `notary.keyd.v1.Keyd`, every request from this process's uid, gid
    /// and groups.
    pub fn keyd(&self) -> Routes {
        self.keyd.clone()
    }

    /// `proto.KeyManagement` and `proto.Signer`, when configured; the
    /// caller is the TLS client in each request's extensions.
    pub fn signer_api(&self) -> Option<Routes> {
        self.signer_api.clone()
    }
}
