//! Delimiter sniffing, quote-aware, and telling a pasted list from a table.

/// counting only delimiters outside quotes.
/// Picks the delimiter whose field count is most consistent across the first lines,
pub fn sniff_delimiter(sample: &str) -> u8 {
    let candidates = [b',', b';', b'\t', b'|'];
    let records = split_records(sample, 50);
    let mut best = (b',', 0usize, 0usize);
    for delimiter in candidates {
        let counts: Vec<usize> = records.iter().map(|r| count_fields(r, delimiter)).collect();
        let Some(&first) = counts.first() else { break };
        if first < 2 {
            continue;
        }
        let consistent = counts.iter().filter(|&&c| c == first).count();
        if (consistent, first) > (best.1, best.2) {
            best = (delimiter, consistent, first);
        }
    }
    best.0
}

/// Splits text into up to `limit` non-blank records, honouring quoted newlines.
pub(crate) fn split_records(sample: &str, limit: usize) -> Vec<&str> {
    let mut records = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    let bytes = sample.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' | b'\r' if !in_quotes => {
                let record = &sample[start..i];
                if !record.trim().is_empty() {
                    records.push(record);
                }
                start = i + 1;
                if records.len() >= limit {
                    return records;
                }
            }
            _ => {}
        }
    }
    // The sample may end mid-record; only count a tail when it is the whole file.
    if records.is_empty() && !sample[start..].trim().is_empty() {
        records.push(&sample[start..]);
    }
    records
}

pub(crate) fn count_fields(record: &str, delimiter: u8) -> usize {
    let mut in_quotes = false;
    let mut fields = 1;
    for &b in record.as_bytes() {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == delimiter && !in_quotes {
            fields += 1;
        }
    }
    fields
}

/// A `.txt` upload is a table (Excel's "Unicode text" export) when its first line has
/// several cells, or one cell that is a phone column title; otherwise a pasted list.
pub(crate) fn first_line_is_table_header(sample: &str, delimiter: u8) -> bool {
    let Some(first) = split_records(sample, 1).first().copied() else {
        return false;
    };
    if count_fields(first, delimiter) > 1 {
        return true;
    }
    crate::domain::field::Field::from_header(first.trim().trim_matches('"')).is_some()
}
