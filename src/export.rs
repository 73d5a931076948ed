//! Statistics as JSON, and writing them to a file so that a reader never
//! sees half of one.
//!
//! The document's schema is in `docs/manager.md`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::circuit::CircuitStats;
use crate::health::HealthSnapshot;

/// The version of the export document's schema, written as `schema_version`.
/// It grows when a field changes meaning or goes away, not when one is added.
pub const EXPORT_SCHEMA_VERSION: u32 = 1;

/// Everything a manager knows about its circuits, as exported.
///
/// ```
/// use vibezen_recovery::export::StatsExport;
///
/// let export = StatsExport::new(Vec::new());
/// let json: serde_json::Value = serde_json::from_str(&export.to_json())?;
/// assert_eq!(json["health"]["health_score"], 1.0);
/// assert_eq!(json["circuits"], serde_json::json!([]));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsExport {
    /// [`EXPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the export was made, in wall-clock time.
    pub exported_at: DateTime<Utc>,
    /// The health of the system and of each circuit.
    pub health: HealthSnapshot,
    /// Every circuit's statistics, sorted by name.
    pub circuits: Vec<CircuitStats>,
}

impl StatsExport {
    /// The export of these circuits, made now.
    pub fn new(mut circuits: Vec<CircuitStats>) -> Self {
        circuits.sort_by(|a, b| a.name.cmp(&b.name));
        StatsExport {
            schema_version: EXPORT_SCHEMA_VERSION,
            exported_at: Utc::now(),
            health: HealthSnapshot::from_stats(&circuits),
            circuits,
        }
    }

    /// The export as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Only structs, strings, numbers, booleans, timestamps and lists: no
        // map with a non-string key, nothing that can refuse to serialize.
        serde_json::to_string_pretty(self).expect("statistics always serialize to JSON")
    }
}

/// Writing statistics to a file failed; the file at the path is as it was.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExportError {
    /// The path cannot name a file (it is empty or ends in `..`).
    InvalidPath {
        /// The path as given.
        path: PathBuf,
    },
    /// A step of the write failed.
    Io {
        /// The file that was to be written.
        path: PathBuf,
        /// What was being done.
        step: WriteStep,
        /// What the system said.
        source: io::Error,
    },
}

/// The step of an atomic write that failed, for [`ExportError::Io`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// Creating the temporary file beside the target.
    CreateTemporary,
    /// Writing and flushing the temporary file to disk.
    Write,
    /// Renaming the temporary file over the target.
    Rename,
}

impl WriteStep {
    /// [`write_atomically`] with faults injected, for tests of what a failed
    /// or interrupted write leaves behind.
    ///
    /// Only with the `fault-injection` cargo feature, which is off by
    /// default: this is a seam for tests (this crate's run with
    /// `cargo test --all-features`), not for production code.
    ///
    /// `faults` is called before each step with the step and the file it
    /// works on (for [`CreateTemporary`](Self::CreateTemporary) the folder,
    /// else the temporary file). An error it returns fails that step as if
    /// the system had returned it (write part of the file first to play a
    /// full disk); a panic stops the write where it is, with no clean-up, as
    /// a crash would.
    ///
    /// An associated function so that it is reachable without another
    /// re-export; `write_atomically` passes a hook that does nothing and is
    /// compiled away.
    #[cfg(feature = "fault-injection")]
    pub fn write_atomically_with_faults(
        path: &Path,
        contents: &[u8],
        faults: impl FnMut(WriteStep, &Path) -> io::Result<()>,
    ) -> Result<(), ExportError> {
        write_atomically_with(path, contents, faults)
    }
}

impl fmt::Display for WriteStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteStep::CreateTemporary => "creating a temporary file in its folder",
            WriteStep::Write => "writing the temporary file",
            WriteStep::Rename => "renaming the temporary file over it",
        })
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::InvalidPath { path } => write!(
                f,
                "cannot export statistics to `{}`: the path does not name a file; \
                 give the path of one, such as `stats.json`",
                path.display()
            ),
            ExportError::Io { path, step, source } => {
                write!(
                    f,
                    "cannot export statistics to `{}`: {step} failed: {source}",
                    path.display()
                )?;
                let hint = match source.kind() {
                    io::ErrorKind::NotFound => "; create the folder first",
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                        "; choose a folder this process may write to"
                    }
                    io::ErrorKind::IsADirectory => "; the path is a folder, name a file inside it",
                    _ => "",
                };
                f.write_str(hint)
            }
        }
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExportError::Io { source, .. } => Some(source),
            ExportError::InvalidPath { .. } => None,
        }
    }
}

/// Replaces the file at `path` with `contents` atomically: the contents go to
/// a new temporary file in the same folder, are flushed to disk, and the
/// temporary file is renamed over `path`. A reader sees the old file or the
/// new one, never part of one, even if the process dies mid-write. On any
/// error the temporary file is removed and `path` is untouched.
///
/// The new file keeps the permissions of the one it replaces.
///
/// A process that dies mid-write can leave its temporary file behind
/// (`.stats.json.tmp-<pid>-<n>` beside `stats.json`); it never affects the
/// target. A later successful write removes such leftovers once they are an
/// hour old, never younger ones, which may belong to another process writing
/// the same file at the same time.
///
/// ```
/// let folder = std::env::temp_dir().join(format!("vibezen-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&folder)?;
/// let path = folder.join("stats.json");
/// vibezen_recovery::export::write_atomically(&path, b"{}")?;
/// assert_eq!(std::fs::read_to_string(&path)?, "{}");
/// # std::fs::remove_dir_all(&folder)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ExportError> {
    write_atomically_with(path, contents, |_, _| Ok(()))
}

/// How old a leftover temporary file must be before a successful write
/// removes it: far longer than any write takes.
const STALE_TEMPORARY_AGE: Duration = Duration::from_secs(60 * 60);

fn write_atomically_with(
    path: &Path,
    contents: &[u8],
    mut faults: impl FnMut(WriteStep, &Path) -> io::Result<()>,
) -> Result<(), ExportError> {
    let Some(file_name) = path.file_name() else {
        return Err(ExportError::InvalidPath {
            path: path.to_owned(),
        });
    };
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let io_error = |step, source| ExportError::Io {
        path: path.to_owned(),
        step,
        source,
    };
    let (temporary, file) = faults(WriteStep::CreateTemporary, folder)
        .and_then(|()| create_temporary(folder, file_name))
        .map_err(|e| io_error(WriteStep::CreateTemporary, e))?;
    let written = faults(WriteStep::Write, &temporary)
        .and_then(|()| fill(file, path, contents))
        .map_err(|e| io_error(WriteStep::Write, e))
        .and_then(|()| {
            faults(WriteStep::Rename, &temporary)
                .and_then(|()| fs::rename(&temporary, path))
                .map_err(|e| io_error(WriteStep::Rename, e))
        });
    if let Err(err) = written {
        // Best effort: the error that matters is the one being returned.
        let _ = fs::remove_file(&temporary);
        return Err(err);
    }
    sync_folder(folder);
    remove_stale_temporaries(folder, file_name);
    Ok(())
}

/// Creates a file that did not exist, named after the target so a leftover
/// from a crash is easy to recognise: `.stats.json.tmp-<pid>-<n>`.
fn create_temporary(folder: &Path, file_name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempts = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = temporary_prefix(file_name);
        name.push(format!("{}-{n}", std::process::id()));
        let candidate = folder.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => return Ok((candidate, file)),
            // Left over from a crashed process that had our pid: try another.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                attempts += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// What every temporary file of `file_name` is called before its
/// `<pid>-<n>`: `.stats.json.tmp-`.
fn temporary_prefix(file_name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(file_name);
    prefix.push(".tmp-");
    prefix
}

/// Removes temporary files of `file_name` in `folder` that are at least
/// [`STALE_TEMPORARY_AGE`] old: left over from a process that died between
/// creating and renaming one. Best effort; younger ones are left alone.
fn remove_stale_temporaries(folder: &Path, file_name: &OsStr) {
    let prefix = temporary_prefix(file_name);
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(suffix) = name
            .as_encoded_bytes()
            .strip_prefix(prefix.as_encoded_bytes())
        else {
            continue;
        };
        // Exactly `<pid>-<n>`, so that no other file is ever touched.
        let mut numbers = suffix.split(|&byte| byte == b'-');
        let numeric = |part: Option<&[u8]>| {
            part.is_some_and(|part| !part.is_empty() && part.iter().all(u8::is_ascii_digit))
        };
        if !(numeric(numbers.next()) && numeric(numbers.next()) && numbers.next().is_none()) {
            continue;
        }
        // `DirEntry::metadata` does not follow a symbolic link.
        let stale = entry.metadata().is_ok_and(|meta| {
            meta.is_file()
                && meta
                    .modified()
                    .ok()
                    .and_then(|modified| now.duration_since(modified).ok())
                    .is_some_and(|age| age >= STALE_TEMPORARY_AGE)
        });
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn fill(mut file: File, target: &Path, contents: &[u8]) -> io::Result<()> {
    if let Ok(existing) = fs::metadata(target) {
        if existing.is_file() {
            file.set_permissions(existing.permissions())?;
        }
    }
    file.write_all(contents)?;
    // The data must be on disk before the rename makes it the file, or a
    // crash could leave the new name pointing at empty blocks.
    file.sync_all()
}

/// Flushes the rename itself to disk. Not every platform can open a folder,
/// and the file is already complete either way, so failures are ignored.
fn sync_folder(folder: &Path) {
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}
