//! A page as a person sees it: headless Chromium opens an HTML page from a file (as a
//! mail attachment or a downloaded report.html is opened), then
//! - [`visible_text`] prints it to PDF and reads the PDF back with `pdftotext -raw`: only
//!   what is drawn is there (no markup, nothing `display:none`), entities decoded, in
//!   the order it is drawn (a table cell by cell), with line breaks where a line wraps;
//! - [`dom`] answers the document Chromium built from it (`--dump-dom`): which elements
//!   exist, whatever the markup looked like.
//!
//! Both need `chromium` (or the browser `CHROMIUM` names) and `pdftotext` (poppler-utils);
//! `scripts/bootstrap.sh` installs them. Each run has its own profile directory and a
//! time limit (`timeout`, which also ends the browser's helper processes).

use std::io::{Error, ErrorKind};
use std::path::Path;
use std::process::{Command, Output};

/// How long one browser or pdftotext run may take (seconds) before it is killed.
const LIMIT_SECONDS: &str = "120";

/// The text a reader of `html` sees: the page printed to PDF, read by `pdftotext -raw`.
pub fn visible_text(html: &str) -> std::io::Result<String> {
    let dir = page_dir(html)?;
    let pdf = dir.path().join("page.pdf");
    let print = format!("--print-to-pdf={}", pdf.display());
    browser(dir.path(), &[&print, "--no-pdf-header-footer"])?;
    let pdf = pdf.display().to_string();
    let out = limited("pdftotext", &["-raw", "-enc", "UTF-8", &pdf, "-"])?;
    utf8(out.stdout)
}

/// Whether `seen` (a [`visible_text`]) shows `text`, wherever the page wrapped its
/// lines: both compared without whitespace.
pub fn shows(seen: &str, text: &str) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    squash(seen).contains(&squash(text))
}

/// The document Chromium built from `html`, serialised (`--dump-dom`).
pub fn dom(html: &str) -> std::io::Result<String> {
    let dir = page_dir(html)?;
    let out = browser(dir.path(), &["--dump-dom"])?;
    utf8(out.stdout)
}

/// A temporary directory holding the page as `page.html` (and the browser's profile).
fn page_dir(html: &str) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("page.html"), html)?;
    Ok(dir)
}

/// Runs headless Chromium on `dir/page.html` with `args`, its profile in `dir`.
fn browser(dir: &Path, args: &[&str]) -> std::io::Result<Output> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = format!("--user-data-dir={}", dir.join("profile").display());
    let url = format!("file://{}", dir.join("page.html").display());
    let mut all = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        &profile,
    ];
    all.extend_from_slice(args);
    all.push(&url);
    limited(&chromium, &all)
}

/// Runs `program` under `timeout`; an error unless it exits 0.
fn limited(program: &str, args: &[&str]) -> std::io::Result<Output> {
    which(program)?;
    let out = Command::new("timeout")
        .args(["--kill-after=10", LIMIT_SECONDS, program])
        .args(args)
        .output()?;
    match out.status.code() {
        Some(0) => Ok(out),
        Some(124 | 137) => Err(Error::new(
            ErrorKind::TimedOut,
            format!("{program} did not finish within {LIMIT_SECONDS} s"),
        )),
        _ => Err(Error::other(format!(
            "{program} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}

/// Fails with what to install when `program` is not on the PATH.
fn which(program: &str) -> std::io::Result<()> {
    let found = Command::new("sh")
        .args(["-c", "command -v \"$1\"", "sh", program])
        .output()?;
    if found.status.success() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::NotFound,
        format!("{program} is not installed: run scripts/bootstrap.sh (apt-get install chromium poppler-utils), or set CHROMIUM to a Chromium or Chrome binary"),
    ))
}

fn utf8(bytes: Vec<u8>) -> std::io::Result<String> {
    String::from_utf8(bytes).map_err(|e| Error::new(ErrorKind::InvalidData, e))
}
