//! S3 access through `object_store` (no hand-written signing).
//!
//! Configuration comes from the standard AWS environment variables via
//! `AmazonS3Builder::from_env`: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
//! `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT`),
//! `AWS_ALLOW_HTTP`, … Path-style requests are used unless
//! `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`, which suits MinIO, Ceph and R2.
//! A plain `http://` endpoint is allowed when the user names one explicitly
//! in `AWS_ENDPOINT_URL*`/`AWS_ENDPOINT` (e.g. a MinIO on loopback).

use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use super::net::NetOptions;

/// Which retries object_store itself should make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retries {
    /// None: the caller's loop retries whole downloads (fetch).
    Caller,
    /// `net.retries` per request with `net.backoff` (push: multipart parts).
    Store,
}

/// A client for `bucket` configured from the environment.
pub(crate) fn store(bucket: &str, net: &NetOptions, retries: Retries) -> Result<AmazonS3, String> {
    super::net::install_crypto_provider();
    let explicit_http = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .any(|v| v.starts_with("http://"));
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: net.backoff,
            max_backoff: Duration::from_secs(30),
            base: 2.0,
        },
        max_retries: match retries {
            Retries::Caller => 0,
            Retries::Store => net.retries as usize,
        },
        retry_timeout: Duration::from_secs(300),
    };
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry)
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(net.timeout)
                .with_read_timeout(net.timeout)
                .with_timeout_disabled()
                .with_allow_http(explicit_http || env_true("AWS_ALLOW_HTTP")),
        );
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        builder = builder.with_region("us-east-1");
    }
    builder
        .build()
        .map_err(|e| format!("S3 configuration: {}", super::net::chain(&e)))
}

fn env_true(key: &str) -> bool {
    std::env::var(key).is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The object_store path of an S3 key, refusing keys that do not survive
/// the round trip unchanged (empty segments, `.`/`..`).
pub(crate) fn object_path(key: &str) -> Result<object_store::path::Path, String> {
    let path = object_store::path::Path::parse(key).map_err(|e| format!("S3 key {key:?}: {e}"))?;
    if path.as_ref() != key {
        return Err(format!("S3 key {key:?} is not in canonical form"));
    }
    Ok(path)
}
