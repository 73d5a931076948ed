//! Statistics as JSON, and writing them to a file so that a reader never
//! sees half of one.
//!
//! The document's schema is in `docs/manager.md`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
/// use vibezen_recovery::StatsExport;
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
                "cannot export statistics to `{}`: the path does not name a file",
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
/// ```
/// let folder = std::env::temp_dir().join(format!("vibezen-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&folder)?;
/// let path = folder.join("stats.json");
/// vibezen_recovery::write_atomically(&path, b"{}")?;
/// assert_eq!(std::fs::read_to_string(&path)?, "{}");
/// # std::fs::remove_dir_all(&folder)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ExportError> {
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
    let (temporary, file) =
        create_temporary(folder, file_name).map_err(|e| io_error(WriteStep::CreateTemporary, e))?;
    let written = fill(file, path, contents)
        .map_err(|e| io_error(WriteStep::Write, e))
        .and_then(|()| fs::rename(&temporary, path).map_err(|e| io_error(WriteStep::Rename, e)));
    if let Err(err) = written {
        // Best effort: the error that matters is the one being returned.
        let _ = fs::remove_file(&temporary);
        return Err(err);
    }
    sync_folder(folder);
    Ok(())
}

/// Creates a file that did not exist, named after the target so a leftover
/// from a crash is easy to recognise: `.stats.json.tmp-<pid>-<n>`.
fn create_temporary(folder: &Path, file_name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempts = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(".tmp-{}-{n}", std::process::id()));
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
