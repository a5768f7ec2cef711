//! `ferry-tcp-peer`: a stand-in for a server process in the discovery test bed. It
//! listens on `--listen` ports (keeping every accepted connection open and echoing what
//! arrives) and holds `--conns` connections open to each `--connect` address, writing a
//! byte on each every second. The test bed runs it under names like `mysqld` or `java`
//! (a symlink), which is the process name `ss` reports. The DR tests run it as the
//! service of an origin host (and of a recovered one) on one loopback address.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    listen: Vec<u16>,
    /// The address to listen on (default: all).
    #[arg(long, default_value = "0.0.0.0")]
    address: String,
    /// `host:port` to hold connections to.
    #[arg(long)]
    connect: Vec<String>,
    /// Connections per `--connect` address.
    #[arg(long, default_value_t = 1)]
    conns: usize,
}

fn serve(address: &str, port: u16) -> Result<()> {
    let l = TcpListener::bind((address, port))
        .with_context(|| format!("listening on {address}:{port}"))?;
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(())
}

/// Connects, retrying while the server is not up yet (at most 60 s).
fn dial(addr: &str) -> Result<TcpStream> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() > Duration::from_secs(60) => {
                return Err(e).with_context(|| format!("connecting to {addr}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    for p in &args.listen {
        serve(&args.address, *p)?;
    }
    let mut held = Vec::new();
    for a in &args.connect {
        for _ in 0..args.conns {
            held.push(dial(a)?);
        }
    }
    loop {
        for s in &mut held {
            let _ = s.write_all(b".");
            let mut b = [0u8; 1];
            let _ = s.read(&mut b);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
