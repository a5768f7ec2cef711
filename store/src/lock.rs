//! Store locks, after restic's: each holder writes `locks/<id>` naming itself, its kind
//! and when the lock expires, then lists the others. A shared lock (capture, restore,
//! verify, image builds) conflicts only with an exclusive one; an exclusive lock (prune)
//! conflicts with every other. A lock past its expiry counts as free (its holder died
//! without releasing it); holders of long work refresh theirs.
//!
//! Object stores have no atomic "create unless another exists", so taking a lock is
//! write-then-look: when two exclusive holders race, both see each other, both back
//! off, and neither proceeds; never both.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferry_core::layout;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, BackendError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// What a lock object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    /// Who holds it: the appliance's host name and process, or a function's name.
    pub holder: String,
    pub kind: LockKind,
    /// Unix seconds.
    pub created: u64,
    pub expires: u64,
}

impl LockInfo {
    fn conflicts_with(&self, other: &LockInfo) -> bool {
        self.kind == LockKind::Exclusive || other.kind == LockKind::Exclusive
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the store is locked ({kind:?}) by {holder} until {expires} (unix time); try again later"
    )]
    Held {
        holder: String,
        kind: LockKind,
        expires: u64,
    },
    #[error("lock object {key} does not decode: {reason}")]
    Decode { key: String, reason: String },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A lock this process holds. Release it with [`StoreLock::release`]; one that is
/// dropped unreleased expires on its own.
#[derive(Debug)]
pub struct StoreLock {
    pub info: LockInfo,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn encode(info: &LockInfo) -> Result<Bytes, LockError> {
    serde_json::to_vec(info)
        .map(Bytes::from)
        .map_err(|e| LockError::Decode {
            key: layout::lock_key(&info.id),
            reason: e.to_string(),
        })
}

/// Every lock object in the store that decodes, expired or not.
pub async fn locks(backend: &Backend) -> Result<Vec<LockInfo>, LockError> {
    let mut out = Vec::new();
    for o in backend.list(layout::LOCKS).await? {
        let data = match backend.get(&o.key).await {
            Ok(d) => d,
            // Released between the list and the read.
            Err(BackendError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice::<LockInfo>(&data) {
            Ok(l) => out.push(l),
            Err(e) => tracing::warn!(key = o.key, "ignoring a lock that does not decode: {e}"),
        }
    }
    Ok(out)
}

/// Takes a lock of `kind` for `ttl`, or says who holds a conflicting one.
pub async fn lock(
    backend: &Backend,
    kind: LockKind,
    holder: &str,
    ttl: Duration,
) -> Result<StoreLock, LockError> {
    let created = now();
    let info = LockInfo {
        id: format!("{created:x}-{:016x}", rand::random::<u64>()),
        holder: holder.to_string(),
        kind,
        created,
        expires: created + ttl.as_secs(),
    };
    let key = layout::lock_key(&info.id);
    backend.put(&key, encode(&info)?).await?;
    let now = now();
    let conflict = locks(backend)
        .await?
        .into_iter()
        .find(|l| l.id != info.id && l.expires > now && info.conflicts_with(l));
    if let Some(l) = conflict {
        backend.remove(&key).await?;
        return Err(LockError::Held {
            holder: l.holder,
            kind: l.kind,
            expires: l.expires,
        });
    }
    Ok(StoreLock { info })
}

impl StoreLock {
    /// Extends the lock by `ttl` from now (long work calls this before it expires).
    pub async fn refresh(&mut self, backend: &Backend, ttl: Duration) -> Result<(), LockError> {
        self.info.expires = now() + ttl.as_secs();
        backend
            .put(&layout::lock_key(&self.info.id), encode(&self.info)?)
            .await?;
        Ok(())
    }

    pub async fn release(self, backend: &Backend) -> Result<(), LockError> {
        backend.remove(&layout::lock_key(&self.info.id)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(600);

    fn store() -> (tempfile::TempDir, Backend) {
        let d = tempfile::tempdir().unwrap();
        let b =
            Backend::File(crate::backend::FileBackend::new(d.path().to_str().unwrap()).unwrap());
        (d, b)
    }

    #[tokio::test]
    async fn shared_locks_coexist_and_exclusive_ones_do_not() {
        let (_d, b) = store();
        let a = lock(&b, LockKind::Shared, "appliance-a", TTL)
            .await
            .unwrap();
        let c = lock(&b, LockKind::Shared, "appliance-b", TTL)
            .await
            .unwrap();
        let e = lock(&b, LockKind::Exclusive, "prune", TTL)
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                LockError::Held {
                    kind: LockKind::Shared,
                    ..
                }
            ),
            "{e}"
        );
        // A refused lock leaves nothing behind.
        assert_eq!(locks(&b).await.unwrap().len(), 2);
        a.release(&b).await.unwrap();
        c.release(&b).await.unwrap();
        let x = lock(&b, LockKind::Exclusive, "prune", TTL).await.unwrap();
        let e = lock(&b, LockKind::Shared, "appliance-a", TTL)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("prune"), "{e}");
        x.release(&b).await.unwrap();
        assert!(locks(&b).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_expired_lock_is_free_and_a_refreshed_one_is_not() {
        let (_d, b) = store();
        let mut dead = lock(&b, LockKind::Exclusive, "crashed", Duration::ZERO)
            .await
            .unwrap();
        // Expired at once: the holder died without releasing it.
        let s = lock(&b, LockKind::Shared, "appliance", TTL).await.unwrap();
        s.release(&b).await.unwrap();
        dead.refresh(&b, TTL).await.unwrap();
        assert!(lock(&b, LockKind::Shared, "appliance", TTL).await.is_err());
        // Removing twice is harmless.
        b.remove(&layout::lock_key(&dead.info.id)).await.unwrap();
        dead.release(&b).await.unwrap();
    }
}
