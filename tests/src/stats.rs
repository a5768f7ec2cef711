//! Figures of the benchmarks, and how they are taken.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// The median (NaN for none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs a command to completion; returns wall time and peak RSS of the process.
/// Its stdout goes to /dev/null.
pub fn measure(name: &str, cmd: &mut Command) -> Result<(f64, f64)> {
    let (wall, rss, _) = run(name, cmd.stdout(Stdio::null()))?;
    Ok((wall, rss))
}

/// [`measure`], and what the command printed on stdout (a report, not a disk).
pub fn measure_out(name: &str, cmd: &mut Command) -> Result<(f64, f64, String)> {
    run(name, cmd.stdout(Stdio::piped()))
}

fn run(name: &str, cmd: &mut Command) -> Result<(f64, f64, String)> {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let pid = child.id() as libc::pid_t;
    let stderr = child.stderr;
    let stdout = child.stdout;
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut o) = stdout {
            use std::io::Read;
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet reaped (std's Child was not waited on).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    let err = err_reader.join().unwrap_or_default();
    if r != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{name} failed (status {status}): {}", err.trim());
    }
    let out = out_reader.join().unwrap_or_default();
    Ok((wall, usage.ru_maxrss as f64 / 1024.0, out))
}

/// Reads files once, so that what is measured next reads them from the page cache.
pub fn warm(paths: &[&Path]) -> Result<()> {
    for p in paths {
        let mut f = std::fs::File::open(p)?;
        std::io::copy(&mut f, &mut std::io::sink())?;
    }
    Ok(())
}
