//! What every network transport shares: timeouts and retries, the TLS
//! provider, the HTTP client, and how an error chain is shown.

use std::io;

use std::time::Duration;

/// Timeouts and retries of network sources.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// Connect timeout, and the longest wait for any single read.
    pub timeout: Duration,
    /// Retries per source after the first attempt, for transient failures only.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further retry.
    pub backoff: Duration,
    /// Most HTTP redirects followed per request.
    pub max_redirects: usize,
}

impl Default for NetOptions {
    fn default() -> NetOptions {
        NetOptions {
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_redirects: 10,
        }
    }
}

impl NetOptions {
    /// Wait before retry number `retry` (1-based): backoff · 2^(retry-1),
    /// capped at 30 s.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(16);
        self.backoff
            .saturating_mul(factor)
            .min(Duration::from_secs(30))
    }
}

/// Installs rustls' ring provider as the process default (once; later
/// calls are no-ops).
pub(crate) fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An error and its sources, joined by `: `.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

pub(crate) fn http_client(net: &NetOptions) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(net.max_redirects))
        .connect_timeout(net.timeout)
        .read_timeout(net.timeout)
        .user_agent(concat!("repropack/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build HTTP client: {}", chain(&e)))
}

/// True if a TLS error (e.g. an untrusted certificate) is in the chain:
/// retrying cannot fix it.
pub(crate) fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        // io::Error::source skips its payload, and rustls errors arrive
        // wrapped in (nested) io::Errors: unwrap those payloads too.
        let mut payload = c;
        loop {
            if payload.is::<rustls::Error>() {
                return true;
            }
            match payload
                .downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => payload = inner,
                None => break,
            }
        }
        cur = c.source();
    }
    false
}
