//! Compose files unfolded from a few bytes (see `shapes`): collections nested past the
//! bound, anchors and aliases by the hundred thousand, in keys and in merge keys, long
//! scalars, many services. Never a panic, a hang or unbounded memory (libFuzzer's
//! -timeout and -rss_limit_mb), and what is kept passes `shapes::check`.
#![no_main]

mod shapes;

use berth::discover::{Kind, images_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = shapes::unfold(data);
    shapes::check(images_in(Kind::Compose, &text, "compose.yaml"));
});
