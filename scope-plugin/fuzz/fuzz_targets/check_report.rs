//! The checker's judgement of a `/report` body, any bytes at all: never a panic, a status
//! the probe could give, and a passing verdict only for a JSON object.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let verdict = scope_plugin_check::judge(data, "p");
    assert!(
        verdict.status == "ok" || verdict.status.starts_with("error: "),
        "{}",
        verdict.status
    );
    if verdict.passes() {
        let mut values = serde_json::Deserializer::from_slice(data).into_iter::<serde_json::Value>();
        assert!(matches!(values.next(), Some(Ok(serde_json::Value::Object(_)))));
    }
});
