//! The feature's options file: any text parses to names and values, and settings built
//! from it never panic.
#![no_main]

use berth::settings::{Settings, parse_options_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let values = parse_options_file(text);
    let _ = Settings::load(&|k| {
        values
            .get(k)
            .cloned()
            .or_else(|| (k == "BERTH_OPTIONS_FILE").then(|| "/nonexistent-berth-fuzz".to_string()))
    });
});
