//! `${...}` variables as Compose files and Dockerfiles write them, nested and repeated
//! without bound (the input unfolds, see `shapes`): the text is the image of a Compose
//! service, and, line by line, the ARGs before a Dockerfile's FROM and its image. Never a
//! panic, a hang or unbounded memory (libFuzzer's -timeout and -rss_limit_mb), and what is
//! kept passes `shapes::check`.
#![no_main]

mod shapes;

use berth::discover::{Kind, images_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = shapes::unfold(data);
    let image = text.replace('\'', "''").replace(['\n', '\r'], " ");
    let compose = format!("services:\n  s:\n    image: '{image}'\n");
    shapes::check(images_in(Kind::Compose, &compose, "compose.yaml"));
    let (args, image) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut dockerfile: String = args.lines().map(|arg| format!("ARG {arg}\n")).collect();
    dockerfile.push_str("FROM ");
    dockerfile.push_str(image);
    dockerfile.push('\n');
    shapes::check(images_in(Kind::Dockerfile, &dockerfile, "Dockerfile"));
});
