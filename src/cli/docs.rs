//! `repropack completions` and `repropack man`: shell completions and man
//! pages generated from the same clap definition that parses the flags.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Command};
use clap_complete::Shell;
use repropack::output::AtomicFile;

use super::Failure;
use crate::cli::exit;

#[derive(Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// The command whose page to print (`pack`, `extract`, ...); default:
    /// the overview page `repropack(1)`.
    command: Option<String>,
    /// Write `repropack.1` and one `repropack-COMMAND.1` per command into
    /// DIR (each file atomically) instead of printing one page.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    out_dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs, mut cli: Command) -> Result<(), Failure> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "repropack", &mut out);
    write_stdout(&out)
}

pub fn man(args: ManArgs, cli: Command) -> Result<(), Failure> {
    let cli = with_version(cli);
    if let Some(dir) = &args.out_dir {
        write_page(dir, "repropack", cli.clone())?;
        for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("repropack-{}", sub.get_name());
            write_page(dir, &name, page_of(sub, &name, &cli))?;
        }
        return Ok(());
    }
    let page = match &args.command {
        None => cli,
        Some(c) => {
            let sub = cli.find_subcommand(c).ok_or_else(|| {
                Failure::new(
                    exit::USAGE,
                    format!("no command {c:?} (see repropack --help)"),
                )
            })?;
            page_of(sub, &format!("repropack-{c}"), &cli)
        }
    };
    write_stdout(&render(page)?)
}

/// A subcommand as a page of its own: named `repropack-CMD`, with the
/// top-level version.
fn page_of(sub: &Command, name: &str, top: &Command) -> Command {
    let mut page = sub
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    if let Some(v) = top.get_version() {
        page = page.version(v.to_string());
    }
    page
}

/// Derive puts the version on the top-level command only once it is built.
fn with_version(mut cli: Command) -> Command {
    cli.build();
    cli
}

fn render(page: Command) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| Failure::new(exit::OUTPUT, format!("rendering the man page: {e}")))?;
    Ok(out)
}

fn write_page(dir: &Path, name: &str, page: Command) -> Result<(), Failure> {
    let bytes = render(page)?;
    let path = dir.join(format!("{name}.1"));
    let out = |e: repropack::output::OutputError| Failure::new(exit::OUTPUT, e);
    let mut file = AtomicFile::create(&path).map_err(out)?;
    let written = file.file_mut().write_all(&bytes);
    written.map_err(|e| out(file.error(e)))?;
    file.commit().map_err(out)
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(exit::OUTPUT, format!("stdout: {e}")))
}
