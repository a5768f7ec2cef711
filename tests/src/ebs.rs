//! Reading EBS snapshots back the way a user would check them: every block with
//! GetSnapshotBlock, compared with the source image cut into 512 KiB blocks.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

pub const BLOCK: usize = 512 * 1024;

/// The image's blocks, the last one padded with zeros.
pub fn file_blocks(p: &Path) -> Result<Vec<Vec<u8>>> {
    Ok(std::fs::read(p)?
        .chunks(BLOCK)
        .map(|c| {
            let mut v = c.to_vec();
            v.resize(BLOCK, 0);
            v
        })
        .collect())
}

/// Indexes of the blocks that are not all zeros.
pub fn nonzero(blocks: &[Vec<u8>]) -> Vec<u64> {
    (0..blocks.len() as u64)
        .filter(|&i| blocks[i as usize].iter().any(|b| *b != 0))
        .collect()
}

/// Every block the snapshot holds, by index.
pub async fn snapshot_blocks(
    ebs: &aws_sdk_ebs::Client,
    sid: &str,
) -> Result<BTreeMap<u64, Vec<u8>>> {
    let list = ebs.list_snapshot_blocks().snapshot_id(sid).send().await?;
    let mut out = BTreeMap::new();
    for b in list.blocks() {
        let (i, token) = (
            b.block_index().unwrap_or_default(),
            b.block_token().unwrap_or_default(),
        );
        let got = ebs
            .get_snapshot_block()
            .snapshot_id(sid)
            .block_index(i)
            .block_token(token)
            .send()
            .await?;
        out.insert(
            i as u64,
            got.block_data.collect().await?.into_bytes().to_vec(),
        );
    }
    Ok(out)
}

/// Asserts that the snapshot holds exactly the image's non-zero blocks, byte for byte.
pub async fn assert_snapshot_is_image(
    ebs: &aws_sdk_ebs::Client,
    sid: &str,
    image: &Path,
) -> Result<usize> {
    let want = file_blocks(image)?;
    let got = snapshot_blocks(ebs, sid).await?;
    anyhow::ensure!(
        got.keys().copied().collect::<Vec<_>>() == nonzero(&want),
        "snapshot {sid} holds {} blocks, the image has {} non-zero ones",
        got.len(),
        nonzero(&want).len()
    );
    for (i, data) in &got {
        anyhow::ensure!(
            data == &want[*i as usize],
            "snapshot {sid}: block {i} differs"
        );
    }
    Ok(got.len())
}
