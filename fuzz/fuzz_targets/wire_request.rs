#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ambit::fuzzing::wire_request(data));
