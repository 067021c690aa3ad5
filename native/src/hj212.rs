//! HJ 212-2017 frames of a single packet, on the fast path. Mirrors `ingest/hj212.py` and
//! `Hj212Codec.readings` for frames they accept; anything else returns None.

use std::collections::HashMap;

use crate::civil;
use crate::rules::{plain_number, Reading, Rules, Value};

fn crc_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    for (index, slot) in table.iter_mut().enumerate() {
        let mut crc = index as u16;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
        *slot = crc;
    }
    table
}

/// The standard's CRC of a data segment (see `ingest.hj212.crc16`).
pub fn crc16(data: &[u8]) -> u16 {
    static TABLE: std::sync::OnceLock<[u16; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(crc_table);
    data.iter()
        .fold(0xFFFF, |crc, &byte| table[usize::from((crc >> 8) as u8 ^ byte)])
}

fn hex4(text: &[u8]) -> Option<u16> {
    if text.len() != 4 || !text.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(text).ok()?, 16).ok()
}

/// `PNUM` / `PNO`: a positive integer of at most 4 digits (`ingest.hj212.PACKET_DIGITS`).
fn positive(text: &str) -> Option<u32> {
    if text.len() > 4 {
        return None;
    }
    civil::number(text.as_bytes()).filter(|&n| n >= 1)
}

const SUFFIXES: [&str; 6] = ["Rtd", "Avg", "Min", "Max", "Cou", "Flag"];
const FLAG: usize = 5;

/// The verified data segment of a frame (header, length and CRC checked), as text.
fn data_segment(raw: &[u8]) -> Option<&str> {
    let raw = raw.trim_ascii();
    if raw.len() < 10 || !raw.starts_with(b"##") {
        return None;
    }
    let length = civil::number(&raw[2..6])? as usize;
    let body = &raw[6..];
    if body.len() != length + 4 {
        return None;
    }
    let (data, crc_text) = body.split_at(length);
    if hex4(crc_text)? != crc16(data) || !data.is_ascii() {
        return None;
    }
    std::str::from_utf8(data).ok()
}

pub fn reading<'a>(raw: &'a [u8], topic: &str, rules: &'a Rules) -> Option<Reading<'a>> {
    let text = data_segment(raw)?;
    let (head, rest) = text.split_once("CP=&&")?;
    let cp = rest.strip_suffix("&&")?;
    let (mut cn, mut mn, mut qn, mut pnum, mut pno) = (None, None, None, None, None);
    for part in head.split(';').filter(|part| !part.is_empty()) {
        let (key, value) = part.split_once('=')?;
        match key {
            "CN" => cn = Some(value),
            "MN" => mn = Some(value),
            "QN" => qn = Some(value),
            "PNUM" => pnum = Some(value),
            "PNO" => pno = Some(value),
            _ => {}
        }
    }
    if let Some(parts) = pnum {
        if positive(parts)? > 1 {
            return None; // split packets are reassembled by the Python path
        }
    }
    if let Some(part) = pno {
        positive(part)?;
    }
    let kept = rules.commands.get(cn.filter(|cn| !cn.is_empty())?)?.as_str();
    let station = *rules.by_mn.get(mn.filter(|mn| !mn.is_empty())?)?;
    if !rules.station_on(station, topic) {
        return None;
    }
    let mut data_time = None;
    let mut factors: Vec<(&str, [Option<&str>; 6])> = Vec::with_capacity(16);
    let mut slots: HashMap<&str, usize> = HashMap::with_capacity(16);
    for field in cp.split([';', ',']).filter(|field| !field.is_empty()) {
        let (key, value) = field.split_once('=')?;
        if key.is_empty() {
            return None;
        }
        if key == "DataTime" {
            data_time = Some(value);
        }
        let Some((code, suffix)) = key.split_once('-') else {
            continue;
        };
        let Some(slot) = SUFFIXES.iter().position(|s| *s == suffix) else {
            continue;
        };
        let index = *slots.entry(code).or_insert_with(|| {
            factors.push((code, [None; 6]));
            factors.len() - 1
        });
        factors[index].1[slot] = Some(value);
    }
    let time = civil::hj212_time(data_time.filter(|t| !t.is_empty()).or(qn)?)?;
    let kept_slot = SUFFIXES.iter().position(|s| *s == kept)?;
    let mut values = Vec::with_capacity(factors.len());
    for (code, fields) in &factors {
        let Some(chosen) = [kept_slot, 0, 1].into_iter().find(|&slot| fields[slot].is_some()) else {
            continue;
        };
        let mut numbers = [0.0; FLAG];
        for slot in 0..FLAG {
            if let Some(text) = fields[slot] {
                numbers[slot] = plain_number(text)?;
            }
        }
        let flag = match fields[FLAG] {
            None => b'N',
            Some(flag) if flag.len() == 1 => flag.as_bytes()[0],
            Some(_) => return None,
        };
        let name = rules.names.get(*code).map_or(*code, String::as_str);
        values.push(Value {
            name,
            value: rules.canonical_of_code(station, code, numbers[chosen]),
            flag,
        });
    }
    Some(Reading {
        station,
        time,
        values,
        format: "hj212",
    })
}
