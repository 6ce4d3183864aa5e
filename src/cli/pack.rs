//! `repropack pack`.

use std::sync::Arc;

use repropack::progress::Counters;

use super::Failure;
use super::flags::PackFlags;

pub fn run(args: PackFlags) -> Result<(), Failure> {
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
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.reference);
    }
    Ok(())
}
