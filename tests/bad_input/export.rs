//! Exports that cannot be written, fail part-way (a full disk) or are cut
//! short by a crash between the write and the rename: the previous file is
//! intact, no temporary file is left by a failure, and the error names the
//! path and the step.
//!
//! Faults are injected through `WriteStep::write_atomically_with_faults`,
//! the seam `write_atomically` is built on; a panic in the hook stops the
//! write where it is, with no clean-up, as a crash would. The seam exists
//! only with the `fault-injection` feature: the tests that use it run with
//! `cargo test --all-features`, as CI does, and plain `cargo test` skips
//! them.

use std::io;
#[cfg(feature = "fault-injection")]
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use actix::prelude::*;
#[cfg(feature = "fault-injection")]
use proptest::prelude::*;
use vibezen_recovery::export::{ExportError, WriteStep, write_atomically};
use vibezen_recovery::manager::{CircuitBreakerManager, ExportStatsToFile, GetBreaker};

use crate::common::{TempDir, within};

const OLD: &str = r#"{"previous": "document"}"#;
#[cfg(feature = "fault-injection")]
const ENOSPC: i32 = 28;

#[cfg(feature = "fault-injection")]
fn new_contents(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A folder holding `stats.json` with the previous document.
fn folder_with_previous_file() -> (TempDir, PathBuf) {
    let folder = TempDir::new();
    let path = folder.path().join("stats.json");
    std::fs::write(&path, OLD).unwrap();
    (folder, path)
}

#[track_caller]
fn assert_io_error(err: &ExportError, target: &Path, step: WriteStep) -> String {
    match err {
        ExportError::Io {
            path, step: failed, ..
        } => {
            assert_eq!(path, target, "{err}");
            assert_eq!(*failed, step, "{err}");
        }
        other => panic!("expected an I/O error at {step:?}, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&target.display().to_string()),
        "the message does not name the path: {message}"
    );
    assert!(
        message.contains(&step.to_string()),
        "the message does not name the step: {message}"
    );
    assert!(!message.chars().any(char::is_control), "{message:?}");
    message
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_full_disk_part_way_through_leaves_the_previous_file_and_no_temporary() {
    let (folder, path) = folder_with_previous_file();
    let contents = new_contents(64 << 10);
    let mut temporary = None;
    let err = WriteStep::write_atomically_with_faults(&path, &contents, |step, file| {
        if step == WriteStep::Write {
            // Half of the document reaches the disk, then it is full.
            std::fs::write(file, &contents[..contents.len() / 2])?;
            temporary = Some(file.to_owned());
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        Ok(())
    })
    .unwrap_err();
    let message = assert_io_error(&err, &path, WriteStep::Write);
    assert!(
        message.contains("No space left on device"),
        "the message does not say why: {message}"
    );
    let temporary = temporary.expect("the hook saw the write");
    assert!(temporary.starts_with(folder.path()), "{temporary:?}");
    assert!(!temporary.exists(), "the partial temporary file was left");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), OLD);
    assert_eq!(folder.listing(), ["stats.json"]);
}

#[cfg(feature = "fault-injection")]
proptest! {
    #![proptest_config(crate::proptest_config(64))]

    /// Any step failing with any error, after any part of the document was
    /// written: the error names the path and that step, the previous file
    /// (or its absence) is as it was, and nothing else is in the folder.
    #[test]
    fn a_failure_at_any_step_changes_nothing(
        step in prop::sample::select(vec![
            WriteStep::CreateTemporary,
            WriteStep::Write,
            WriteStep::Rename,
        ]),
        errno in prop::sample::select(vec![ENOSPC, 5 /* EIO */, 122 /* EDQUOT */, 30 /* EROFS */, 24 /* EMFILE */]),
        len in 0..20_000usize,
        written in 0.0..=1.0f64,
        previous in any::<bool>(),
    ) {
        let folder = TempDir::new();
        let path = folder.path().join("stats.json");
        if previous {
            std::fs::write(&path, OLD).unwrap();
        }
        let contents = new_contents(len);
        let err = WriteStep::write_atomically_with_faults(&path, &contents, |at, file| {
            if at != step {
                return Ok(());
            }
            if at == WriteStep::Write {
                let part = (contents.len() as f64 * written) as usize;
                std::fs::write(file, &contents[..part])?;
            }
            Err(io::Error::from_raw_os_error(errno))
        })
        .unwrap_err();
        assert_io_error(&err, &path, step);
        let ExportError::Io { source, .. } = &err else { unreachable!() };
        prop_assert_eq!(source.raw_os_error(), Some(errno));
        if previous {
            prop_assert_eq!(std::fs::read_to_string(&path).unwrap(), OLD);
            prop_assert_eq!(folder.listing(), ["stats.json"]);
        } else {
            prop_assert!(folder.listing().is_empty(), "{:?}", folder.listing());
        }
    }
}

/// Runs the write and "crashes" (panics) just before `step`: nothing after
/// that point runs, not even the clean-up.
#[cfg(feature = "fault-injection")]
fn crash_before(step: WriteStep, path: &Path, contents: &[u8]) -> Option<PathBuf> {
    let mut temporary = None;
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        let _ = WriteStep::write_atomically_with_faults(path, contents, |at, file| {
            if at == step {
                temporary = Some(file.to_owned());
                panic!("simulated crash before {at:?}");
            }
            Ok(())
        });
    }));
    assert!(crashed.is_err(), "the write did not reach {step:?}");
    temporary
}

fn age(path: &Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_crash_between_write_and_rename_leaves_the_previous_file_intact() {
    let (folder, path) = folder_with_previous_file();
    let contents = new_contents(10_000);
    let leftover = crash_before(WriteStep::Rename, &path, &contents).unwrap();

    // The previous document is whole; the new one sits complete in a
    // temporary file named after it.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), OLD);
    assert_eq!(std::fs::read(&leftover).unwrap(), contents);
    let name = leftover.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with(".stats.json.tmp-"), "{name}");
    assert_eq!(folder.listing(), [name.as_str(), "stats.json"]);

    // The next export succeeds. A fresh leftover is kept: it could be
    // another process's write in progress.
    write_atomically(&path, b"{\"second\": 2}").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"second\": 2}");
    assert_eq!(folder.listing(), [name.as_str(), "stats.json"]);

    // Once it is an hour old it is surely a crash's, and the next
    // successful export removes it.
    age(&leftover, Duration::from_secs(3_600));
    write_atomically(&path, b"{\"third\": 3}").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"third\": 3}");
    assert_eq!(folder.listing(), ["stats.json"]);
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_crash_at_any_earlier_step_leaves_the_previous_file_intact() {
    for step in [WriteStep::CreateTemporary, WriteStep::Write] {
        let (folder, path) = folder_with_previous_file();
        let leftover = crash_before(step, &path, &new_contents(100)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), OLD);
        match step {
            // Nothing was created yet; the hook saw the folder.
            WriteStep::CreateTemporary => {
                assert_eq!(leftover, folder.path());
                assert_eq!(folder.listing(), ["stats.json"]);
            }
            // An empty temporary file is left, and does no harm.
            _ => {
                assert_eq!(std::fs::read(&leftover).unwrap(), b"");
                write_atomically(&path, b"{}").unwrap();
                assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
            }
        }
    }
}

#[test]
fn only_old_leftovers_of_the_same_file_are_cleaned_up() {
    let (folder, path) = folder_with_previous_file();
    let hour = Duration::from_secs(3_600);
    let files = [
        (".stats.json.tmp-4242-7", hour, false), // a crash's, old: removed
        (".stats.json.tmp-4242-8", hour / 2, true), // could be in progress: kept
        (".stats.json.tmp-notes", hour * 2, true), // not one of ours: kept
        (".stats.json.tmp-1-2-3", hour * 2, true), // not one of ours: kept
        (".other.json.tmp-4242-7", hour * 2, true), // another file's: kept
        ("stats.json.tmp-4242-7", hour * 2, true), // not hidden: not ours
        (".stats.json.tmp-4242-9.bak", hour * 2, true), // not ours
    ];
    for (name, old, _) in files {
        let file = folder.path().join(name);
        std::fs::write(&file, "x").unwrap();
        age(&file, old);
    }
    // A folder with a leftover's name is never touched.
    let dir = folder.path().join(".stats.json.tmp-4242-10");
    std::fs::create_dir(&dir).unwrap();

    write_atomically(&path, b"{}").unwrap();
    let mut expected: Vec<&str> = files
        .iter()
        .filter(|(_, _, kept)| *kept)
        .map(|(name, _, _)| *name)
        .chain([".stats.json.tmp-4242-10", "stats.json"])
        .collect();
    expected.sort();
    assert_eq!(folder.listing(), expected);
}

#[test]
fn a_folder_that_is_a_file_is_an_error_that_names_the_path() {
    // Tests run as root, which permission bits do not stop; a regular file
    // in place of the folder stops everyone.
    let folder = TempDir::new();
    let blocker = folder.path().join("not-a-folder");
    std::fs::write(&blocker, "precious").unwrap();
    let path = blocker.join("stats.json");
    let err = write_atomically(&path, b"{}").unwrap_err();
    assert_io_error(&err, &path, WriteStep::CreateTemporary);
    let ExportError::Io { source, .. } = &err else {
        unreachable!()
    };
    assert_eq!(source.kind(), io::ErrorKind::NotADirectory, "{err}");
    assert_eq!(std::fs::read_to_string(&blocker).unwrap(), "precious");
    assert_eq!(folder.listing(), ["not-a-folder"]);
}

#[actix::test]
async fn the_manager_reports_an_unwritable_export_and_keeps_serving() {
    tokio::time::pause();
    within(async {
        let manager = CircuitBreakerManager::default().start();
        manager.send(GetBreaker::new("db")).await.unwrap().unwrap();
        let folder = TempDir::new();
        std::fs::write(folder.path().join("file"), "x").unwrap();
        let path = folder.path().join("file").join("stats.json");
        let err = manager
            .send(ExportStatsToFile(path.clone()))
            .await
            .unwrap()
            .unwrap_err();
        assert_io_error(&err, &path, WriteStep::CreateTemporary);

        // A good path right after works.
        let good = folder.path().join("stats.json");
        manager
            .send(ExportStatsToFile(good.clone()))
            .await
            .unwrap()
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
        assert_eq!(json["circuits"][0]["name"], "db");
    })
    .await;
}
