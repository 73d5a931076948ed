//! `CircuitBreakerConfig::from_json` and `CircuitsFile::from_json` on any
//! bytes: every input ends in a config that validates, works and saves
//! and loads as itself, or in a readable, bounded error that names its
//! field. The properties are those of the `bad_input` tests, whose
//! `checks.rs` this target includes, so both check the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/bad_input/checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    // Non-UTF-8 input cannot reach the loaders (they take `&str`); decode
    // it lossily rather than throw it away.
    let text = String::from_utf8_lossy(data);
    if let Err(problem) = checks::config_json(&text) {
        panic!("CircuitBreakerConfig::from_json: {problem}\ninput: {text:?}");
    }
    if let Err(problem) = checks::circuits_json(&text) {
        panic!("CircuitsFile::from_json: {problem}\ninput: {text:?}");
    }
});
