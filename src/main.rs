//! `palisade`: check, explain and operate Palisade policies from the shell.

mod cli;

use clap::Parser;
use std::process::ExitCode;

/// The companion allocates on every request (headers, answers); under load
/// glibc's malloc took about a tenth of its CPU, mimalloc takes less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("palisade: {message}");
            ExitCode::from(1)
        }
    }
}
