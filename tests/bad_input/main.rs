//! Bad input (issue 5, section 4): hostile configs and circuits files,
//! hostile circuit names through every entry point, and exports that fail
//! part-way or are cut short by a crash.
//!
//! The properties every config document must keep live in `checks.rs`,
//! which the fuzz target in `fuzz/` shares. `PROPTEST_CASES=N` sets the
//! number of cases of every property here.

#[path = "../common/mod.rs"]
mod common;

mod checks;
mod circuits_file;
mod config;
mod export;
mod hostile;
mod names;

use proptest::test_runner::Config as ProptestConfig;

/// `cases` cases, or `PROPTEST_CASES` if set; counterexamples are printed,
/// not saved in the tree.
pub fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
