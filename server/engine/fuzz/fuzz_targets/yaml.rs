//! Compose YAML as the Docker CLI reads it: anchors, aliases, merge keys, nesting.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = potluck_engine::yaml::parse(text);
});
