//! Parts written where they will sit in the object, so that CompleteMultipartUpload renames one
//! file instead of copying every byte again.
//!
//! s3s-fs stores each part in a file of its own, and completing joins them into a new file: the
//! whole object written a second time after its last part arrived. On a virtual machine whose
//! fresh memory is costly to touch, that was 8.5 s for a 2.8 GB NDJSON export, 40% of its wall
//! time, on one core while the other sat idle.
//!
//! An upload's parts usually arrive in order with their lengths known from their headers, so
//! where part `n` goes is known when it arrives if part `n - 1` has arrived: right after it.
//! When it has not (clients send several parts at once, and a short last part can overtake the
//! one before it), the parts still on their way are taken to be as long as the nearest part
//! before them, which all but the last part usually are; places never overlap, and completing
//! checks that they follow one another from the start of the file. A part with a place is
//! written there in one data file per upload (`.upload_id-<id>.placed`)
//! and recorded in a side file (`.upload_id-<id>.placed-<n>.json`: place, length, MD5) so that it
//! survives a restart. When the listed parts fill the data file from its start (parts sent again
//! since are copied into their places first) and no stored part follows them, completing
//! truncates it and renames it to the object. Everything else takes s3s-fs's way (a file per part, joined at completion): a part
//! whose predecessor has not arrived, a part sent again, a body of unknown length.
//!
//! What S3 guarantees stays: a part that fails (its checksum, a dropped connection) is not
//! stored and a part's earlier upload is never overwritten (a part sent again goes to its own
//! file), a part is never written outside its place, nothing is renamed while a part is still
//! being written into the file, and the data file is made once, when the upload opens (one gone
//! underneath is never made again with zeros where its parts were). A part whose request went away mid-way (the client hung
//! up) stays marked as being written, since its last write may still be under way: that upload
//! completes by copying, as s3s-fs would.

use crate::etag;
use bytes::Bytes;
use futures::StreamExt as _;
use md5::{Digest as _, Md5};
use s3s::dto::StreamingBlob;
use s3s::{S3Result, s3_error};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// Bytes gathered from the body before one write to the file.
const WRITE_BYTES: usize = 1 << 20;
/// S3's smallest part but the last.
const MIN_PART_BYTES: u64 = 5 << 20;

/// A part's place in its upload's data file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) offset: u64,
    pub(super) len: u64,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Being written: the data file must not be renamed.
    Writing,
    /// Written and checked, with its MD5 and when.
    Stored([u8; 16], SystemTime),
    /// Its bytes are not the part's (the upload failed, or they were cut away): the place stays
    /// taken so the parts after it keep theirs.
    Void,
}

#[derive(Default)]
struct Layout {
    places: BTreeMap<i32, (Place, State)>,
    /// Parts that went to files of their own: a later upload of one must not go to the data
    /// file, where it would be taken for older than the file.
    own_files: BTreeSet<i32>,
    /// Completing: no new part goes to the data file.
    sealed: bool,
}

/// The placed parts of every open upload.
pub(super) struct Placement {
    root: PathBuf,
    uploads: Mutex<HashMap<String, Layout>>,
}

/// A stored part in the data file, as completing sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct StoredPlace {
    pub(super) place: Place,
    pub(super) md5: [u8; 16],
}

/// What completing may do with an upload's data file, taken under its seal.
pub(super) struct Sealed {
    /// Every place taken, stored or not.
    pub(super) places: BTreeMap<i32, Place>,
    /// The parts stored in their places (completing must not cut one away).
    pub(super) stored: BTreeSet<i32>,
    /// No part is being written into the file.
    pub(super) idle: bool,
}

impl Placement {
    /// The placements of the open `uploads` under `root`, from their side files; side files of
    /// uploads that are no longer open are removed.
    pub(super) fn recover(root: &Path, open: &BTreeSet<String>) -> std::io::Result<Self> {
        let mut uploads: HashMap<String, Layout> = HashMap::new();
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(rest) = name.strip_prefix(".upload_id-") else {
                continue;
            };
            let Some((id, what)) = rest.split_once('.') else {
                continue;
            };
            if !open.contains(id) {
                if what == "placed" || what.starts_with("placed-") {
                    let _ = std::fs::remove_file(entry.path());
                }
                continue;
            }
            if let Some(number) = what.strip_prefix("part-").and_then(|n| n.parse().ok()) {
                uploads
                    .entry(id.to_owned())
                    .or_default()
                    .own_files
                    .insert(number);
            } else if let Some(number) = what
                .strip_prefix("placed-")
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<i32>().ok())
            {
                let Some((place, md5)) = std::fs::read(entry.path())
                    .ok()
                    .and_then(|bytes| read_record(&bytes))
                else {
                    continue;
                };
                let when = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or_else(|_| SystemTime::now());
                uploads
                    .entry(id.to_owned())
                    .or_default()
                    .places
                    .insert(number, (place, State::Stored(md5, when)));
            }
        }
        for id in open {
            let data = root.join(format!(".upload_id-{id}.placed"));
            if !data.exists() {
                // Places recorded in a file that is gone hold nothing (an upload opened by an
                // older wharf has neither).
                if let Some(gone) = uploads.remove(id) {
                    for number in gone.places.keys() {
                        let record = format!(".upload_id-{id}.placed-{number}.json");
                        let _ = std::fs::remove_file(root.join(record));
                    }
                }
                if File::create(&data).is_err() {
                    continue;
                }
            }
            uploads.entry(id.clone()).or_default();
        }
        Ok(Self {
            root: root.to_owned(),
            uploads: Mutex::new(uploads),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Layout>> {
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn data_path(&self, upload_id: &str) -> PathBuf {
        self.root.join(format!(".upload_id-{upload_id}.placed"))
    }

    fn record_path(&self, upload_id: &str, number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.placed-{number}.json"))
    }

    fn own_file(&self, upload_id: &str, number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.part-{number}"))
    }

    /// Takes part `number`'s place in the data file if it has one (at 0 for part 1; see below
    /// for the others), when this part was never uploaded before and the place runs into no
    /// other. `None`: the part goes to a file of its own.
    pub(super) fn reserve(&self, upload_id: &str, number: i32, len: u64) -> Option<Place> {
        let mut uploads = self.lock();
        // An upload completed or aborted meanwhile has no layout: s3s-fs refuses the part.
        let layout = uploads.get_mut(upload_id)?;
        // The nearest place before it (its predecessor's, when that one has arrived).
        let before = layout.places.range(..number).next_back();
        let offset = match (number, before) {
            (1, _) => Some(0),
            // Right after it, and after the parts still on their way between the two (parts
            // sent side by side arrive in any order, a short last part too), taken to be as
            // long as it: every part but the last usually is. Completing checks that they were.
            (2..=10_000, Some((&k, (p, _)))) => {
                Some(p.offset + p.len + u64::try_from(number - 1 - k).unwrap_or(0) * p.len)
            }
            // None before it: as if the parts before it were as long as it, unless it is under
            // S3's 5 MiB minimum (the last part, shorter than the others).
            (2..=10_000, None) if len >= MIN_PART_BYTES => {
                Some(u64::try_from(number - 1).unwrap_or(0) * len)
            }
            _ => None,
        };
        // The places around it: it must not run into either.
        let previous = before.map(|(_, (p, _))| p.offset + p.len);
        let next = (layout.places.range(number + 1..).next()).map(|(_, (p, _))| p.offset);
        let free = |offset: u64| {
            !layout.sealed
                && len > 0
                && !layout.places.contains_key(&number)
                && previous.is_none_or(|end| end <= offset)
                && next.is_none_or(|next| offset + len <= next)
                // UploadPartCopy writes a part's own file without passing here.
                && !layout.own_files.contains(&number)
                && !self.own_file(upload_id, number).exists()
        };
        match offset {
            Some(offset) if free(offset) => {
                let place = Place { offset, len };
                layout.places.insert(number, (place, State::Writing));
                Some(place)
            }
            // A file of its own, for this upload of the part and every later one.
            _ => {
                layout.own_files.insert(number);
                None
            }
        }
    }

    /// Records part `number`, written at its place with this MD5: in its side file, then here.
    /// Blocking.
    pub(super) fn stored(
        &self,
        upload_id: &str,
        number: i32,
        place: Place,
        md5: [u8; 16],
    ) -> S3Result<()> {
        let record = serde_json::json!({
            "offset": place.offset,
            "len": place.len,
            "md5": etag::hex(&md5),
        });
        let path = self.record_path(upload_id, number);
        let tmp = self
            .root
            .join(format!(".tmp.placed-{upload_id}-{number}.internal.part"));
        super::assemble::write_atomic(&tmp, &path, record.to_string().as_bytes())
            .map_err(|e| s3_error!(InternalError, "cannot record part {number}: {e}"))?;
        let mut uploads = self.lock();
        match uploads
            .get_mut(upload_id)
            .and_then(|l| l.places.get_mut(&number))
        {
            Some((_, state)) => *state = State::Stored(md5, SystemTime::now()),
            // Aborted or completed meanwhile: the record must not outlive the upload.
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// Part `number`'s upload failed: its place holds nothing.
    pub(super) fn failed(&self, upload_id: &str, number: i32) {
        if let Some((_, state)) = self
            .lock()
            .get_mut(upload_id)
            .and_then(|l| l.places.get_mut(&number))
        {
            *state = State::Void;
        }
    }

    /// The stored parts of an upload in the data file, by part number, with when each was
    /// stored (for ListParts).
    pub(super) fn stored_parts(&self, upload_id: &str) -> BTreeMap<i32, (StoredPlace, SystemTime)> {
        let uploads = self.lock();
        let Some(layout) = uploads.get(upload_id) else {
            return BTreeMap::new();
        };
        layout
            .places
            .iter()
            .filter_map(|(number, (place, state))| match state {
                State::Stored(md5, when) => Some((
                    *number,
                    (
                        StoredPlace {
                            place: *place,
                            md5: *md5,
                        },
                        *when,
                    ),
                )),
                _ => None,
            })
            .collect()
    }

    /// Stops new parts from going to the data file while an upload completes.
    pub(super) fn seal(&self, upload_id: &str) -> Sealed {
        let mut uploads = self.lock();
        let Some(layout) = uploads.get_mut(upload_id) else {
            return Sealed {
                places: BTreeMap::new(),
                stored: BTreeSet::new(),
                idle: true,
            };
        };
        layout.sealed = true;
        Sealed {
            places: layout.places.iter().map(|(n, (p, _))| (*n, *p)).collect(),
            stored: (layout.places.iter())
                .filter(|(_, (_, state))| matches!(state, State::Stored(..)))
                .map(|(n, _)| *n)
                .collect(),
            idle: !layout
                .places
                .values()
                .any(|(_, state)| matches!(state, State::Writing)),
        }
    }

    /// A new upload: its data file, empty, and its parts may take places. Without the file,
    /// every part goes to a file of its own.
    pub(super) fn open(&self, upload_id: &str) {
        if File::create(self.data_path(upload_id)).is_ok() {
            self.lock().entry(upload_id.to_owned()).or_default();
        }
    }

    /// Completing failed: new parts may go to the data file again.
    pub(super) fn unseal(&self, upload_id: &str) {
        if let Some(layout) = self.lock().get_mut(upload_id) {
            layout.sealed = false;
        }
    }

    /// The parts after `last` were cut from the data file: they are no longer stored.
    pub(super) fn cut_after(&self, upload_id: &str, last: i32) {
        let mut uploads = self.lock();
        let Some(layout) = uploads.get_mut(upload_id) else {
            return;
        };
        for (number, (_, state)) in layout.places.range_mut(last + 1..) {
            *state = State::Void;
            let _ = std::fs::remove_file(self.record_path(upload_id, *number));
        }
    }

    /// Forgets an upload (completed or aborted) and removes its placed files. Blocking.
    pub(super) fn forget(&self, upload_id: &str) {
        let layout = self.lock().remove(upload_id);
        if let Some(layout) = layout {
            for number in layout.places.keys() {
                let _ = std::fs::remove_file(self.record_path(upload_id, *number));
            }
        }
        let _ = std::fs::remove_file(self.data_path(upload_id));
    }
}

fn read_record(bytes: &[u8]) -> Option<(Place, [u8; 16])> {
    let record: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let place = Place {
        offset: record.get("offset")?.as_u64()?,
        len: record.get("len")?.as_u64()?,
    };
    let md5 = etag::md5(record.get("md5")?.as_str()?)?;
    Some((place, md5))
}

/// Writes `body` at `place` in the data file `path` and returns its MD5. Fails, having written
/// nothing outside `place`, when the body fails or is not exactly `place.len` bytes.
pub(super) async fn write(
    path: PathBuf,
    place: Place,
    mut body: StreamingBlob,
) -> S3Result<[u8; 16]> {
    // Never created here: a file gone (aborted underneath) must not come back with zeros where
    // the earlier parts were. `open` and `recover` make it.
    let file = tokio::task::spawn_blocking(move || OpenOptions::new().write(true).open(&path))
        .await
        .map_err(|e| s3_error!(InternalError, "writing the part stopped: {e}"))?
        .map_err(|e| s3_error!(InternalError, "cannot open the upload's data file: {e}"))?;
    let file = Arc::new(file);
    let mut md5 = Md5::new();
    let (mut written, mut gathered) = (0u64, Vec::<Bytes>::new());
    let mut gathered_len = 0usize;
    let mut previous: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;
    loop {
        let chunk = match body.next().await {
            Some(Ok(chunk)) => Some(chunk),
            Some(Err(e)) => {
                finish(previous).await.ok();
                // As s3s-fs answers it: a 500, which clients send again (a payload failing
                // its signed SHA-256 ends the body with an error).
                return Err(s3_error!(InternalError, "reading the part stopped: {e}"));
            }
            None => None,
        };
        let end = chunk.is_none();
        if let Some(chunk) = chunk {
            if written + (gathered_len + chunk.len()) as u64 > place.len {
                finish(previous).await.ok();
                return Err(s3_error!(
                    IncompleteBody,
                    "the part is longer than its Content-Length ({} bytes)",
                    place.len
                ));
            }
            md5.update(&chunk);
            gathered_len += chunk.len();
            gathered.push(chunk);
        }
        if gathered_len >= WRITE_BYTES || (end && gathered_len > 0) {
            // One write in flight while the next bytes arrive.
            finish(previous.take()).await?;
            let (file, chunks, at) = (
                file.clone(),
                std::mem::take(&mut gathered),
                place.offset + written,
            );
            written += gathered_len as u64;
            gathered_len = 0;
            previous = Some(tokio::task::spawn_blocking(move || {
                let mut at = at;
                for chunk in chunks {
                    file.write_all_at(&chunk, at)?;
                    at += chunk.len() as u64;
                }
                Ok(())
            }));
        }
        if end {
            break;
        }
    }
    finish(previous).await?;
    if written != place.len {
        return Err(s3_error!(
            IncompleteBody,
            "the part ended after {written} of its {} bytes",
            place.len
        ));
    }
    Ok(md5.finalize().into())
}

async fn finish(write: Option<tokio::task::JoinHandle<std::io::Result<()>>>) -> S3Result<()> {
    let Some(write) = write else { return Ok(()) };
    write
        .await
        .map_err(|e| s3_error!(InternalError, "writing the part stopped: {e}"))?
        .map_err(|e| s3_error!(InternalError, "cannot write the part: {e}"))
}

/// The data file made into the object: the parts sent again copied into their places, the
/// file cut after the last listed part. `parts` are the listed parts in order, each with the
/// file it was sent again in, if any. Blocking.
pub(super) fn fill(data: &Path, parts: &[(Place, Option<&Path>)]) -> std::io::Result<()> {
    // The file holds every placed part whole, or it is not this upload's any more (cutting it
    // to length would add zeros). Parts all sent again may never have opened it.
    let placed_end = parts
        .iter()
        .filter(|(_, own)| own.is_none())
        .map(|(place, _)| place.offset + place.len)
        .max();
    let file = OpenOptions::new()
        .write(true)
        .create(placed_end.is_none())
        .truncate(false)
        .open(data)?;
    if placed_end.is_some_and(|end| end > file.metadata().map_or(0, |m| m.len())) {
        return Err(std::io::Error::other(
            "the upload's data file is shorter than its parts",
        ));
    }
    for (place, own) in parts {
        if let Some(own) = own {
            let mut from = File::open(own)?;
            let mut to = &file;
            std::io::Seek::seek(&mut to, std::io::SeekFrom::Start(place.offset))?;
            let copied = std::io::copy(&mut from, &mut to)?;
            if copied != place.len {
                return Err(std::io::Error::other("a part's file changed size"));
            }
        }
    }
    let end = parts.last().map_or(0, |(p, _)| p.offset + p.len);
    file.set_len(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(root: &Path) -> Placement {
        Placement::recover(root, &BTreeSet::new()).expect("recover")
    }

    #[test]
    fn each_part_takes_the_place_after_its_predecessor_once() {
        let root = tempfile::tempdir().expect("tmp");
        let p = placement(root.path());
        assert_eq!(p.reserve("u", 1, 10), None, "not an open upload");
        for id in ["u", "v", "w", "x", "y", "v2", "z"] {
            p.open(id);
        }
        assert_eq!(p.reserve("u", 1, 10), Some(Place { offset: 0, len: 10 }));
        assert_eq!(p.reserve("u", 2, 7), Some(Place { offset: 10, len: 7 }));
        // Part 4 before part 3: after part 2 and a part 3 as long as part 2.
        assert_eq!(p.reserve("u", 4, 5), Some(Place { offset: 24, len: 5 }));
        // Part 1 again: its place is taken; part 3, longer than part 2: no room.
        assert_eq!(p.reserve("u", 1, 10), None);
        assert_eq!(p.reserve("u", 3, 8), None);
        // Part 3 went to its own file once: so does every later upload of it.
        assert_eq!(p.reserve("u", 3, 7), None);
        // Empty bodies, part numbers S3 refuses, another upload.
        assert_eq!(p.reserve("v", 1, 0), None);
        assert_eq!(p.reserve("v", 0, 3), None);
        assert_eq!(p.reserve("v", 10_001, 3), None);
        assert_eq!(p.reserve("w", 1, 3), Some(Place { offset: 0, len: 3 }));
        // Parts of one length arriving out of order each get their place; a part too short
        // to be any but the last is placed only after its predecessor.
        const M: u64 = MIN_PART_BYTES;
        let at = |offset, len| Some(Place { offset, len });
        assert_eq!(p.reserve("x", 3, M), at(2 * M, M));
        assert_eq!(p.reserve("x", 2, M), at(M, M));
        assert_eq!(p.reserve("x", 1, M), at(0, M));
        assert_eq!(p.reserve("y", 3, 4), None);
        assert_eq!(p.reserve("y", 1, M), at(0, M));
        assert_eq!(p.reserve("y", 2, M), at(M, M));
        // A short last part before its predecessor: after it, at the stride of the part
        // before both.
        assert_eq!(p.reserve("v2", 1, M), at(0, M));
        assert_eq!(p.reserve("v2", 3, 4), at(2 * M, 4));
        assert_eq!(p.reserve("v2", 2, M), at(M, M));
        // A last part that is not short arrives early: its guessed place leaves no room for
        // its predecessor, which goes to a file of its own.
        assert_eq!(p.reserve("z", 3, M + 1), at(2 * M + 2, M + 1));
        assert_eq!(p.reserve("z", 1, 2 * M), at(0, 2 * M));
        assert_eq!(p.reserve("z", 2, 2 * M), None);
        // Sealed while completing: nothing new goes in; unsealed after a failure.
        let sealed = p.seal("u");
        assert!(!sealed.idle, "parts 1, 2 and 4 are still being written");
        assert_eq!(p.reserve("u", 5, 1), None);
        p.unseal("u");
        // Part 5 was refused a place (to its own file); part 6 after part 4 and a part 5 as
        // long as part 4, which completing finds to be so, or not.
        assert_eq!(p.reserve("u", 6, 1), Some(Place { offset: 34, len: 1 }));
    }

    #[test]
    fn recorded_places_come_back_and_a_new_place_never_overlaps_them() {
        let root = tempfile::tempdir().expect("tmp");
        let p = placement(root.path());
        p.open("u");
        for (number, len) in [(1, 10), (2, 10), (3, 10)] {
            let place = p.reserve("u", number, len).expect("place");
            if number != 2 {
                p.stored("u", number, place, [number as u8; 16])
                    .expect("record");
            }
        }
        assert!(!p.seal("u").idle, "part 2 is still being written");
        // A restart: part 2 was never recorded, 1 and 3 were.
        let open = BTreeSet::from(["u".to_owned()]);
        let p = Placement::recover(root.path(), &open).expect("recover");
        let stored: Vec<(i32, Place)> = p
            .stored_parts("u")
            .into_iter()
            .map(|(n, (s, _))| (n, s.place))
            .collect();
        assert_eq!(
            stored,
            [
                (1, Place { offset: 0, len: 10 }),
                (
                    3,
                    Place {
                        offset: 20,
                        len: 10
                    }
                )
            ]
        );
        // Part 2 again, longer than its old place: it would run into part 3's.
        assert_eq!(p.reserve("u", 2, 11), None);
        // Its data file gone underneath: the recorded places hold nothing, and a new empty
        // file takes the parts from now on.
        std::fs::remove_file(p.data_path("u")).expect("remove the data file");
        let p = Placement::recover(root.path(), &open).expect("recover");
        assert!(
            p.stored_parts("u").is_empty(),
            "no place comes back without its file"
        );
        assert_eq!(p.reserve("u", 1, 10), Some(Place { offset: 0, len: 10 }));
        assert_eq!(
            std::fs::metadata(p.data_path("u"))
                .expect("data file")
                .len(),
            0
        );
        // The records of an upload no longer open go at the next start.
        let p = Placement::recover(root.path(), &BTreeSet::new()).expect("recover");
        assert!(p.stored_parts("u").is_empty());
        let left: Vec<_> = std::fs::read_dir(root.path())
            .expect("dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
