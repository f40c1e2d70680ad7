//! `palisade datasets refresh`: download newer copies of the reputation
//! lists, check each, and swap in only a file that parses.

use super::Source;
use crate::net::{parse_cidr_list, Cidr};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What happened to one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub name: &'static str,
    /// The entries written, or why the file was left as it was.
    pub result: Result<usize, String>,
}

/// Downloads `url` with curl (TLS, proxies and redirects as curl does
/// them), failing on HTTP errors, after 60 s, or past 64 MiB.
pub fn curl(url: &str) -> Result<String, String> {
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--location"])
        .args(["--max-time", "60", "--max-filesize", "67108864"])
        .args(["--user-agent", "palisade-datasets-refresh/1"])
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if !out.status.success() {
        let reason = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(format!("download failed: {reason}"));
    }
    String::from_utf8(out.stdout).map_err(|_| "the download is not UTF-8 text".to_string())
}

/// The entries of a downloaded list, or why it is not one.
pub fn validate(source: &Source, text: &str) -> Result<Vec<Cidr>, String> {
    let cidrs = parse_cidr_list(text).map_err(|(line, e)| format!("line {line}: {e}"))?;
    if cidrs.len() < source.minimum {
        return Err(format!(
            "{} entries, fewer than the {} a real copy has: not swapped in",
            cidrs.len(),
            source.minimum
        ));
    }
    Ok(cidrs)
}

/// The file for `source`: its header, then one CIDR per line as published.
pub fn render(source: &Source, url: &str, today: &str, cidrs: &[Cidr]) -> String {
    let mut out = format!(
        "# {}: {}\n# Source: {url}\n# Licence: {}\n# Data as of: {today} (downloaded by `palisade datasets refresh`)\n# Regenerate: palisade datasets refresh {}\n# {} entries.\n",
        source.name,
        source.title,
        source.licence,
        source.name,
        cidrs.len()
    );
    for c in cidrs {
        out.push_str(&c.to_string());
        out.push('\n');
    }
    out
}

/// Writes `text` to `path` through a temporary file in the same folder and
/// a rename, so a reader sees the old file or the new one, never a part.
pub fn swap_in(path: &Path, text: &str) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = path.with_file_name(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Refreshes each `(source, url)` into `dir/<name>.txt`; `fetch` downloads
/// (it is [`curl`] outside tests). A list that fails to download or to
/// validate leaves its file untouched.
pub fn refresh(
    dir: &Path,
    lists: &[(&'static Source, String)],
    today: &str,
    fetch: &dyn Fn(&str) -> Result<String, String>,
) -> Vec<Outcome> {
    lists
        .iter()
        .map(|(source, url)| Outcome {
            name: source.name,
            result: fetch(url)
                .and_then(|text| validate(source, &text))
                .and_then(|cidrs| {
                    let text = render(source, url, today, &cidrs);
                    swap_in(&dir.join(format!("{}.txt", source.name)), &text).map(|()| cidrs.len())
                }),
        })
        .collect()
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    civil_date(days)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(20_513), "2026-03-01");
    }
}
