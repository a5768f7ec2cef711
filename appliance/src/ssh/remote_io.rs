//! Streams over an exec channel: a remote command's stdout as a blocking `Read` (the
//! capture pipeline's threads pull from it), and a remote command's stdin as an async
//! writer (restore pushes to it). Both turn a non-zero exit into an error carrying the
//! command's stderr.

use anyhow::{Context, Result};
use bytes::Bytes;
use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::sync::mpsc;
use tokio::sync::watch;

enum Piece {
    Data(Bytes),
    End(std::result::Result<(), String>),
}

/// A remote command's stdout. Reading past the end reports the command's failure, if
/// any, so a disk read that stopped early never looks like a short disk.
pub struct RemoteReader {
    rx: mpsc::Receiver<Piece>,
    cur: Bytes,
    ended: bool,
}

impl RemoteReader {
    pub(super) fn spawn(host: String, cmd: String, mut ch: Channel<Msg>) -> Self {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let (mut stderr, mut status) = (Vec::new(), None);
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        let sent = tx.send(Piece::Data(data)).await;
                        if sent.is_err() {
                            // The reader is gone (the capture failed elsewhere): stop.
                            let _ = ch.close().await;
                            return;
                        }
                    }
                    ChannelMsg::ExtendedData { data, .. } if stderr.len() < 64 << 10 => {
                        stderr.extend_from_slice(&data);
                    }
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    _ => {}
                }
            }
            let end = match status {
                Some(0) => Ok(()),
                Some(code) => Err(format!(
                    "host {host}: `{cmd}` failed (exit {code}): {}",
                    String::from_utf8_lossy(&stderr).trim()
                )),
                None => Err(format!(
                    "host {host}: connection lost while running `{cmd}`"
                )),
            };
            let _ = tx.send(Piece::End(end)).await;
        });
        RemoteReader {
            rx,
            cur: Bytes::new(),
            ended: false,
        }
    }
}

impl std::io::Read for RemoteReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Data(d)) => self.cur = d,
                Some(Piece::End(Ok(()))) => self.ended = true,
                Some(Piece::End(Err(msg))) => {
                    self.ended = true;
                    return Err(std::io::Error::other(msg));
                }
                None => {
                    return Err(std::io::Error::other(
                        "remote reader task ended unexpectedly",
                    ))
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// How a command ended: exit status (if it sent one), stdout, stderr.
type Ended = (Option<u32>, Vec<u8>, Vec<u8>);

/// A remote command's stdin. The command's end is watched while writing: a command
/// that exits early (its `dd` killed, say) fails the next write with its exit status and
/// stderr instead of leaving the write waiting forever for room in the channel.
pub struct RemoteWriter {
    host: String,
    cmd: String,
    tx: ChannelWriteHalf<Msg>,
    ended: watch::Receiver<bool>,
    outcome: Option<tokio::task::JoinHandle<Ended>>,
}

impl RemoteWriter {
    pub(super) fn new(host: String, cmd: String, ch: Channel<Msg>) -> Self {
        let (mut rx, tx) = ch.split();
        let (end_tx, ended) = watch::channel(false);
        let outcome = tokio::spawn(async move {
            let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), None);
            while let Some(msg) = rx.wait().await {
                match msg {
                    ChannelMsg::Data { data } if out.len() < OUTPUT_CAP => {
                        out.extend_from_slice(&data)
                    }
                    ChannelMsg::ExtendedData { data, .. } if err.len() < OUTPUT_CAP => {
                        err.extend_from_slice(&data)
                    }
                    ChannelMsg::ExitStatus { exit_status } => {
                        status = Some(exit_status);
                        let _ = end_tx.send(true);
                    }
                    _ => {}
                }
            }
            let _ = end_tx.send(true);
            (status, out, err)
        });
        RemoteWriter {
            host,
            cmd,
            tx,
            ended,
            outcome: Some(outcome),
        }
    }

    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        let mut ended = self.ended.clone();
        // `wait_for` hands back a read guard of the watch: drop it here, before the arm
        // waits for the task that writes to the watch.
        let ended = async move {
            let _ = ended.wait_for(|e| *e).await;
        };
        tokio::select! {
            r = self.tx.data_bytes(data) => {
                r.with_context(|| format!("host {}: writing to `{}`", self.host, self.cmd))
            }
            () = ended => {
                let failure = self.outcome().await;
                Err(failure.unwrap_or_else(|| anyhow::anyhow!(
                    "host {}: `{}` ended before it read all its input",
                    self.host,
                    self.cmd
                )))
            }
        }
    }

    /// Waits for the command's end; `None` when it exited 0.
    async fn outcome(&mut self) -> Option<anyhow::Error> {
        let (status, _, err) = match self.outcome.take() {
            Some(h) => h.await.unwrap_or((None, Vec::new(), Vec::new())),
            None => (None, Vec::new(), Vec::new()),
        };
        match status {
            Some(0) => None,
            Some(code) => Some(anyhow::anyhow!(
                "host {}: `{}` failed (exit {code}): {}",
                self.host,
                self.cmd,
                String::from_utf8_lossy(&err).trim()
            )),
            None => Some(anyhow::anyhow!(
                "host {}: connection lost while running `{}`",
                self.host,
                self.cmd
            )),
        }
    }

    /// Closes stdin and waits for the command; fails unless it exits 0.
    pub async fn finish(mut self) -> Result<()> {
        // Read the flag first: a watch guard held across the await below would block
        // the task that sets it.
        let ended = *self.ended.borrow();
        if !ended {
            self.tx
                .eof()
                .await
                .with_context(|| format!("host {}: closing stdin of `{}`", self.host, self.cmd))?;
        }
        match self.outcome().await {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// Output kept of a command whose input is streamed (its stderr names the failure).
const OUTPUT_CAP: usize = 64 << 10;

/// Reads a channel to its end: exit status (if the command sent one), stdout, stderr.
/// Output past [`COLLECT_CAP`] is dropped and reported as an error by the caller.
pub(super) async fn collect(mut ch: Channel<Msg>) -> (Option<u32>, Vec<u8>, Vec<u8>, bool) {
    let (mut out, mut err, mut status, mut over) = (Vec::new(), Vec::new(), None, false);
    while let Some(msg) = ch.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                if out.len() + data.len() > COLLECT_CAP {
                    over = true;
                } else {
                    out.extend_from_slice(&data)
                }
            }
            ChannelMsg::ExtendedData { data, .. } if err.len() < OUTPUT_CAP => {
                err.extend_from_slice(&data)
            }
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    (status, out, err, over)
}

/// The most a command run for its output (not a disk stream) may print: the probes and
/// scripts Ferry runs print kilobytes; more is a runaway command.
pub const COLLECT_CAP: usize = 16 << 20;
