//! Text encodings: UTF-8 (with or without BOM), UTF-16 with BOM, Windows-1252 as the
//! fallback, and UTF-8 files with a few Windows-1252 sequences read per sequence.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, WINDOWS_1252};

use super::SourceError;

#[derive(Copy, Clone, Debug)]
pub(crate) enum TextEncoding {
    Utf8 { bom: bool },
    Other(&'static Encoding),
}

impl TextEncoding {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 { .. } => "utf-8",
            TextEncoding::Other(enc) if enc == UTF_16LE => "utf-16le",
            TextEncoding::Other(enc) if enc == UTF_16BE => "utf-16be",
            TextEncoding::Other(_) => "windows-1252",
        }
    }
}

pub(crate) fn detect_encoding(sample: &[u8]) -> Result<TextEncoding, SourceError> {
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Ok(TextEncoding::Utf8 { bom: true });
    }
    if sample.starts_with(&[0xFF, 0xFE]) {
        return Ok(TextEncoding::Other(UTF_16LE));
    }
    if sample.starts_with(&[0xFE, 0xFF]) {
        return Ok(TextEncoding::Other(UTF_16BE));
    }
    // UTF-16 without a BOM: ASCII text leaves every other byte zero.
    if sample.len() >= 4 {
        let zeros_at = |parity: usize| {
            sample
                .iter()
                .skip(parity)
                .step_by(2)
                .filter(|b| **b == 0)
                .count()
        };
        let half = sample.len() / 2;
        if zeros_at(1) * 10 > half * 8 && zeros_at(0) * 10 < half {
            return Ok(TextEncoding::Other(UTF_16LE));
        }
        if zeros_at(0) * 10 > half * 8 && zeros_at(1) * 10 < half {
            return Ok(TextEncoding::Other(UTF_16BE));
        }
    }
    let (multibyte, invalid) = utf8_evidence(sample);
    // A UTF-8 file with a few rows pasted in from a Windows-1252 one is still UTF-8: the
    // odd cells fall back to Windows-1252 one by one (`decode_cell`). Windows-1252 text
    // almost never forms valid multi-byte UTF-8 sequences, so those decide.
    if invalid == 0 || multibyte > invalid {
        Ok(TextEncoding::Utf8 { bom: false })
    } else {
        Ok(TextEncoding::Other(WINDOWS_1252))
    }
}

/// Counts the valid multi-byte UTF-8 characters and the invalid byte sequences in a
/// sample. A character cut by the end of the sample is neither.
pub(crate) fn utf8_evidence(bytes: &[u8]) -> (usize, usize) {
    let (mut multibyte, mut invalid) = (0, 0);
    let mut chunks = bytes.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        let bad = chunk.invalid();
        let cut = chunks.peek().is_none()
            && std::str::from_utf8(bad).is_err_and(|e| e.error_len().is_none());
        if !bad.is_empty() && !cut {
            invalid += 1;
        }
    }
    (multibyte, invalid)
}

pub(crate) fn decode_sample(sample: &[u8], encoding: TextEncoding) -> String {
    match encoding {
        TextEncoding::Utf8 { bom } => utf8_or_1252(&sample[if bom { 3 } else { 0 }..]),
        TextEncoding::Other(enc) => enc.decode(sample).0.into_owned(),
    }
}

/// UTF-8 text with any invalid sequence read as Windows-1252, as cells are.
pub(crate) fn utf8_or_1252(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        text.push_str(&WINDOWS_1252.decode_without_bom_handling(chunk.invalid()).0);
    }
    text
}

/// Cells are UTF-8 after decoding; a stray non-UTF-8 cell in a UTF-8 file (a file
/// pasted together from two sources) is read as Windows-1252 rather than mangled.
pub(crate) fn decode_cell(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => utf8_or_1252(bytes),
    }
}

pub(crate) fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut bad = 0usize;
    for c in text.chars() {
        total += 1;
        if c == '\0'
            || c == '\u{FFFD}'
            || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{0C}'))
        {
            bad += 1;
        }
    }
    // A stray NUL in a text file is stripped from its cell later; only a share of
    // control characters marks binary data.
    total > 0 && bad * 100 > total * 2
}
