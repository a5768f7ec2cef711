//! The read stage: a thread that reads the source in large blocks into recycled
//! buffers. Chunks are zero-copy slices of these blocks; a block's buffer returns to
//! the pool when the last chunk referring to it is dropped, so steady-state reading
//! allocates (and page-faults) nothing.

use std::io::Read;

use anyhow::{anyhow, Result};
use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};

pub const BLOCK: usize = 4 << 20;
const POOL: usize = 16;

struct PooledBlock {
    buf: Vec<u8>,
    len: usize,
    pool: Sender<Vec<u8>>,
}

impl AsRef<[u8]> for PooledBlock {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledBlock {
    fn drop(&mut self) {
        // A full pool just frees the buffer.
        let _ = self.pool.try_send(std::mem::take(&mut self.buf));
    }
}

/// Reads `source` to its end, sending blocks; returns the bytes read.
pub fn read_stage(mut source: Box<dyn Read + Send>, out: Sender<Bytes>) -> Result<u64> {
    let (pool_tx, pool_rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = bounded(POOL);
    let mut total = 0u64;
    loop {
        let mut buf = pool_rx.try_recv().unwrap_or_else(|_| vec![0u8; BLOCK]);
        let n = read_full(&mut source, &mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        let block = PooledBlock {
            buf,
            len: n,
            pool: pool_tx.clone(),
        };
        out.send(Bytes::from_owner(block))
            .map_err(|_| anyhow!("pipeline channel closed"))?;
    }
}

/// Fills `buf` unless the stream ends first; returns the bytes read (0 at the end).
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow::Error::new(e).context("reading the disk")),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_source_and_buffers_are_reused() {
        let data: Vec<u8> = (0..(BLOCK * 2 + 123)).map(|i| (i % 251) as u8).collect();
        let (tx, rx) = bounded(4);
        let src = std::io::Cursor::new(data.clone());
        let h = std::thread::spawn(move || read_stage(Box::new(src), tx));
        let blocks: Vec<Bytes> = rx.iter().collect();
        assert_eq!(h.join().unwrap().unwrap(), data.len() as u64);
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks.concat(), data);
    }
}
