//! Tar streams into a snapshot, and a snapshot's subtree back into a tar stream.
//!
//! The engine's archive API answers with a tar stream per path. [`TarSource`] reads those
//! streams one after another on a thread of its own and hands rustic's archiver one entry at a
//! time: the archiver reads files in parallel and out of order, so each file's content is read
//! off the stream before the next entry is parsed — into memory up to [`IN_MEMORY`] bytes, into
//! an anonymous temporary file beyond. At most [`QUEUE`] entries wait, so memory stays flat
//! whatever the size of the volume.

use rustic_core::jiff::Timestamp;
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{IndexedFull, LsOptions, ReadSource, ReadSourceEntry, Repository, RusticResult};
use std::ffi::OsStr;
use std::io::{self, Cursor, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Files up to this size are held in memory while they wait for the archiver.
pub const IN_MEMORY: u64 = 4 << 20;
/// Entries read ahead of the archiver.
pub const QUEUE: usize = 16;

/// Progress of a copy, reported after each file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub files: u64,
    pub bytes: u64,
    /// The path in the snapshot of the last file.
    pub current: String,
}

pub type OnProgress = Arc<dyn Fn(&Progress) + Send + Sync>;

/// One tar stream and where its root entry goes in the snapshot.
pub struct Part {
    /// Where the stream's first entry (the requested file or directory) lands.
    pub snapshot_path: PathBuf,
    /// Opens the stream (called on the reading thread, when its turn comes).
    pub open: Box<dyn FnOnce() -> io::Result<Box<dyn Read + Send>> + Send>,
}

/// A file's content, waiting for the archiver.
pub enum Content {
    Memory(Cursor<Vec<u8>>),
    File(std::fs::File),
}

impl Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Content::Memory(c) => c.read(buf),
            Content::File(f) => f.read(buf),
        }
    }
}

type Entry = RusticResult<ReadSourceEntry<Content>>;

/// What a finished copy saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
    /// Entries that were not copied, with the reason (hard links, sockets).
    pub skipped: Vec<String>,
}

/// A [`ReadSource`] over tar streams. The reading thread starts with [`TarSource::start`]; its
/// outcome (and the first error, which rustic's archiver would only log) comes from
/// [`TarSource::finish`].
pub struct TarSource {
    entries: Mutex<Option<Receiver<Entry>>>,
    reader: Mutex<Option<std::thread::JoinHandle<Result<Copied, String>>>>,
}

impl TarSource {
    /// Starts reading `parts` in the order of their snapshot paths (the order a snapshot's tree
    /// needs: each directory's entries sorted by name, parents first).
    pub fn start(mut parts: Vec<Part>, on_progress: OnProgress) -> TarSource {
        parts.sort_by(|a, b| a.snapshot_path.cmp(&b.snapshot_path));
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let reader = std::thread::Builder::new()
            .name("backup-reader".into())
            .spawn(move || read_parts(parts, &tx, &*on_progress))
            .map_err(|e| tracing::error!(error = %e, "cannot start the backup reader"))
            .ok();
        TarSource { entries: Mutex::new(Some(rx)), reader: Mutex::new(reader) }
    }

    /// Waits for the reading thread: what it copied, or why it stopped.
    pub fn finish(&self) -> Result<Copied, String> {
        // Whatever the archiver left unread is dropped, so a reader blocked on it ends.
        drop(self.entries.lock().map(|mut e| e.take()));
        let handle = self.reader.lock().ok().and_then(|mut r| r.take());
        match handle.map(std::thread::JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Err("the backup reader panicked".into()),
            None => Err("the backup reader did not start".into()),
        }
    }
}

impl ReadSource for TarSource {
    type Open = Content;
    type Iter = mpsc::IntoIter<Entry>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        let rx = self.entries.lock().ok().and_then(|mut e| e.take());
        rx.unwrap_or_else(|| mpsc::sync_channel(0).1).into_iter()
    }
}

fn read_parts(
    parts: Vec<Part>,
    tx: &SyncSender<Entry>,
    on_progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Copied, String> {
    let mut copied = Copied::default();
    for part in parts {
        let at = part.snapshot_path.display().to_string();
        let stream = (part.open)().map_err(|e| format!("{at}: {e}"))?;
        let mut archive = tar::Archive::new(stream);
        let entries = archive.entries().map_err(|e| format!("{at}: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("{at}: the stream broke off: {e}"))?;
            let inside = entry.path().map_err(|e| format!("{at}: {e}"))?.into_owned();
            let path = snapshot_path(&part.snapshot_path, &inside)?;
            let header = entry.header().clone();
            let kind = header.entry_type();
            let name = path.file_name().map(OsStr::to_os_string).unwrap_or_default();
            let meta = metadata(&header);
            let (node_type, content) = if kind.is_dir() {
                (NodeType::Dir, None)
            } else if kind.is_file() {
                let content = read_content(&mut entry).map_err(|e| format!("{}: {e}", path.display()))?;
                copied.files += 1;
                copied.bytes += meta.size;
                on_progress(&Progress {
                    files: copied.files,
                    bytes: copied.bytes,
                    current: path.display().to_string(),
                });
                (NodeType::File, Some(content))
            } else if kind.is_symlink() {
                let target = entry.link_name().ok().flatten().map(|t| t.into_owned()).unwrap_or_default();
                (NodeType::from_link(&target), None)
            } else if kind.is_fifo() {
                (NodeType::Fifo, None)
            } else if kind.is_character_special() || kind.is_block_special() {
                let major = u64::from(header.device_major().ok().flatten().unwrap_or(0));
                let minor = u64::from(header.device_minor().ok().flatten().unwrap_or(0));
                let device = (major << 8) | minor;
                if kind.is_character_special() {
                    (NodeType::Chardev { device }, None)
                } else {
                    (NodeType::Dev { device }, None)
                }
            } else {
                copied.skipped.push(format!("{}: a {kind:?} entry is not copied", path.display()));
                continue;
            };
            let node = Node::new_node(&name, node_type, meta);
            if tx.send(Ok(ReadSourceEntry { path, node, open: content })).is_err() {
                return Err("the archiver stopped reading".into());
            }
        }
    }
    Ok(copied)
}

/// Where a tar entry lands: its first component is the part's root. Entries that would leave
/// the part (`..`, absolute paths) are refused.
fn snapshot_path(root: &Path, inside: &Path) -> Result<PathBuf, String> {
    let mut path = root.to_path_buf();
    for c in inside.components().skip(1) {
        match c {
            Component::Normal(p) => path.push(p),
            Component::CurDir => {}
            _ => return Err(format!("{}: the stream has an entry {inside:?} outside it", root.display())),
        }
    }
    Ok(path)
}

fn read_content(entry: &mut impl Read) -> io::Result<Content> {
    let mut head = Vec::new();
    let read = entry.take(IN_MEMORY + 1).read_to_end(&mut head)?;
    if (read as u64) <= IN_MEMORY {
        return Ok(Content::Memory(Cursor::new(head)));
    }
    let mut file = tempfile::tempfile()?;
    file.write_all(&head)?;
    io::copy(entry, &mut file)?;
    file.rewind()?;
    Ok(Content::File(file))
}

// Go's fs.FileMode bits, which restic stores (https://pkg.go.dev/io/fs#FileMode).
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_FIFO: u32 = 1 << 25;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// A tar header's mode and type as restic stores them.
pub fn go_mode(unix_mode: u32, kind: tar::EntryType) -> u32 {
    let mut mode = unix_mode & 0o777;
    if kind.is_dir() {
        mode |= GO_DIR;
    } else if kind.is_symlink() {
        mode |= GO_SYMLINK;
    } else if kind.is_fifo() {
        mode |= GO_FIFO;
    } else if kind.is_character_special() {
        mode |= GO_DEVICE | GO_CHARDEV;
    } else if kind.is_block_special() {
        mode |= GO_DEVICE;
    }
    for (unix, go) in [(0o4000, GO_SETUID), (0o2000, GO_SETGID), (0o1000, GO_STICKY)] {
        if unix_mode & unix != 0 {
            mode |= go;
        }
    }
    mode
}

/// The permission bits (with setuid, setgid, sticky) of a mode restic stored.
pub fn unix_mode(go: u32) -> u32 {
    let mut mode = go & 0o777;
    for (unix, bit) in [(0o4000, GO_SETUID), (0o2000, GO_SETGID), (0o1000, GO_STICKY)] {
        if go & bit != 0 {
            mode |= unix;
        }
    }
    mode
}

fn metadata(h: &tar::Header) -> Metadata {
    Metadata {
        mode: h.mode().ok().map(|mode| go_mode(mode, h.entry_type())),
        mtime: h.mtime().ok().and_then(|t| Timestamp::from_second(i64::try_from(t).ok()?).ok()),
        uid: h.uid().ok().and_then(|u| u32::try_from(u).ok()),
        gid: h.gid().ok().and_then(|g| u32::try_from(g).ok()),
        user: h.username().ok().flatten().filter(|u| !u.is_empty()).map(String::from),
        group: h.groupname().ok().flatten().filter(|g| !g.is_empty()).map(String::from),
        size: if h.entry_type().is_file() { h.size().unwrap_or(0) } else { 0 },
        ..Metadata::default()
    }
}

/// Reads a file of a snapshot, a chunk at a time.
struct SnapshotFileReader<'a, S: IndexedFull> {
    repo: &'a Repository<S>,
    file: rustic_core::vfs::OpenFile,
    offset: usize,
}

impl<S: IndexedFull> Read for SnapshotFileReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(1 << 20);
        let bytes =
            self.repo.read_file_at(&self.file, self.offset, want).map_err(|e| io::Error::other(e.display_log()))?;
        let n = bytes.len().min(want);
        buf[..n].copy_from_slice(&bytes[..n]);
        self.offset += n;
        Ok(n)
    }
}

/// Writes the subtree below `root` (not `root` itself) as a tar stream whose paths are relative
/// to it, as the engine's archive API extracts them at a directory. Returns what it wrote.
pub fn write_tar<S: IndexedFull>(
    repo: &Repository<S>,
    root: &Node,
    out: impl Write,
    on_progress: &OnProgress,
) -> Result<Copied, String> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let mut copied = Copied::default();
    let walk = repo.ls(root, &LsOptions::default()).map_err(|e| e.display_log())?;
    for item in walk {
        let (path, node) = item.map_err(|e| e.display_log())?;
        let mut h = tar::Header::new_gnu();
        h.set_mode(node.meta.mode.map_or(0o644, unix_mode));
        h.set_uid(u64::from(node.meta.uid.unwrap_or(0)));
        h.set_gid(u64::from(node.meta.gid.unwrap_or(0)));
        h.set_mtime(node.meta.mtime.map_or(0, |t| u64::try_from(t.as_second()).unwrap_or(0)));
        if let Some(u) = &node.meta.user {
            let _ = h.set_username(u);
        }
        if let Some(g) = &node.meta.group {
            let _ = h.set_groupname(g);
        }
        let written = match &node.node_type {
            NodeType::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, &path, io::empty())
            }
            NodeType::File => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(node.meta.size);
                let file = repo.open_file(&node).map_err(|e| e.display_log())?;
                let reader = SnapshotFileReader { repo, file, offset: 0 };
                copied.files += 1;
                copied.bytes += node.meta.size;
                on_progress(&Progress {
                    files: copied.files,
                    bytes: copied.bytes,
                    current: path.display().to_string(),
                });
                tar.append_data(&mut h, &path, reader)
            }
            NodeType::Symlink { .. } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &path, node.node_type.to_link())
            }
            other => {
                copied.skipped.push(format!("{}: a {other} is not restored", path.display()));
                continue;
            }
        };
        written.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    tar.into_inner().and_then(|mut w| w.flush()).map_err(|e| e.to_string())?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn modes_round_trip_through_go_bits() {
        assert_eq!(go_mode(0o755, tar::EntryType::Directory), GO_DIR | 0o755);
        assert_eq!(go_mode(0o4755, tar::EntryType::Regular), GO_SETUID | 0o755);
        assert_eq!(go_mode(0o777, tar::EntryType::Symlink), GO_SYMLINK | 0o777);
        for m in [0o644, 0o755, 0o4755, 0o2750, 0o1777, 0o600] {
            assert_eq!(unix_mode(go_mode(m, tar::EntryType::Regular)), m);
        }
    }

    #[test]
    fn entries_land_under_their_part_and_never_outside() {
        let root = Path::new("/var/lib/docker/volumes/app_data/_data");
        assert_eq!(snapshot_path(root, Path::new("data/a/b.sql")).unwrap(), root.join("a/b.sql"));
        assert_eq!(snapshot_path(root, Path::new("backup.sql")).unwrap(), root);
        assert!(snapshot_path(root, Path::new("data/../../etc/passwd")).is_err());
    }

    /// A tar with a directory, a small and a large file, a symlink and a sub-directory.
    fn sample_tar(big: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_mtime(1_700_000_000);
            h.set_uid(999);
            h.set_gid(999);
            h.set_size(data.len() as u64);
            match link {
                Some(l) => b.append_link(&mut h, path, l).unwrap(),
                None => b.append_data(&mut h, path, data).unwrap(),
            }
        };
        add("files/", tar::EntryType::Directory, 0o750, b"", None);
        add("files/a.txt", tar::EntryType::Regular, 0o640, b"hello\n", None);
        add("files/link", tar::EntryType::Symlink, 0o777, b"", Some("sub/big.bin"));
        add("files/sub/", tar::EntryType::Directory, 0o755, b"", None);
        add("files/sub/big.bin", tar::EntryType::Regular, 0o600, big, None);
        b.into_inner().unwrap()
    }

    #[test]
    fn a_tar_stream_goes_into_a_snapshot_and_comes_back_the_same() {
        use crate::repo::{Location, Password, Repo};
        let dir = tempfile::tempdir().unwrap();
        let at = Location::Local(dir.path().join("repo"));
        let pw = Password::new("pw").unwrap();
        let big: Vec<u8> = (0..(IN_MEMORY as usize * 2)).map(|i| (i * 7 % 253) as u8).collect();
        let tarball = sample_tar(&big);
        let root = PathBuf::from("/var/lib/docker/volumes/s_files/_data");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let progress: OnProgress = Arc::new(move |p: &Progress| seen2.lock().unwrap().push(p.clone()));
        let part = Part {
            snapshot_path: root.clone(),
            open: Box::new(move || Ok(Box::new(Cursor::new(tarball)) as Box<dyn Read + Send>)),
        };
        let (_, repo) = Repo::open_or_init(&at, &pw).unwrap().for_backup().unwrap();
        let source = TarSource::start(vec![part], progress.clone());
        let mut opts = rustic_core::BackupOptions::default();
        opts.parent_opts.force = true;
        opts.no_scan = true;
        let snap = repo
            .archive(
                &opts,
                &source,
                rustic_core::SnapshotOptions::default().to_snapshot().unwrap(),
                std::slice::from_ref(&root),
            )
            .unwrap();
        let copied = source.finish().unwrap();
        assert_eq!((copied.files, copied.bytes), (2, 6 + big.len() as u64));
        assert_eq!(seen.lock().unwrap().last().unwrap().files, 2, "progress after each file");

        let (_, repo) = Repo::open_or_init(&at, &pw).unwrap().for_reading().unwrap();
        let node = repo.node_from_snapshot_and_path(&snap, "/var/lib/docker/volumes/s_files/_data").unwrap();
        let mut out = Vec::new();
        write_tar(&repo, &node, &mut out, &progress).unwrap();
        let mut back = tar::Archive::new(Cursor::new(out));
        let mut entries = BTreeMap::new();
        for e in back.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            entries.insert(path, (h.entry_type(), h.mode().unwrap(), h.uid().unwrap(), h.mtime().unwrap(), data, link));
        }
        let names: Vec<&str> = entries.keys().map(String::as_str).collect();
        assert_eq!(names, ["a.txt", "link", "sub", "sub/big.bin"]);
        assert_eq!(entries["a.txt"].4, b"hello\n");
        assert_eq!((entries["a.txt"].1, entries["a.txt"].2, entries["a.txt"].3), (0o640, 999, 1_700_000_000));
        assert_eq!(entries["sub/big.bin"].4, big);
        assert_eq!(entries["sub/big.bin"].1, 0o600);
        assert_eq!(entries["link"].5.as_deref(), Some("sub/big.bin"));
        assert!(entries["sub"].0.is_dir());
    }

    #[test]
    fn a_stream_that_breaks_off_is_reported() {
        let good = sample_tar(b"0123456789");
        let cut = good[..good.len() / 2].to_vec();
        let part = Part {
            snapshot_path: PathBuf::from("/v/_data"),
            open: Box::new(move || Ok(Box::new(Cursor::new(cut)) as Box<dyn Read + Send>)),
        };
        let source = TarSource::start(vec![part], Arc::new(|_: &Progress| {}));
        let drained: Vec<_> = source.entries().collect();
        assert!(!drained.is_empty());
        assert!(source.finish().is_err(), "a cut stream passed for a whole one");
    }

    #[test]
    fn large_files_spill_to_disk_and_read_back_whole() {
        let big: Vec<u8> = (0..(IN_MEMORY as usize + 1000)).map(|i| (i % 251) as u8).collect();
        let mut c = read_content(&mut Cursor::new(big.clone())).unwrap();
        assert!(matches!(c, Content::File(_)));
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back, big);
        let small = read_content(&mut Cursor::new(b"dump".to_vec())).unwrap();
        assert!(matches!(small, Content::Memory(_)));
    }
}
