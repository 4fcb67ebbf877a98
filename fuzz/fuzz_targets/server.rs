//! Registry servers as users type them: parsing never panics, and a parsed server's key
//! parses to the same server.
#![no_main]

use berth::registry::Server;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(server) = Server::parse(text) {
        let again = Server::parse(server.config_key()).expect("a key parses");
        assert_eq!(again, server);
    }
});
