//! `repropack check`: build, rebuild under perturbation, compare, and leave
//! a marker (`OUT.verified` / `OUT.unverified`, signed with `--sign`) for
//! `repropack gate`; with `--against ART`, rebuild once and judge ART, an
//! artifact packed earlier.

use std::path::PathBuf;

use clap::Args;
use repropack::verify::check::CheckError;
use repropack::verify::marker::MarkerError;
use repropack::verify::signature::minisign::SigningKey;
use repropack::{Check, Format};

use super::Failure;
use super::flags::PackFlags;
use super::sign::password;
use crate::cli::exit;

#[derive(Args)]
#[command(mut_arg("output", |a| a.required(false).required_unless_present("against")))]
pub struct CheckArgs {
    #[command(flatten)]
    pack: PackFlags,
    /// Build now, verify later: instead of packing, rebuild the sources
    /// once (perturbed, as check's second build) and compare with ART, an
    /// artifact packed earlier, maybe elsewhere; then write ART.verified or
    /// ART.unverified. Give the options ART was packed with (format, level,
    /// compressor, block size, epoch, owners, modes, excludes, …) and as
    /// --jobs the thread count it used. ART itself is never written.
    #[arg(long, value_name = "ART", conflicts_with_all = ["output", "manifest", "manifest_dir", "provenance"])]
    against: Option<PathBuf>,
    /// Sign the marker with this minisign secret key: MARKER.minisig,
    /// written atomically after the marker. The key is read before anything
    /// is built.
    #[arg(long, value_name = "SECRET")]
    sign: Option<PathBuf>,
    /// The --sign key's password, from this environment variable.
    #[arg(long, value_name = "VAR", requires = "sign")]
    password_env: Option<String>,
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let CheckArgs {
        pack: mut flags,
        against,
        sign,
        password_env,
    } = args;
    if flags.from_tar.is_some() {
        return Err(Failure::new(exit::USAGE, CheckError::FromTar));
    }
    let key = match &sign {
        Some(secret) => Some(
            SigningKey::load(secret, password(&password_env)?).map_err(super::signature_failure)?,
        ),
        None => None,
    };
    if let Some(art) = &against {
        flags.output = Some(art.clone());
        // An artifact fetched into a cache has no telling name: its bytes do.
        if flags.format.is_none() && Format::from_path(art).is_none() {
            let archive = repropack::format::open(art).map_err(|e| {
                Failure::new(
                    exit::INPUT,
                    format!("{e} (the format of --against is unknown: pass --format)"),
                )
            })?;
            flags.format = Some(archive.format().name().to_string());
        }
    }
    let mut check = Check::new(flags.job()?);
    if let Some(art) = &against {
        check = check.against(art);
    }
    if let Some(key) = key {
        check = check.sign(key);
    }
    let outcome = check.run().map_err(|e| match e {
        CheckError::Pack(p) => p.into(),
        e @ CheckError::FromTar => Failure::new(exit::USAGE, e),
        e @ (CheckError::Artifact { .. } | CheckError::Copy(_) | CheckError::Hook(_)) => {
            Failure::new(exit::INPUT, e)
        }
        CheckError::Marker(MarkerError::Signature(e)) => super::signature_failure(e),
        e @ (CheckError::TempDir(_) | CheckError::Marker(_)) => Failure::new(exit::OUTPUT, e),
    })?;
    super::warn(&outcome.warnings);
    println!("{}", outcome.reference);
    let mut wrote = outcome.marker_path.display().to_string();
    if let Some(sig) = &outcome.signature {
        wrote.push_str(&format!(" and {}", sig.display()));
    }
    let artifact = flags.output().display();
    if outcome.verified {
        let how = if against.is_some() {
            format!("the sources rebuild under perturbation to exactly {artifact}")
        } else {
            "rebuilt identically under perturbation".to_string()
        };
        eprintln!("repropack: verified: {how}; wrote {wrote}");
        Ok(())
    } else {
        for d in &outcome.marker.differences {
            eprintln!("repropack: {d}");
        }
        let why = if against.is_some() {
            "a rebuild of its sources under perturbation differs"
        } else {
            "a second build under perturbation differs"
        };
        Err(Failure::new(
            exit::DIFFERENT,
            format!(
                "{artifact} is UNVERIFIED: {why}; wrote {wrote} (the artifact itself is kept and usable)"
            ),
        ))
    }
}
