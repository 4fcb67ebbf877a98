//! Shapes for the fuzz targets of workspace files: a few bytes that unfold into deep and
//! large text, so that libFuzzer, whose inputs stay small and whose mutations are local,
//! reaches what only a large input shows (defaults nested 60,000 deep, a scalar aliased
//! 100,000 times, 60,000 stages), and the checks every result must pass.
//!
//! An input is pieces separated by NUL bytes. A piece `COUNT*TEXT` (COUNT at most six
//! digits) is TEXT repeated COUNT times, at most [`MAX_COUNT`], with `%i` in it replaced by
//! the repetition's number (from 1) and `%p` by the one before (so `FROM s%p AS s%i` names
//! 60,000 distinct stages, each from the last); any other piece is itself. The text stops
//! at berth's file size limit, as the walk reads no more of a file.

use berth::discover::{MAX_FILE_SIZE, MAX_IMAGES, MAX_NOTES};
use berth::image::ImageRef;

/// The most repetitions of one piece.
pub const MAX_COUNT: usize = 200_000;

/// The longest note: a resolved image (at most 2048 bytes) is quoted whole by the image
/// parser's message, twice at most, with the file, the place and the reason around it.
const MAX_NOTE_BYTES: usize = 8 * 1024;

/// The text an input describes (see the module's description).
pub fn unfold(data: &[u8]) -> String {
    let limit = MAX_FILE_SIZE as usize;
    let mut out: Vec<u8> = Vec::new();
    for piece in data.split(|b| *b == 0) {
        let digits = piece.iter().take_while(|b| b.is_ascii_digit()).count();
        let (count, text) = match piece.get(digits) {
            Some(b'*') if (1..=6).contains(&digits) => {
                let count: usize = std::str::from_utf8(&piece[..digits])
                    .unwrap()
                    .parse()
                    .unwrap();
                (count.min(MAX_COUNT), &piece[digits + 1..])
            }
            _ => (1, piece),
        };
        let numbered = count > 1 && (contains(text, b"%i") || contains(text, b"%p"));
        for i in 1..=count {
            if text.is_empty() || out.len() >= limit {
                break;
            }
            if numbered {
                let text = String::from_utf8_lossy(text)
                    .replace("%i", &i.to_string())
                    .replace("%p", &(i - 1).to_string());
                out.extend_from_slice(text.as_bytes());
            } else {
                out.extend_from_slice(text);
            }
        }
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `needle` is in `bytes`.
fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

/// What berth keeps of one file, whatever it holds: at most [`MAX_IMAGES`] images and
/// [`MAX_NOTES`] notes (and one that counts the rest), each note one line of bounded length.
pub fn check(found: (Vec<(usize, ImageRef)>, Vec<String>)) {
    let (images, notes) = found;
    assert!(images.len() <= MAX_IMAGES, "{} images kept", images.len());
    assert!(notes.len() <= MAX_NOTES + 1, "{} notes kept", notes.len());
    for note in &notes {
        let start: String = note.chars().take(300).collect();
        assert!(
            note.len() <= MAX_NOTE_BYTES,
            "a note of {} bytes: {start}",
            note.len()
        );
        assert!(!note.contains('\n'), "a note of several lines: {note:?}");
    }
}
