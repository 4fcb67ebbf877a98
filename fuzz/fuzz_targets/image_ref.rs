//! Image references as users and workspaces write them: parsing never panics, and a parsed
//! reference's canonical form parses to the same reference.
#![no_main]

use berth::image::ImageRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(image) = ImageRef::parse(text) {
        let again = ImageRef::parse(&image.canonical()).expect("a canonical form parses");
        assert_eq!(again, image);
    }
});
