//! `repropack gate`: the use-time reproducibility check.

use std::path::PathBuf;

use crate::cli::exit;
use clap::Args;
use repropack::verify::marker::{GateStatus, MarkerError, gate_status};

use super::Failure;
use super::flags::TrustFlags;

#[derive(Args)]
#[command(mut_arg("trusted_key", |a| a.help(
    "Count ARTIFACT.verified only when it is signed \
     (ARTIFACT.verified.minisig) by one of these minisign public keys \
     (repeatable); an unsigned marker, one signed by another key or one \
     changed after signing leaves the artifact unverified. Default: the \
     `:`-separated key files in REPROPACK_TRUSTED_KEYS, if set"
)))]
pub struct GateArgs {
    /// The artifact; its markers are ARTIFACT.verified / ARTIFACT.unverified.
    artifact: PathBuf,
    /// Fail (exit 8) unless the artifact is verified. Also set by
    /// REPROPACK_REQUIRE_VERIFIED=1 (or true/yes/on).
    #[arg(long, env = "REPROPACK_REQUIRE_VERIFIED", value_parser = clap::builder::FalseyValueParser::new(), default_value = "false", num_args = 0, default_missing_value = "true")]
    require_verified: bool,
    #[command(flatten)]
    trust: TrustFlags,
    /// Print one JSON object (artifact, status, required, reason,
    /// differences; signed_by with trusted keys) on stdout; the exit code
    /// and stderr are the same.
    #[arg(long)]
    json: bool,
}

pub fn run(args: GateArgs) -> Result<(), Failure> {
    let status = gate_status(&args.artifact, &args.trust.trusted_key).map_err(|e| match e {
        MarkerError::Signature(e) => super::signature_failure(e),
        e => Failure::new(exit::INPUT, e),
    })?;
    if args.json {
        let (name, reason, differences) = match &status {
            GateStatus::Verified(_) => ("verified", None, &[][..]),
            GateStatus::Unverified(diffs) => ("unverified", None, &diffs[..]),
            GateStatus::Untrusted(why) => ("unverified", Some(why.to_string()), &[][..]),
            GateStatus::NoMarker(why) => ("no-marker", Some(why.to_string()), &[][..]),
        };
        let mut value = serde_json::json!({
            "artifact": args.artifact.display().to_string(),
            "status": name,
            "required": args.require_verified,
            "reason": reason,
            "differences": differences,
        });
        // Only with trusted keys, so the object without them stays as it was.
        if !args.trust.trusted_key.is_empty()
            && let Some(map) = value.as_object_mut()
        {
            let signer = match &status {
                GateStatus::Verified(key_id) => key_id.clone(),
                _ => None,
            };
            map.insert("signed_by".into(), signer.into());
        }
        println!("{value}");
    }
    let problem = match status {
        GateStatus::Verified(_) => return Ok(()),
        GateStatus::Unverified(diffs) => {
            let mut msg = format!(
                "{} is UNVERIFIED: a rebuild of its sources under perturbation gave other bytes",
                args.artifact.display()
            );
            for d in diffs.iter().take(20) {
                msg.push_str(&format!("\n  {d}"));
            }
            msg
        }
        GateStatus::Untrusted(why) => format!(
            "{} is not verified: its marker's signature is not accepted: {why}",
            args.artifact.display()
        ),
        GateStatus::NoMarker(why) => format!("{} is not verified: {why}", args.artifact.display()),
    };
    if args.require_verified {
        Err(Failure::new(exit::UNVERIFIED, problem))
    } else {
        eprintln!("repropack: warning: {problem}");
        Ok(())
    }
}
