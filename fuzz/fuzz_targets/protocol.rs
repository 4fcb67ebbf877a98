//! The daemon's socket protocol from any client: a request line is parsed and checked
//! against its caller, an answer line is parsed, without panics.
#![no_main]

use berth::account::Account;
use berth::lifecycle::{Caller, HookInput};
use berth::protocol::{Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<Response>(data);
    let Ok(Request::Hook(hook)) = serde_json::from_slice::<Request>(data) else {
        return;
    };
    let remote = Account {
        name: "dev".into(),
        uid: 1000.into(),
        gid: 1000.into(),
        groups: vec![1000.into()],
        home: "/home/dev".into(),
    };
    for uid in [0, 1000, 4321] {
        let _ = HookInput::checked(
            Some(hook.phase),
            hook.secrets.clone(),
            hook.settings.clone(),
            hook.cwd.clone(),
            Caller { uid, pid: None },
            &remote,
        );
    }
});
