//! The bytes of a reading record: the envelope around the reading, byte for byte as
//! `riverguard.models.encode` writes them (a test holds the two equal).

use crate::rules::{Reading, Rules};

/// A float as pydantic-core serialises it: the shortest round-trip digits, `1e+16` style.
pub fn push_float(out: &mut Vec<u8>, value: f64) {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(value).as_bytes();
    match text.iter().position(|&c| c == b'e') {
        Some(at) if text.get(at + 1) != Some(&b'-') => {
            out.extend_from_slice(&text[..=at]);
            out.push(b'+');
            out.extend_from_slice(&text[at + 1..]);
        }
        _ => out.extend_from_slice(text),
    }
}

pub fn reading_record(rules: &Rules, reading: &Reading<'_>, produced_at: &str, trace_id: &str) -> Vec<u8> {
    let station = &rules.stations[reading.station];
    let mut out = Vec::with_capacity(256 + 48 * reading.values.len());
    out.extend_from_slice(b"{\"schema_version\":1,\"type\":\"Reading\",\"produced_at\":\"");
    out.extend_from_slice(produced_at.as_bytes());
    out.extend_from_slice(b"\",\"trace_id\":\"");
    out.extend_from_slice(trace_id.as_bytes());
    out.extend_from_slice(b"\",\"payload\":");
    out.extend_from_slice(&station.head);
    out.push(b'"');
    out.extend_from_slice(reading.time.text.as_bytes());
    out.extend_from_slice(b"\",\"values\":{");
    for (index, item) in reading.values.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        // Names passed the model's pattern: letters, digits, `_.-`, nothing to escape.
        out.push(b'"');
        out.extend_from_slice(item.name.as_bytes());
        out.extend_from_slice(b"\":{\"value\":");
        push_float(&mut out, item.value);
        out.extend_from_slice(b",\"flag\":\"");
        out.push(item.flag);
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"},\"source_format\":\"");
    out.extend_from_slice(reading.format.as_bytes());
    out.push(b'"');
    out.extend_from_slice(&station.tail);
    out.push(b'}');
    out
}
