//! `repropack keygen` and `repropack sign`: minisign keys and signatures,
//! and SSH signatures with an OpenSSH key.

use std::path::PathBuf;

use clap::{ArgGroup, Args};
use repropack::verify::signature::minisign::{keygen, sign_file};
use repropack::verify::signature::ssh::SshSigningKey;

use super::Failure;
use crate::cli::exit;

#[derive(Args)]
pub struct KeygenArgs {
    /// Secret key file to create (mode 0600; never replaced).
    #[arg(short = 's', long = "secret", value_name = "SECRET")]
    secret: PathBuf,
    /// Public key file to create (never replaced).
    #[arg(short = 'p', long = "public", value_name = "PUBLIC")]
    public: PathBuf,
    /// Encrypt the secret key (as minisign does) with the password in this
    /// environment variable. Default: unencrypted, for unattended CI use.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

#[derive(Args)]
#[command(group(ArgGroup::new("key").args(["secret", "ssh_key"]).required(true)))]
pub struct SignArgs {
    /// Files to sign; each gets `FILE.minisig` (or, with --ssh-key,
    /// `FILE.sig`) next to it.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The minisign secret key.
    #[arg(short = 's', long = "secret", value_name = "SECRET")]
    secret: Option<PathBuf>,
    /// Sign with this OpenSSH private key instead (unencrypted ed25519):
    /// `FILE.sig` in the format of `ssh-keygen -Y sign -n repropack`.
    #[arg(long, value_name = "KEY")]
    ssh_key: Option<PathBuf>,
    /// The secret key's password, from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "ssh_key")]
    password_env: Option<String>,
}

pub fn password(var: &Option<String>) -> Result<Option<String>, Failure> {
    match var {
        None => Ok(None),
        Some(v) => std::env::var(v)
            .map(Some)
            .map_err(|_| Failure::new(exit::USAGE, format!("--password-env: {v} is not set"))),
    }
}

pub fn keygen_run(args: KeygenArgs) -> Result<(), Failure> {
    let id = keygen(&args.secret, &args.public, password(&args.password_env)?)
        .map_err(super::signature_failure)?;
    println!("{id}");
    Ok(())
}

pub fn sign_run(args: SignArgs) -> Result<(), Failure> {
    let ssh = match &args.ssh_key {
        Some(k) => Some(SshSigningKey::load(k).map_err(super::signature_failure)?),
        None => None,
    };
    let pw = password(&args.password_env)?;
    for f in &args.files {
        let sig = match (&ssh, &args.secret) {
            (Some(key), _) => key.sign(f),
            (None, Some(secret)) => sign_file(f, secret, pw.clone()),
            (None, None) => {
                return Err(Failure::new(exit::USAGE, "give --secret or --ssh-key"));
            }
        }
        .map_err(super::signature_failure)?;
        println!("{}", sig.display());
    }
    Ok(())
}
