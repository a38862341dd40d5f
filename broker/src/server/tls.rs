//! The broker's TLS identity: server configurations for the listeners (one per client-auth
//! mode), the client configuration brokers use to reach each other, reloading both when the
//! PEM files change (checked every `tls.reload_interval` and on SIGHUP), and the principal a
//! client certificate stands for.

use crate::api::Principal;
use millrace_config::{ClientAuth, TlsSettings};
pub use millrace_protocol::tls::certificate_common_name;
use millrace_protocol::tls::{
    certificate_subject, client_config, load_certs, load_key, load_roots, server_config, ClientCertificates,
    ClientTlsFiles, TlsError,
};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;
use tokio::sync::watch;

/// What was loaded, and from files as they were then.
struct Loaded {
    stamps: Vec<Option<(SystemTime, u64)>>,
    none: Arc<ServerConfig>,
    /// With a trusted CA only.
    requested: Option<Arc<ServerConfig>>,
    required: Option<Arc<ServerConfig>>,
    client: Arc<ClientConfig>,
    leaf: CertificateDer<'static>,
}

/// The broker's certificate, key and trusted CA, reloadable.
pub struct TlsIdentity {
    settings: TlsSettings,
    /// Whether, as a client, it checks that a peer's certificate names the host connected to.
    verify_hostname: bool,
    loaded: RwLock<Arc<Loaded>>,
}

impl TlsIdentity {
    /// Loads the files; `None` when no certificate is configured.
    pub fn load(settings: &TlsSettings) -> Result<Option<Arc<TlsIdentity>>, TlsError> {
        Self::load_with(settings, true)
    }

    /// [`TlsIdentity::load`]; without `verify_hostname` a peer's certificate only has to chain
    /// to the CA (the controller link checks the node id it names instead of a host name).
    pub fn load_with(settings: &TlsSettings, verify_hostname: bool) -> Result<Option<Arc<TlsIdentity>>, TlsError> {
        if settings.certificate_file.is_none() {
            return Ok(None);
        }
        let loaded = load(settings, verify_hostname)?;
        let identity =
            TlsIdentity { settings: settings.clone(), verify_hostname, loaded: RwLock::new(Arc::new(loaded)) };
        Ok(Some(Arc::new(identity)))
    }

    /// This identity's own certificate (the leaf).
    pub fn leaf_certificate(&self) -> CertificateDer<'static> {
        self.current().leaf.clone()
    }

    fn current(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The server configuration for a listener with `auth`.
    pub fn server_config(&self, auth: ClientAuth) -> Arc<ServerConfig> {
        let loaded = self.current();
        match auth {
            ClientAuth::None => loaded.none.clone(),
            ClientAuth::Requested => loaded.requested.clone().unwrap_or_else(|| loaded.none.clone()),
            // Validation requires a CA for this mode; without one nobody could connect anyway.
            ClientAuth::Required => loaded.required.clone().unwrap_or_else(|| loaded.none.clone()),
        }
    }

    /// How this broker connects to other brokers' TLS listeners: trusting `ca_file` and
    /// presenting its own certificate.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.current().client.clone()
    }

    /// Loads the files again if any changed; returns whether it did. A broken renewal keeps the
    /// old identity and is reported.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        if stamps(&self.settings) == self.current().stamps {
            return Ok(false);
        }
        let loaded = load(&self.settings, self.verify_hostname)?;
        match self.loaded.write() {
            Ok(mut guard) => *guard = Arc::new(loaded),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded),
        }
        Ok(true)
    }

    /// Reloads on SIGHUP and every `reload_interval` until shutdown.
    pub async fn watch(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(self.settings.reload_interval.as_duration());
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let hup = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = interval.tick() => {}
                _ = hup => tracing::info!("SIGHUP: checking the TLS certificate files"),
                _ = shutdown.changed() => return,
            }
            match self.reload_if_changed() {
                Ok(true) => tracing::info!("TLS certificate reloaded; new connections use it"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate files changed but cannot be loaded; keeping the old ones")
                }
            }
        }
    }
}

fn files(settings: &TlsSettings) -> [Option<&PathBuf>; 3] {
    [settings.certificate_file.as_ref(), settings.key_file.as_ref(), settings.ca_file.as_ref()]
}

fn stamps(settings: &TlsSettings) -> Vec<Option<(SystemTime, u64)>> {
    files(settings)
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(path?).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

fn load(settings: &TlsSettings, verify_hostname: bool) -> Result<Loaded, TlsError> {
    let stamps = stamps(settings);
    let (Some(cert_file), Some(key_file)) = (&settings.certificate_file, &settings.key_file) else {
        return Err(TlsError::Config("tls.certificate_file and tls.key_file are both required".into()));
    };
    let chain = load_certs(cert_file)?;
    let key = load_key(key_file)?;
    let server = |roots: Option<Arc<RootCertStore>>, clients| {
        server_config(chain.clone(), &key, roots, clients)
            .map_err(|e| TlsError::Config(format!("{}: {e}", cert_file.display())))
    };
    let none = server(None, ClientCertificates::Ignored)?;
    let (requested, required) = match &settings.ca_file {
        Some(ca) => {
            let roots = Arc::new(load_roots(ca)?);
            (
                Some(server(Some(roots.clone()), ClientCertificates::Requested)?),
                Some(server(Some(roots), ClientCertificates::Required)?),
            )
        }
        None => (None, None),
    };
    // Other brokers are trusted through `ca_file`, or the system's roots without one.
    let client = client_config(&ClientTlsFiles {
        ca_file: settings.ca_file.clone(),
        identity: Some((cert_file.clone(), key_file.clone())),
        verify_hostname,
    })?;
    let leaf =
        chain.first().cloned().ok_or_else(|| TlsError::Config(format!("{}: no certificate", cert_file.display())))?;
    Ok(Loaded { stamps, none, requested, required, client, leaf })
}

/// The principal a verified client certificate stands for: `User:` and its subject's
/// distinguished name in RFC 2253 form (`CN=alice,OU=ops,O=example`), as Kafka's default
/// `ssl.principal.mapping.rules` give it.
pub fn certificate_principal(certificate: &[u8]) -> Option<Principal> {
    certificate_subject(certificate).map(|subject| Principal::user(&subject))
}
