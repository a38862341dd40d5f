#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| millrace_tests::fuzz_entry::fetched_records(data));
