//! Env files (an app's, a recipe's `.env.sample`): parsing, expanding and writing back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck_engine::envfile::EnvFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(file) = EnvFile::parse(text) {
        let values = file.values(&|_| None);
        let again = EnvFile::parse(&file.to_string()).expect("a written env file parses");
        assert_eq!(again.values(&|_| None), values, "writing back keeps the values");
    }
});
