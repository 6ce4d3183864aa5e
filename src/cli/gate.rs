//! `repropack gate`: the use-time reproducibility check.

use std::path::PathBuf;

use crate::cli::exit;
use clap::Args;
use repropack::verify::marker::{GateStatus, gate_status};

use super::Failure;

#[derive(Args)]
pub struct GateArgs {
    /// The artifact; its markers are ARTIFACT.verified / ARTIFACT.unverified.
    artifact: PathBuf,
    /// Fail (exit 8) unless the artifact is verified. Also set by
    /// REPROPACK_REQUIRE_VERIFIED=1 (or true/yes/on).
    #[arg(long, env = "REPROPACK_REQUIRE_VERIFIED", value_parser = clap::builder::FalseyValueParser::new(), default_value = "false", num_args = 0, default_missing_value = "true")]
    require_verified: bool,
    /// Print one JSON object (artifact, status, required, reason,
    /// differences) on stdout; the exit code and stderr are the same.
    #[arg(long)]
    json: bool,
}

pub fn run(args: GateArgs) -> Result<(), Failure> {
    let status = gate_status(&args.artifact).map_err(|e| Failure::new(exit::INPUT, e))?;
    if args.json {
        let (name, reason, differences) = match &status {
            GateStatus::Verified => ("verified", None, &[][..]),
            GateStatus::Unverified(diffs) => ("unverified", None, &diffs[..]),
            GateStatus::NoMarker(why) => ("no-marker", Some(why.to_string()), &[][..]),
        };
        let value = serde_json::json!({
            "artifact": args.artifact.display().to_string(),
            "status": name,
            "required": args.require_verified,
            "reason": reason,
            "differences": differences,
        });
        println!("{value}");
    }
    let problem = match status {
        GateStatus::Verified => return Ok(()),
        GateStatus::Unverified(diffs) => {
            let mut msg = format!(
                "{} is UNVERIFIED: two builds of its sources gave different bytes",
                args.artifact.display()
            );
            for d in diffs.iter().take(20) {
                msg.push_str(&format!("\n  {d}"));
            }
            msg
        }
        GateStatus::NoMarker(why) => format!("{} is not verified: {why}", args.artifact.display()),
    };
    if args.require_verified {
        Err(Failure::new(exit::UNVERIFIED, problem))
    } else {
        eprintln!("repropack: warning: {problem}");
        Ok(())
    }
}
