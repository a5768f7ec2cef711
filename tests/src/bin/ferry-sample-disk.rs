//! `ferry-sample-disk`: makes the project's sample disk and its changed copy in a
//! directory (see `ferry_tests::sample_disk`); prints the two paths.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use ferry_tests::sample_disk::{ensure, Spec};

#[derive(Parser)]
struct Args {
    /// Where to put disk.img and disk-changed.img (made only if missing or stale).
    #[arg(long)]
    dir: PathBuf,
    /// Image size in MiB.
    #[arg(long, default_value_t = Spec::SMALL.image_mb)]
    image_mb: u64,
    /// MiB of files in it.
    #[arg(long, default_value_t = Spec::SMALL.data_mb)]
    data_mb: u64,
    #[arg(long, default_value_t = Spec::SMALL.seed)]
    seed: u64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let d = ensure(
        &a.dir,
        Spec {
            image_mb: a.image_mb,
            data_mb: a.data_mb,
            seed: a.seed,
        },
    )?;
    println!("{}\n{}", d.base.display(), d.changed.display());
    Ok(())
}
