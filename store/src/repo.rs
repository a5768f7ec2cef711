//! A store opened for use: its config, its chunk index, and typed reads and writes of
//! packs, index objects and points on top of a [`Backend`].

use bytes::Bytes;
use ferry_core::id::PackId;
use ferry_core::index::{ChunkIndex, IndexFile};
use ferry_core::layout;
use ferry_core::manifest::{Manifest, PointMeta};
use ferry_core::pack::{self, FinishedPack, PackEntry, FOOTER_LEN};
use ferry_core::repo_config::RepoConfig;
use ferry_core::ChunkId;
use futures::{stream, StreamExt};

use crate::backend::{Backend, BackendError, ObjectInfo};
use crate::error::RepoError;

type Result<T, E = RepoError> = std::result::Result<T, E>;

/// How many objects are fetched or stored at once.
pub const IO_CONCURRENCY: usize = 8;

pub struct Repository {
    pub backend: Backend,
    pub config: RepoConfig,
}

/// What loading the index found.
pub struct LoadedIndex {
    pub index: ChunkIndex,
    /// Packs with no index object (left by an interrupted capture), now indexed.
    pub recovered_packs: usize,
    /// Objects that could not be used and were skipped: index objects that do not
    /// decode or whose content does not match their name (their packs were indexed
    /// from the packs' own trailers instead), and packs whose trailer is unreadable.
    pub damaged: Vec<Damaged>,
}

/// A stored object that is not what its name says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damaged {
    pub key: String,
    pub reason: String,
}

/// Whether a read error is damage to the object (skip it) rather than a failure to
/// reach the store (which must stop the caller: retrying may succeed).
fn is_damage(e: &RepoError) -> bool {
    matches!(e, RepoError::Format(_))
}

impl Repository {
    /// Creates the store's config if there is none; returns whether it was created.
    pub async fn init(backend: Backend) -> Result<(Self, bool)> {
        if let Backend::S3(s3) = &backend {
            s3.ensure_bucket().await?;
        }
        match backend.get(layout::CONFIG).await {
            Ok(bytes) => {
                let config = RepoConfig::from_json(&bytes)?;
                Ok((Repository { backend, config }, false))
            }
            Err(BackendError::NotFound { .. }) => {
                let config = RepoConfig::new(hex::encode(rand::random::<[u8; 16]>()));
                backend
                    .put(layout::CONFIG, Bytes::from(config.to_json()))
                    .await?;
                Ok((Repository { backend, config }, true))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn open(backend: Backend) -> Result<Self> {
        let bytes = match backend.get(layout::CONFIG).await {
            Ok(b) => b,
            Err(BackendError::NotFound { .. }) => {
                return Err(RepoError::NotInitialised {
                    store: backend.describe(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let config = RepoConfig::from_json(&bytes)?;
        Ok(Repository { backend, config })
    }

    /// Reads every index object; packs that no index names (an interrupted capture's,
    /// or those of a damaged index object) are indexed from their own trailers, and an
    /// index object is written for them so that the next reader need not do it again;
    /// then the damaged index objects it replaces are removed. For writers (captures).
    pub async fn load_index(&self) -> Result<LoadedIndex> {
        self.load_index_inner(true).await
    }

    /// Like [`Repository::load_index`], but never writes to the store (restore, verify).
    pub async fn read_index(&self) -> Result<LoadedIndex> {
        self.load_index_inner(false).await
    }

    /// One index object, checked against its name (the hash of its content).
    async fn read_index_object(&self, key: &str) -> Result<Option<IndexFile>> {
        let bytes = match self.backend.get(key).await {
            Ok(b) => b,
            // Removed since the listing (replaced by a writer): nothing to read.
            Err(BackendError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let named = key
            .strip_prefix(layout::INDEX)
            .and_then(|h| h.parse::<ChunkId>().ok());
        if named != Some(ChunkId::of(&bytes)) {
            return Err(RepoError::Format(ferry_core::FormatError::Malformed {
                object: key.to_string(),
                detail: "content does not match its name (damaged)".into(),
            }));
        }
        Ok(Some(IndexFile::decode(key, &bytes)?))
    }

    async fn load_index_inner(&self, write_recovered: bool) -> Result<LoadedIndex> {
        let mut index = ChunkIndex::default();
        let mut damaged = Vec::new();
        let objects = self.backend.list(layout::INDEX).await?;
        let files: Vec<(String, Result<Option<IndexFile>>)> = stream::iter(objects)
            .map(|o| async move {
                let r = self.read_index_object(&o.key).await;
                (o.key, r)
            })
            .buffer_unordered(IO_CONCURRENCY)
            .collect()
            .await;
        for (key, r) in files {
            match r {
                Ok(Some(f)) => index.add_file(&f),
                Ok(None) => {}
                Err(e) if is_damage(&e) => {
                    tracing::warn!(object = %key, error = %e, "skipping a damaged index object; its packs are indexed from their trailers");
                    damaged.push(Damaged {
                        key,
                        reason: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let orphans: Vec<(PackId, ObjectInfo)> = self
            .list_packs()
            .await?
            .into_iter()
            .filter(|(id, _)| !index.has_pack(id))
            .collect();
        let read: Vec<(PackId, String, Result<Vec<PackEntry>>)> = stream::iter(orphans)
            .map(|(id, info)| async move {
                let r = self.read_pack_trailer(&info.key, info.size).await;
                (id, info.key, r)
            })
            .buffer_unordered(IO_CONCURRENCY)
            .collect()
            .await;
        let mut file = IndexFile::default();
        for (id, key, r) in read {
            match r {
                Ok(entries) => file.packs.push((id, entries)),
                Err(e) if is_damage(&e) => {
                    tracing::warn!(object = %key, error = %e, "skipping a pack whose trailer is unreadable");
                    damaged.push(Damaged {
                        key,
                        reason: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        for (id, entries) in &file.packs {
            index.add_pack(*id, entries);
        }
        damaged.sort_by(|a, b| a.key.cmp(&b.key));
        let recovered_packs = file.packs.len();
        if recovered_packs > 0 {
            tracing::info!(
                packs = recovered_packs,
                "indexed packs that no index object names"
            );
        }
        if write_recovered && recovered_packs > 0 {
            self.write_index(&file).await?;
        }
        if write_recovered {
            // Their packs are indexed again (from the trailers, just written): a damaged
            // index object holds nothing that is not elsewhere now.
            for d in damaged.iter().filter(|d| d.key.starts_with(layout::INDEX)) {
                self.backend.remove(&d.key).await?;
                tracing::info!(object = %d.key, "removed a damaged index object, replaced");
            }
        }
        Ok(LoadedIndex {
            index,
            recovered_packs,
            damaged,
        })
    }

    /// Every pack object, with its id.
    pub async fn list_packs(&self) -> Result<Vec<(PackId, ObjectInfo)>> {
        let objects = self.backend.list(layout::PACKS).await?;
        Ok(objects
            .into_iter()
            .filter_map(|o| layout::pack_id_of_key(&o.key).map(|id| (id, o)))
            .collect())
    }

    /// Reads a pack's trailer with one ranged read in the common case.
    pub async fn read_pack_trailer(&self, key: &str, size: u64) -> Result<Vec<PackEntry>> {
        let guess = size.min(64 << 10);
        let tail = self.backend.get_range(key, size - guess, guess).await?;
        let need = pack::trailer_len(key, &tail[tail.len().saturating_sub(FOOTER_LEN)..])? as u64;
        let tail = if need > guess {
            self.backend
                .get_range(key, size.saturating_sub(need), need)
                .await?
        } else {
            tail
        };
        Ok(pack::parse_trailer(key, &tail, size)?)
    }

    pub async fn upload_pack(&self, p: &FinishedPack) -> Result<()> {
        let key = layout::pack_key(&p.id);
        Ok(self.backend.put(&key, p.bytes.clone()).await?)
    }

    /// Writes an index object named by the hash of its content; returns its size.
    pub async fn write_index(&self, f: &IndexFile) -> Result<u64> {
        let bytes = f.encode();
        let key = layout::index_key(&ChunkId::of(&bytes));
        let len = bytes.len() as u64;
        self.backend.put(&key, bytes).await?;
        Ok(len)
    }

    /// Writes a point; returns its key and size.
    pub async fn write_point(&self, m: &Manifest) -> Result<(String, u64)> {
        let key = layout::point_key(&m.meta.host, &m.meta.point);
        let bytes = Bytes::from(m.encode()?);
        let len = bytes.len() as u64;
        self.backend.put(&key, bytes).await?;
        Ok((key, len))
    }

    /// Point ids of a host, oldest first.
    pub async fn list_points(&self, host: &str) -> Result<Vec<String>> {
        let prefix = layout::points_prefix(host);
        let objects = self.backend.list(&prefix).await?;
        let mut ids: Vec<String> = objects
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&prefix).map(str::to_string))
            .filter(|k| !k.contains('/'))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Hosts that have points in this store.
    pub async fn list_hosts(&self) -> Result<Vec<String>> {
        let objects = self.backend.list(layout::POINTS).await?;
        let mut hosts: Vec<String> = objects
            .iter()
            .filter_map(|o| {
                o.key
                    .strip_prefix(layout::POINTS)?
                    .split_once('/')
                    .map(|(h, _)| h.to_string())
            })
            .collect();
        hosts.dedup();
        Ok(hosts)
    }

    pub async fn read_point(&self, host: &str, point: &str) -> Result<Manifest> {
        let key = layout::point_key(host, point);
        let bytes = match self.backend.get(&key).await {
            Ok(b) => b,
            Err(BackendError::NotFound { .. }) => {
                return Err(RepoError::NoSuchPoint {
                    host: host.to_string(),
                    point: point.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Manifest::decode(&key, &bytes)?)
    }

    /// The point named by `point` (its id or a unique suffix), or the newest of `host`.
    pub async fn resolve_point(&self, host: &str, point: Option<&str>) -> Result<Manifest> {
        let id = self.resolve_point_id(host, point).await?;
        self.read_point(host, &id).await
    }

    /// Like [`Repository::resolve_point`], but reads only the point's metadata: the
    /// start of the point object (one zstd block holds far more than the metadata), and
    /// the whole object only when that is not enough.
    pub async fn resolve_point_meta(&self, host: &str, point: Option<&str>) -> Result<PointMeta> {
        const HEAD: u64 = 256 << 10;
        let id = self.resolve_point_id(host, point).await?;
        let key = layout::point_key(host, &id);
        let missing = |e: BackendError| match e {
            BackendError::NotFound { .. } => RepoError::NoSuchPoint {
                host: host.to_string(),
                point: id.clone(),
            },
            e => e.into(),
        };
        let head = self
            .backend
            .get_range(&key, 0, HEAD)
            .await
            .map_err(missing)?;
        match Manifest::decode_meta(&key, &head) {
            Err(_) if head.len() as u64 == HEAD => {
                let all = self.backend.get(&key).await.map_err(missing)?;
                Ok(Manifest::decode_meta(&key, &all)?)
            }
            r => Ok(r?),
        }
    }

    /// The id of the point named by `point` (its id or a unique suffix), or of the
    /// newest of `host`.
    pub async fn resolve_point_id(&self, host: &str, point: Option<&str>) -> Result<String> {
        let ids = self.list_points(host).await?;
        let id = match point {
            // An empty suffix would match every point.
            Some("") => {
                return Err(RepoError::NoSuchPoint {
                    host: host.to_string(),
                    point: String::new(),
                })
            }
            Some(p) => {
                let matching: Vec<&String> = ids
                    .iter()
                    .filter(|i| i.as_str() == p || i.ends_with(p))
                    .collect();
                match matching.as_slice() {
                    [one] => (*one).clone(),
                    [] => {
                        return Err(RepoError::NoSuchPoint {
                            host: host.to_string(),
                            point: p.to_string(),
                        })
                    }
                    many => {
                        return Err(RepoError::AmbiguousPoint {
                            host: host.to_string(),
                            point: p.to_string(),
                            matches: many.len(),
                        })
                    }
                }
            }
            None => ids.last().cloned().ok_or_else(|| RepoError::NoPoints {
                host: host.to_string(),
            })?,
        };
        Ok(id)
    }

    /// Reads a byte range of a pack.
    pub async fn read_pack_range(&self, pack: &PackId, offset: u64, len: u64) -> Result<Bytes> {
        let key = layout::pack_key(pack);
        Ok(self.backend.get_range(&key, offset, len).await?)
    }
}
