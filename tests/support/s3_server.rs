//! A real S3-speaking server on 127.0.0.1 for push and fetch tests:
//! `s3s-fs` run in-process (an S3 implementation from crates.io, with SigV4
//! authentication, storing each bucket as a directory and each object as a
//! plain file under it; its own bookkeeping, multipart parts included, are
//! dot files in the root, outside every bucket).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::bin::bin;

pub const KEY_ID: &str = "AKIDREPROPACKTEST";
pub const SECRET: &str = "repropack-test-secret-key";

/// An s3s-fs server on 127.0.0.1 serving `root` (each bucket is a
/// directory), on its own tokio runtime thread. Stops with the test process.
pub struct S3 {
    root: tempfile::TempDir,
    endpoint: String,
}

impl S3 {
    pub fn start(buckets: &[&str]) -> S3 {
        let root = tempfile::tempdir().unwrap();
        for b in buckets {
            fs::create_dir(root.path().join(b)).unwrap();
        }
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", std_listener.local_addr().unwrap());
        let fs_root = root.path().to_path_buf();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(std_listener, fs_root));
        });
        S3 { root, endpoint }
    }

    /// Where s3s-fs keeps the object `bucket/key` on disk.
    pub fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.path().join(bucket).join(key)
    }

    /// The directory holding `bucket`'s objects.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.path().join(bucket)
    }

    /// The server's root: the buckets and its bookkeeping files.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A `repropack` command with only this server's AWS settings.
    pub fn cmd(&self, secret: &str) -> Command {
        let mut c = Command::new(bin());
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .stdin(Stdio::null());
        c
    }
}

async fn serve(listener: std::net::TcpListener, root: PathBuf) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;

    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single(KEY_ID, SECRET));
    let service = b.build();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let service = service.clone();
        tokio::spawn(async move {
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}
