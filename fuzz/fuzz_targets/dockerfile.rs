//! Dockerfiles of any shape (continuations, escape directives, heredocs, ARG scope): the
//! images they name, or notes, never a panic or a hang.
#![no_main]

use berth::discover::{Kind, images_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = images_in(Kind::Dockerfile, text, "Dockerfile");
});
