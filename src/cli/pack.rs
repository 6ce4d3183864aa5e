//! `repropack pack`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use repropack::progress::Counters;
use repropack::verify::signature::minisign::SigningKey;
use repropack::verify::signature::ssh::SshSigningKey;

use super::Failure;
use super::flags::PackFlags;
use super::sign::password;

#[derive(Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub flags: PackFlags,
    /// Sign the artifact (and the manifest and provenance, with --manifest
    /// or --manifest-dir and --provenance) with this minisign secret key:
    /// `OUT.minisig` (and `MANIFEST.minisig`, `PROVENANCE.minisig`), each
    /// written atomically after the file it signs. The key is read before
    /// anything is packed.
    #[arg(long, value_name = "SECRET")]
    pub sign: Option<PathBuf>,
    /// Sign the artifact (and the manifest, with --manifest) with this
    /// OpenSSH private key (unencrypted ed25519) instead: `OUT.sig` (and
    /// `MANIFEST.sig`) as `ssh-keygen -Y sign -n repropack` writes them,
    /// each written atomically after the file it signs. The key is read
    /// before anything is packed.
    #[arg(long, value_name = "KEY", conflicts_with = "sign")]
    pub sign_ssh: Option<PathBuf>,
    /// The --sign key's password, from this environment variable.
    #[arg(long, value_name = "VAR", requires = "sign")]
    pub password_env: Option<String>,
}

pub fn run(args: PackArgs) -> Result<(), Failure> {
    let PackArgs {
        flags: args,
        sign,
        sign_ssh,
        password_env,
    } = args;
    let key = match (&sign, &sign_ssh) {
        (Some(secret), _) => Some(Key::Minisign(
            SigningKey::load(secret, password(&password_env)?).map_err(super::signature_failure)?,
        )),
        (None, Some(ssh)) => Some(Key::Ssh(
            SshSigningKey::load(ssh).map_err(super::signature_failure)?,
        )),
        (None, None) => None,
    };
    let progress = Arc::new(Counters::default());
    let job = args
        .job()?
        .record(args.json)
        .progress(Arc::clone(&progress));
    let display = super::progress::start("pack", &progress, args.quiet);
    let result = job.run();
    if let Some(d) = display {
        d.finish();
    }
    let report = result?;
    super::warn(&report.warnings);
    let mut signatures = Vec::new();
    if let Some(key) = &key {
        let signed = std::iter::once(args.output())
            .chain(report.manifest_path.as_deref())
            .chain(report.provenance_path.as_deref());
        for file in signed {
            let sig = match key {
                Key::Minisign(k) => k.sign(file),
                Key::Ssh(k) => k.sign(file),
            }
            .map_err(super::signature_failure)?;
            signatures.push(sig.to_string_lossy().into_owned());
        }
    }
    if args.json {
        let mut value = report.to_json();
        if key.is_some()
            && let Some(map) = value.as_object_mut()
        {
            map.insert("signatures".into(), signatures.into());
        }
        println!("{value}");
    } else {
        println!("{}", report.reference);
    }
    if args.manifest_dir.is_some()
        && let Some(path) = &report.manifest_path
    {
        eprintln!("repropack: manifest {}", path.display());
    }
    Ok(())
}

/// The key of --sign or --sign-ssh.
enum Key {
    Minisign(SigningKey),
    Ssh(SshSigningKey),
}
