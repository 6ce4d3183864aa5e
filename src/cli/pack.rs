//! `repropack pack`.

use super::Failure;
use super::flags::PackFlags;

pub fn run(args: PackFlags) -> Result<(), Failure> {
    let report = args.job()?.record(args.json).run()?;
    super::warn(&report.warnings);
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.reference);
    }
    Ok(())
}
