//! Dockerfiles unfolded from a few bytes (see `shapes`): continuations and heredocs by the
//! hundred thousand, very long lines, tens of thousands of stages and ARGs, ARGs built from
//! ARGs. Never a panic, a hang or unbounded memory (libFuzzer's -timeout and
//! -rss_limit_mb), and what is kept passes `shapes::check`.
#![no_main]

mod shapes;

use berth::discover::{Kind, images_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = shapes::unfold(data);
    shapes::check(images_in(Kind::Dockerfile, &text, "Dockerfile"));
});
