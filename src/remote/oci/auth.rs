//! Registry credentials and the `WWW-Authenticate` challenge.
//!
//! Credentials are looked up the way podman and docker do, first match
//! wins:
//!
//! 1. `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`
//!    (podman, containers-auth.json(5));
//! 2. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`
//!    (docker, “docker login”): `credHelpers[HOST]`, then `auths[HOST]`,
//!    then `credsStore`. A helper is run as `docker-credential-NAME get`
//!    with the registry on stdin and answers `{"Username":…,"Secret":…}`.
//!
//! `auths` keys are matched on their host part, so `https://HOST/v1/` and
//! `HOST` both name `HOST`. No file and no entry means anonymous access.
//!
//! Secrets are held in [`Credentials`], whose `Debug` hides them, and
//! never appear in an error message.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

/// Most bytes read from a credentials file or a helper's answer.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A user name and its password or token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// Why credentials could not be looked up (the message never holds a
/// secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A credentials file exists but cannot be read or parsed.
    #[error("credentials file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong, without its content.
        reason: String,
    },
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper}: {reason}")]
    Helper {
        /// The helper's name (the part after `docker-credential-`).
        helper: String,
        /// What went wrong.
        reason: String,
    },
}

/// The shape shared by docker's config.json and podman's auth.json.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The credentials for `registry` (`HOST[:PORT]`), or `None` for
/// anonymous access.
pub fn lookup(registry: &str) -> Result<Option<Credentials>, CredentialError> {
    for file in candidate_files() {
        let Some(parsed) = read_auth_file(&file)? else {
            continue;
        };
        if let Some(c) = from_file(&parsed, registry, &file)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The credential files in lookup order (podman's, then docker's).
fn candidate_files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        files.push(f);
    } else if let Some(run) = env("XDG_RUNTIME_DIR") {
        files.push(run.join("containers").join("auth.json"));
    }
    if let Some(d) = env("DOCKER_CONFIG") {
        files.push(d.join("config.json"));
    } else if let Some(home) = env("HOME") {
        files.push(home.join(".docker").join("config.json"));
    }
    files
}

fn read_auth_file(path: &Path) -> Result<Option<AuthFile>, CredentialError> {
    let bad = |reason: String| CredentialError::File {
        path: path.display().to_string(),
        reason,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(bad(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    // serde_json's messages name a line and column, never the content.
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| bad(format!("not a credentials file: {e}")))
}

/// The host part of an `auths` key: `https://HOST/v1/` → `HOST`.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn from_file(
    file: &AuthFile,
    registry: &str,
    path: &Path,
) -> Result<Option<Credentials>, CredentialError> {
    if let Some(helper) = file.cred_helpers.get(registry) {
        return run_helper(helper, registry);
    }
    if let Some((_, entry)) = file.auths.iter().find(|(k, _)| key_host(k) == registry)
        && let Some(c) = from_entry(entry, path, registry)?
    {
        return Ok(Some(c));
    }
    match &file.creds_store {
        Some(store) if !store.is_empty() => run_helper(store, registry),
        _ => Ok(None),
    }
}

fn from_entry(
    entry: &AuthEntry,
    path: &Path,
    registry: &str,
) -> Result<Option<Credentials>, CredentialError> {
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: u.clone(),
            secret: p.clone(),
        }));
    }
    let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let bad = || CredentialError::File {
        path: path.display().to_string(),
        reason: format!("the `auth` of {registry} is not base64 of USER:PASSWORD"),
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (u, p) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some(Credentials {
        username: u.to_string(),
        secret: p.to_string(),
    }))
}

/// Runs `docker-credential-NAME get`; a helper that knows nothing of the
/// registry (non-zero exit saying "credentials not found") means none.
fn run_helper(name: &str, registry: &str) -> Result<Option<Credentials>, CredentialError> {
    let fail = |reason: String| CredentialError::Helper {
        helper: name.to_string(),
        reason,
    };
    if name.is_empty() || name.contains('/') {
        return Err(fail("not a helper name".into()));
    }
    let mut child = Command::new(format!("docker-credential-{name}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its exit status.
        let _ = stdin.write_all(registry.as_bytes());
    }
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_CONFIG_BYTES)
            .read_to_end(&mut out)
            .map_err(|e| fail(e.to_string()))?;
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        if String::from_utf8_lossy(&out).contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("exited with {status}")));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out)
        .map_err(|_| fail("answer is not {\"Username\":…,\"Secret\":…}".into()))?;
    Ok(Some(Credentials {
        username: answer.username,
        secret: answer.secret,
    }))
}

/// An authentication scheme a registry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`: send the credentials with every request.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`: get a token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to pass on, if any.
        service: Option<String>,
        /// The scope the registry named, if any.
        scope: Option<String>,
    },
}

/// The challenges of a `WWW-Authenticate` header value that we can
/// answer (Basic, and Bearer with a realm), in the order given. Parsing
/// is RFC 7235's grammar, done by the `http-auth` crate.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, String> {
    let parsed = http_auth::parse_challenges(header).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for c in parsed {
        let param = |name: &str| {
            c.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        if c.scheme.eq_ignore_ascii_case("basic") {
            out.push(Challenge::Basic);
        } else if c.scheme.eq_ignore_ascii_case("bearer")
            && let Some(realm) = param("realm")
        {
            out.push(Challenge::Bearer {
                realm,
                service: param("service"),
                scope: param("scope"),
            });
        }
    }
    Ok(out)
}

/// The answer of a token endpoint (distribution “Token Authentication
/// Specification”: `token`, or the OAuth2 name `access_token`).
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// The bearer token in a token endpoint's JSON answer.
pub fn parse_token(bytes: &[u8]) -> Result<String, String> {
    let a: TokenAnswer = serde_json::from_slice(bytes)
        .map_err(|e| format!("token answer is not JSON with a token: {e}"))?;
    a.token
        .or(a.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "token answer holds no token".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull".into()),
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#).unwrap(),
            vec![Challenge::Basic]
        );
        assert!(parse_challenges("Bearer").unwrap().is_empty());
    }

    #[test]
    fn auth_entries_decode_and_match_on_host() {
        let file: AuthFile =
            serde_json::from_str(r#"{"auths":{"https://reg.example:5000/v1/":{"auth":"dTpw"}}}"#)
                .unwrap();
        let c = from_file(&file, "reg.example:5000", Path::new("x"))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("u", "p"));
        assert!(!format!("{c:?}").contains("\"p\""));
        assert_eq!(from_file(&file, "other", Path::new("x")).unwrap(), None);
    }

    #[test]
    fn token_answers_accept_both_names() {
        assert_eq!(parse_token(br#"{"token":"t"}"#).unwrap(), "t");
        assert_eq!(parse_token(br#"{"access_token":"a"}"#).unwrap(), "a");
        assert!(parse_token(br#"{}"#).is_err());
    }
}
