//! `palisade token sign|verify`: pass tokens for operators.

use super::{load_policy, now_ns, print};
use clap::Subcommand;
use palisade::challenge::Passed;
use std::net::IpAddr;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue a pass token with the policy's newest key.
    Sign {
        #[arg(long)]
        config: String,
        /// Challenge level the token certifies (1-5).
        #[arg(long, default_value_t = 5)]
        level: u8,
        /// Client address to bind (when the policy binds addresses).
        #[arg(long)]
        ip: Option<IpAddr>,
        /// User agent to bind (when the policy binds user agents).
        #[arg(long, default_value = "")]
        user_agent: String,
    },
    /// Check a token: prints its claims, or why it is rejected (exit 1).
    Verify {
        #[arg(long)]
        config: String,
        token: String,
        #[arg(long)]
        ip: Option<IpAddr>,
        #[arg(long, default_value = "")]
        user_agent: String,
    },
}

pub fn run(command: TokenCommand) -> Result<ExitCode, String> {
    let now_s = now_ns() / 1_000_000_000;
    match command {
        TokenCommand::Sign {
            config,
            level,
            ip,
            user_agent,
        } => {
            if !(1..=5).contains(&level) {
                return Err(format!("--level {level}: must be 1-5"));
            }
            let policy = load_policy(&config)?;
            print(&format!(
                "{}\n",
                policy.issue_token(ip, &user_agent, Passed::pow(level), now_s)
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Verify {
            config,
            token,
            ip,
            user_agent,
        } => {
            let policy = load_policy(&config)?;
            // Show the claims even when verification fails: that is the point.
            let claims = match palisade::token::decode(&policy.tokens().keyring, &token) {
                Ok(c) => format!(
                    "claims: key {} {} issued_at {} expires_at {} ip_bound {} ua_bound {}\n",
                    c.key_id,
                    Passed::from_level_byte(c.level).map_or_else(
                        || format!("level byte {} (unknown kind)", c.level),
                        |p| format!("kind {} level {}", p.kind.as_str(), p.difficulty)
                    ),
                    c.issued_at,
                    c.expires_at,
                    c.binding.ip_hash.is_some(),
                    c.binding.ua_hash.is_some()
                ),
                Err(e) => format!("claims: unreadable ({e})\n"),
            };
            print(&claims)?;
            match policy.verify_token(&token, ip, &user_agent, now_s) {
                Ok(_) => {
                    print("valid\n")?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    print(&format!("rejected: {e}\n"))?;
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
