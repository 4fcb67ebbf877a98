//! config.json and berth's record as other programs may leave them: the config is loaded
//! (or refused with a message that quotes none of it), merged with a login, written out
//! and read back, keeping every other key; the record loads or is ignored.
#![no_main]

use berth::docker_config::{DockerConfig, Location, Managed};
use berth::secret::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (config, record) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let _ = serde_json::from_slice::<Managed>(record);
    let location = Location {
        dir: std::path::PathBuf::from("/nonexistent-berth-fuzz"),
    };
    let mut c = match DockerConfig::load_onto(&location, config, Vec::new()) {
        Ok(c) => c,
        Err(e) => {
            // A message names the file, the place and the kind of error, never its text:
            // text with characters no message has cannot appear in it.
            let msg = e.to_string();
            let unusual = |c: char| !c.is_ascii() || c.is_ascii_control() || "~^|`".contains(c);
            if let Ok(text) = std::str::from_utf8(config)
                && text.len() >= 8
                && text.chars().any(unusual)
            {
                assert!(!msg.contains(text), "the message quotes the file");
            }
            return;
        }
    };
    let before: Vec<String> =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(config)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
    let (user, password) = (Secret::new("fuzz-user"), Secret::new("p:ss\"word\n"));
    c.set_login("registry.example.com:5000", &user, &password, Some(""));
    let bytes = c.to_bytes();
    let again =
        DockerConfig::load_onto(&location, &bytes, Vec::new()).expect("berth reads what it writes");
    let (u, p) = again
        .login("registry.example.com:5000")
        .expect("the login is there");
    assert_eq!((u.expose(), p.expose()), ("fuzz-user", "p:ss\"word\n"));
    let after: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    for key in before {
        assert!(after.contains_key(&key), "{key} lost");
    }
});
