//! `palisade datasets refresh`: newer copies of the reputation lists.

use super::print;
use clap::{Args, Subcommand};
use palisade::reputation::{self, refresh};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DatasetsCommand {
    /// Download the reputation lists (tor, vpn, firehol_level1,
    /// stopforumspam_toxic), check each, and replace a file only with one
    /// that parses. Needs internet and curl. Send the companion SIGHUP
    /// afterwards to use them without a restart.
    Refresh(RefreshArgs),
}

#[derive(Args)]
pub struct RefreshArgs {
    /// Lists to refresh (default: all).
    names: Vec<String>,
    /// The networks folder to write (`<companion.datasets>/networks`).
    #[arg(long, default_value = "datasets/networks")]
    dir: PathBuf,
    /// Download a list from another address, `NAME=URL` (repeatable): a
    /// mirror, or a local copy in tests.
    #[arg(long = "url", value_name = "NAME=URL")]
    urls: Vec<String>,
}

pub fn run(command: DatasetsCommand) -> Result<ExitCode, String> {
    let DatasetsCommand::Refresh(args) = command;
    let mut chosen = Vec::new();
    let wanted: Vec<&str> = if args.names.is_empty() {
        reputation::names()
    } else {
        args.names.iter().map(String::as_str).collect()
    };
    for name in wanted {
        let source = reputation::source(name).ok_or_else(|| {
            format!(
                "no reputation list `{name}` (there are: {})",
                reputation::names().join(", ")
            )
        })?;
        let url = args
            .urls
            .iter()
            .filter_map(|u| u.split_once('='))
            .find(|(n, _)| *n == name)
            .map_or(source.url.to_string(), |(_, url)| url.to_string());
        chosen.push((source, url));
    }
    if let Some(bad) = args.urls.iter().find(|u| {
        u.split_once('=')
            .is_none_or(|(n, _)| reputation::source(n).is_none())
    }) {
        return Err(format!(
            "--url `{bad}`: expected NAME=URL with a list's name"
        ));
    }
    let outcomes = refresh::refresh(&args.dir, &chosen, &refresh::today(), &refresh::curl);
    let mut failed = false;
    let mut text = String::new();
    for o in &outcomes {
        match &o.result {
            Ok(n) => text.push_str(&format!(
                "{}: {n} entries written to {}\n",
                o.name,
                args.dir.join(format!("{}.txt", o.name)).display()
            )),
            Err(e) => {
                failed = true;
                text.push_str(&format!("{}: kept the old file: {e}\n", o.name));
            }
        }
    }
    print(&text)?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
