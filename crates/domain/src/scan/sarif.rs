//! Placeholder while the reader is written.

use super::{Options, ParseError, Sink};

/// Reads the file into `sink`.
pub fn read<R: std::io::BufRead>(
    input: R,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    let _ = (input, options, sink);
    Err(ParseError::new("", "not yet readable"))
}
