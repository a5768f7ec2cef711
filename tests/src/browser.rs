//! Headless Chromium (Debian's `chromium`), as a user's browser: opens a page, takes a
//! screenshot, and returns the DOM it built.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

fn chromium(page: &Path, extra: &[String]) -> Result<std::process::Output> {
    let url = format!("file://{}", page.display());
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1500,1100",
        ])
        .args(extra)
        .arg(&url)
        .output()
        .context("running chromium (Debian package chromium; scripts/setup.sh installs it)")
}

/// Screenshot of `page` into `png`; returns the page's DOM after loading. Fails if the
/// browser fails or the screenshot is not a PNG image.
pub fn render(page: &Path, png: &Path) -> Result<String> {
    let shot = chromium(page, &[format!("--screenshot={}", png.display())])?;
    if !shot.status.success() {
        bail!(
            "chromium could not open {}: {}",
            page.display(),
            String::from_utf8_lossy(&shot.stderr)
        );
    }
    let bytes =
        std::fs::read(png).with_context(|| format!("no screenshot at {}", png.display()))?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.len() < 10_000 {
        bail!(
            "{} is not a real screenshot ({} bytes)",
            png.display(),
            bytes.len()
        );
    }
    let dom = chromium(page, &["--dump-dom".to_string()])?;
    if !dom.status.success() {
        bail!(
            "chromium --dump-dom failed: {}",
            String::from_utf8_lossy(&dom.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&dom.stdout).into_owned())
}
