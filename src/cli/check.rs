//! `repropack check`: build, rebuild under perturbation, compare, and leave
//! a marker (`OUT.verified` / `OUT.unverified`) for `repropack gate`.

use clap::Args;
use repropack::Check;
use repropack::verify::check::CheckError;

use super::Failure;
use super::flags::PackFlags;
use crate::cli::exit;

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pack: PackFlags,
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let args = args.pack;
    if args.from_tar.is_some() {
        return Err(Failure::new(exit::USAGE, CheckError::FromTar));
    }
    let outcome = Check::new(args.job()?).run().map_err(|e| match e {
        CheckError::Pack(p) => p.into(),
        e @ CheckError::FromTar => Failure::new(exit::USAGE, e),
        e @ (CheckError::Copy(_) | CheckError::Hook(_)) => Failure::new(exit::INPUT, e),
        e @ (CheckError::TempDir(_) | CheckError::Marker(_)) => Failure::new(exit::OUTPUT, e),
    })?;
    super::warn(&outcome.first.warnings);
    println!("{}", outcome.first.reference);
    let marker = outcome.marker_path.display();
    if outcome.verified {
        eprintln!("repropack: verified: rebuilt identically under perturbation; wrote {marker}");
        Ok(())
    } else {
        for d in &outcome.marker.differences {
            eprintln!("repropack: {d}");
        }
        Err(Failure::new(
            exit::DIFFERENT,
            format!(
                "{} is UNVERIFIED: a second build under perturbation differs; wrote {marker} (the artifact itself is kept and usable)",
                args.output.display(),
            ),
        ))
    }
}
