//! The `repropack` command line: parses arguments, calls the library, prints
//! results and maps errors to the exit codes in [`exit`](crate::cli::exit).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (format 5)");

#[derive(Parser)]
#[command(name = "repropack", version = VERSION, about = "Deterministic SquashFS/tar packer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pack sources into an archive and print its ref `URI#sha256=HEX`.
    Pack(Box<cli::pack::PackArgs>),
    /// Extract an artifact into a new directory, refusing unsafe archives.
    Extract(cli::extract::ExtractArgs),
    /// Print refs for existing files.
    Hash {
        /// Files to hash.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON object per file and line (file, ref, the digest
        /// under its fragment name, size).
        #[arg(long)]
        json: bool,
        /// The digest in the ref: `PATH#sha384=HEX`, `#sha512=`, or
        /// `#sha3_256=` for sha3-256 (the fragment names pip and Python's
        /// hashlib use).
        #[arg(
            long,
            value_name = "ALG",
            default_value = "sha256",
            value_parser = ["sha256", "sha384", "sha512", "sha3-256"]
        )]
        algorithm: String,
    },
    /// Print the tree digest of a directory (staged as `pack` would) or an artifact.
    Digest(cli::digest::DigestArgs),
    /// Check an artifact's sha256 and, with a manifest, every entry.
    Verify(cli::verify::VerifyArgs),
    /// Show what differs between two artifacts or directories (exit 0 identical, 1 different, 2 error).
    Diff(cli::diff::DiffArgs),
    /// Pack, rebuild under perturbation, compare; write OUT.verified or OUT.unverified (--against ART: judge ART, packed earlier).
    Check(Box<cli::check::CheckArgs>),
    /// Use-time check of an artifact's OUT.verified marker.
    Gate(cli::gate::GateArgs),
    /// Fetch a ref into the content-addressed cache, verify it, print its path.
    Fetch(cli::fetch::FetchArgs),
    /// Store a file under its content address and print its ref.
    Push(cli::push::PushArgs),
    /// Print the pinned ref `oci://HOST/REPO:TAG#sha256=HEX` of the artifact a registry tag names now.
    Resolve(cli::resolve::ResolveArgs),
    /// Make a minisign key pair (prints the key id).
    Keygen(cli::sign::KeygenArgs),
    /// Sign files with a minisign secret key (writes FILE.minisig).
    Sign(cli::sign::SignArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cli::docs::CompletionsArgs),
    /// Print the man page (roff), or write every page with --out-dir.
    Man(cli::docs::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pack(args) => cli::pack::run(*args),
        Command::Hash {
            files,
            json,
            algorithm,
        } => cli::hash::run(&files, json, &algorithm),
        Command::Fetch(args) => cli::fetch::run(args),
        Command::Push(args) => cli::push::run(args),
        Command::Resolve(args) => cli::resolve::run(args),
        Command::Extract(args) => cli::extract::run(args),
        Command::Digest(args) => cli::digest::run(args),
        Command::Verify(args) => cli::verify::run(args),
        Command::Diff(args) => cli::diff::run(args),
        Command::Check(args) => cli::check::run(*args),
        Command::Gate(args) => cli::gate::run(args),
        Command::Keygen(args) => cli::sign::keygen_run(args),
        Command::Sign(args) => cli::sign::sign_run(args),
        Command::Completions(args) => cli::docs::completions(args, Cli::command()),
        Command::Man(args) => cli::docs::man(args, Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::from(cli::exit::OK as u8),
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("repropack: error: {}", f.message);
            }
            ExitCode::from(f.code as u8)
        }
    }
}
