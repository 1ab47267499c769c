//! CompleteMultipartUpload's assembly: the parts joined into the object in s3s-fs's own layout,
//! without reading them back.
//!
//! s3s-fs 0.14.1 reads every part again in 64 KiB async reads, hashes it with MD5 a second time
//! and writes it out, on one core: for a 1.4 GB CSV that was 2.4 s after the last part arrived,
//! a third of the export's wall time. Here the parts written in place ([`super::placed`]) become
//! the object by a rename; others are copied by the kernel (`copy_file_range`). The ETag is made
//! from the MD5 each part got when it was stored ([`PartDigests`]); a part stored before the
//! endpoint started again is hashed from its file.
//!
//! It also does what S3 does and s3s-fs does not: a part whose ETag in the request is not the
//! stored part's is refused (`InvalidPart`), as are parts out of order (`InvalidPartOrder`),
//! before the answer starts; and a run that fails leaves the upload whole (parts are deleted only
//! once the object is in place), so the client can complete it again.

use super::placed::{self, Place, Placement, StoredPlace};
use crate::etag;
use md5::{Digest as _, Md5};
use path_absolutize::Absolutize as _;
use s3s::dto::{CompletedPart, ETag, ETagCondition};
use s3s::{S3Error, S3Result, s3_error};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The smallest part but the last, as S3 and s3s-fs require.
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

/// The MD5 of each stored part, by upload id and part number, as UploadPart computed it.
#[derive(Default)]
pub(super) struct PartDigests(Mutex<HashMap<String, BTreeMap<i32, [u8; 16]>>>);

impl PartDigests {
    /// Records a stored part's MD5 from its ETag (hex), replacing an earlier upload of the part.
    pub(super) fn record(&self, upload_id: &str, part_number: i32, e_tag: &str) {
        let Some(md5) = etag::md5(e_tag) else { return };
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(upload_id.to_owned())
            .or_default()
            .insert(part_number, md5);
    }

    pub(super) fn of(&self, upload_id: &str) -> BTreeMap<i32, [u8; 16]> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(upload_id)
            .cloned()
            .unwrap_or_default()
    }

    pub(super) fn forget(&self, upload_id: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(upload_id);
    }
}

/// One CompleteMultipartUpload: where the upload's files are and what the request lists.
pub(super) struct Assembly {
    pub(super) root: PathBuf,
    pub(super) bucket: String,
    /// The key as s3s-fs stores it (a long key's hash, see `keys`).
    pub(super) key: String,
    pub(super) upload_id: String,
    pub(super) parts: Vec<CompletedPart>,
    /// `If-Match`: the object must exist (`*`) or have this ETag.
    pub(super) if_match: Option<ETagCondition>,
    /// `If-None-Match: *`: the object must not exist.
    pub(super) if_none_match: Option<ETagCondition>,
}

/// A listed part, checked: where its bytes are, its MD5 and its length.
pub(super) struct Part {
    source: Source,
    md5: [u8; 16],
    len: u64,
}

enum Source {
    /// A file of its own (s3s-fs's).
    Own(PathBuf),
    /// Its place in the upload's data file.
    Placed(Place),
}

impl Assembly {
    /// `<root>/.bucket-<b64(bucket)>.object-<b64(key)>.<kind>.json`, s3s-fs's side files.
    fn sidecar(&self, kind: &str) -> PathBuf {
        super::backend::sidecar(&self.root, &self.bucket, &self.key, kind)
    }

    fn part_path(&self, part_number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{}.part-{part_number}", self.upload_id))
    }

    fn object(&self) -> S3Result<PathBuf> {
        Ok(Path::new(&self.bucket)
            .join(&self.key)
            .absolutize_virtually(&self.root)
            .map_err(|e| s3_error!(InvalidArgument, "the key is not a valid path here: {e}"))?
            .into_owned())
    }

    /// What S3 checks before it answers: `If-Match` and `If-None-Match`, the parts listed in
    /// order, each stored, large enough and with the listed ETag. Returns the parts, each with
    /// its MD5 (read from its file when it was stored before the endpoint started). A part's own
    /// file is newer than its place in the data file (`placed`): a part goes to its own file
    /// only after its place was taken. Blocking.
    pub(super) fn check(
        &self,
        digests: &PartDigests,
        placed: &BTreeMap<i32, StoredPlace>,
    ) -> S3Result<Vec<Part>> {
        if self.parts.is_empty() {
            return Err(s3_error!(InvalidPart, "You must specify at least one part"));
        }
        if self
            .if_none_match
            .as_ref()
            .is_some_and(ETagCondition::is_any)
            && self.object()?.exists()
        {
            return Err(s3_error!(PreconditionFailed, "Object already exists"));
        }
        if let Some(condition) = &self.if_match {
            self.check_if_match(condition, &self.object()?)?;
        }
        let known = digests.of(&self.upload_id);
        let mut sources = Vec::with_capacity(self.parts.len());
        for (i, part) in self.parts.iter().enumerate() {
            let number = part
                .part_number
                .ok_or_else(|| s3_error!(InvalidRequest, "a part has no part number"))?;
            if usize::try_from(number).ok() != Some(i + 1) {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The parts must be listed in order, numbered from 1 without gaps"
                ));
            }
            let path = self.part_path(number);
            let (source, size, md5) = match (std::fs::metadata(&path), placed.get(&number)) {
                (Ok(meta), _) => {
                    let md5 = match known.get(&number) {
                        Some(md5) => *md5,
                        None => md5_of(&path)?,
                    };
                    (Source::Own(path), meta.len(), md5)
                }
                (Err(_), Some(stored)) => {
                    (Source::Placed(stored.place), stored.place.len, stored.md5)
                }
                (Err(_), None) => {
                    return Err(s3_error!(InvalidPart, "Part {number} was never uploaded"));
                }
            };
            if i + 1 < self.parts.len() && size < MIN_PART_BYTES {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Part {number} is {size} bytes; every part but the last must be at least 5 MiB"
                ));
            }
            if let Some(listed) = part.e_tag.as_ref().and_then(|t| etag::md5(t.value()))
                && listed != md5
            {
                return Err(s3_error!(
                    InvalidPart,
                    "Part {number}'s ETag is not the stored part's"
                ));
            }
            sources.push(Part {
                source,
                md5,
                len: size,
            });
        }
        Ok(sources)
    }

    /// Writes the object from `parts` ([`Self::check`]'s) and its side files, then removes the
    /// upload's files; returns the object's ETag (`<md5 of the part MD5s>-<parts>`). Blocking.
    pub(super) fn run(
        &self,
        parts: &[Part],
        digests: &PartDigests,
        placement: &Placement,
    ) -> S3Result<String> {
        let object = self.object()?;
        if let Some(dir) = object.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| internal("cannot make the key's folder", e))?;
        }
        let sealed = placement.seal(&self.upload_id);
        let data = placement.data_path(&self.upload_id);
        // The data file holds every listed part in its place (or has its place for a part
        // sent again to its own file), and nobody writes into it: it becomes the object.
        // Parts stored after the listed ones would be cut away: S3 keeps them if completing
        // fails, so that case is joined by copying.
        let keeps_all = sealed
            .stored
            .iter()
            .all(|n| usize::try_from(*n).is_ok_and(|n| n <= parts.len()));
        let in_place: Option<Vec<(Place, Option<&Path>)>> = if sealed.idle && keeps_all {
            let mut end = 0;
            parts
                .iter()
                .enumerate()
                .map(|(i, part)| {
                    let place = *sealed.places.get(&i32::try_from(i + 1).ok()?)?;
                    // One after the other from the start of the file.
                    if place.offset != end {
                        return None;
                    }
                    end += place.len;
                    match &part.source {
                        Source::Placed(p) => (*p == place).then_some((place, None)),
                        Source::Own(path) => {
                            (part.len == place.len).then_some((place, Some(path.as_path())))
                        }
                    }
                })
                .collect()
        } else {
            None
        };
        let built = match in_place {
            Some(places) => placed::fill(&data, &places)
                .map(|()| {
                    placement.cut_after(&self.upload_id, places.len() as i32);
                    data
                })
                .map_err(|e| internal("cannot make the object from its parts", e)),
            None => {
                let tmp = self
                    .root
                    .join(format!(".tmp.complete-{}.internal.part", self.upload_id));
                join_parts(&tmp, parts, &data)
                    .map(|()| tmp.clone())
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        internal("cannot join the parts", e)
                    })
            }
        };
        let built = built.inspect_err(|_| placement.unseal(&self.upload_id))?;
        let data = placement.data_path(&self.upload_id);
        let info = self
            .root
            .join(format!(".tmp.complete-{}.internal.json", self.upload_id));
        // Undoes what completing did before the object moved: the upload stays as it was (its
        // placed parts in its data file), so completing can be tried again.
        let undo = || {
            if built != data {
                let _ = std::fs::remove_file(&built);
            }
            let _ = std::fs::remove_file(&info);
            placement.unseal(&self.upload_id);
        };
        let md5s: Vec<[u8; 16]> = parts.iter().map(|p| p.md5).collect();
        let e_tag = etag::multipart(&md5s);
        // The ETag's record is written before anything a reader sees changes: a full disk
        // fails here, with the former object and the upload's parts untouched. What follows
        // the object's move are renames only.
        let record = serde_json::json!({ "e_tag": e_tag }).to_string();
        if let Err(e) = std::fs::write(&info, record) {
            undo();
            return Err(internal("cannot record the object's ETag", e));
        }
        // The former object's checksums must not describe the new one.
        let _ = std::fs::remove_file(self.sidecar("internal"));
        if let Err(e) = std::fs::rename(&built, &object) {
            undo();
            return Err(internal("cannot move the object into place", e));
        }
        // The data file is the object now: no later request may take its parts from it.
        placement.forget(&self.upload_id);

        // The upload's metadata (content type, user metadata) becomes the object's; without
        // any, a former object's must not stay.
        let metadata = self.sidecar("metadata");
        match std::fs::rename(
            self.sidecar(&format!("upload-{}.metadata", self.upload_id)),
            &metadata,
        ) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_file(&metadata);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&info);
                return Err(internal("cannot keep the upload's metadata", e));
            }
        }
        std::fs::rename(&info, self.sidecar("internal")).map_err(|e| {
            let _ = std::fs::remove_file(&info);
            internal("cannot record the object's ETag", e)
        })?;

        for part in parts {
            if let Source::Own(path) = &part.source {
                let _ = std::fs::remove_file(path);
            }
        }
        let _ = std::fs::remove_file(self.root.join(format!(".upload-{}.json", self.upload_id)));
        digests.forget(&self.upload_id);
        Ok(e_tag)
    }

    fn check_if_match(&self, condition: &ETagCondition, object: &Path) -> S3Result<()> {
        if !object.is_file() {
            return Err(s3_error!(PreconditionFailed, "Object does not exist"));
        }
        let Some(expected) = condition.as_etag() else {
            return Ok(()); // `*`: it exists.
        };
        let recorded = std::fs::read(self.sidecar("internal"))
            .ok()
            .and_then(|info| serde_json::from_slice::<serde_json::Value>(&info).ok())
            .and_then(|info| info.get("e_tag")?.as_str().map(str::to_owned));
        let current = match recorded {
            Some(e_tag) => e_tag,
            None => etag::hex(&md5_of(object)?),
        };
        if expected.strong_cmp(&ETag::Strong(current)) {
            Ok(())
        } else {
            Err(s3_error!(PreconditionFailed, "ETag does not match"))
        }
    }
}

fn internal(what: &str, e: std::io::Error) -> S3Error {
    s3_error!(InternalError, "{what}: {e}")
}

/// `parts` concatenated into a new file at `to`, copied by the kernel where it can; placed
/// parts are read from the upload's data file `data`.
fn join_parts(to: &Path, parts: &[Part], data: &Path) -> std::io::Result<()> {
    let mut out = File::create(to)?;
    let mut data_file = None;
    for part in parts {
        match &part.source {
            Source::Own(path) => {
                std::io::copy(&mut File::open(path)?, &mut out)?;
            }
            Source::Placed(place) => {
                let file = match &mut data_file {
                    Some(file) => file,
                    None => data_file.insert(File::open(data)?),
                };
                file.seek(SeekFrom::Start(place.offset))?;
                let copied = std::io::copy(&mut Read::by_ref(file).take(place.len), &mut out)?;
                if copied != place.len {
                    return Err(std::io::Error::other("the upload's data file is too short"));
                }
            }
        }
    }
    out.flush()
}

/// The MD5 of a file, read in 1 MiB blocks.
fn md5_of(path: &Path) -> S3Result<[u8; 16]> {
    let hash = || -> std::io::Result<[u8; 16]> {
        let mut file = File::open(path)?;
        let mut md5 = Md5::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(md5.finalize().into());
            }
            md5.update(&buf[..n]);
        }
    };
    hash().map_err(|e| internal("cannot read a part", e))
}

/// `bytes` written to `path` through the temporary file `tmp`, so readers never see half.
pub(super) fn write_atomic(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(tmp, bytes)?;
    std::fs::rename(tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(tmp);
    })
}
