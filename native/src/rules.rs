//! What the fast path knows: the station registry and the parameter catalogue as the Python side
//! hands them over, and the checks the `Reading` model makes of a reading's values.

use std::collections::{HashMap, HashSet};

use crate::civil::Time;

pub struct Station {
    pub id: String,
    pub river: String,
    /// The one MQTT topic this station's payloads are accepted on (None: never on the fast path).
    pub topic: Option<String>,
    /// Reported → canonical unit multipliers of JSON values, by parameter name.
    pub factors: HashMap<String, f64>,
    /// The same for HJ 212 values, by factor code (the code fixes the unit; see ingest.codetable).
    pub code_factors: HashMap<String, f64>,
    /// `{"station_id":…,"river":…,"time":` as pydantic writes it.
    pub head: Vec<u8>,
    /// `,"section":…}` as pydantic writes it.
    pub tail: Vec<u8>,
}

pub struct Rules {
    pub stations: Vec<Station>,
    pub by_id: HashMap<String, usize>,
    pub by_mn: HashMap<String, usize>,
    /// Physical range of each known parameter.
    pub ranges: HashMap<String, (f64, f64)>,
    /// HJ 212 factor code → the name its values get (ingest.codetable.value_name).
    pub names: HashMap<String, String>,
    /// HJ 212 CN of a data upload → the CP suffix whose value a reading keeps.
    pub commands: HashMap<String, String>,
    pub flags: Vec<u8>,
    /// Flags whose values are evidence of the water (checked against the physical range).
    pub evidence: Vec<u8>,
    /// The keys a JSON reading may have.
    pub json_keys: Vec<String>,
    /// The source formats a reading may name.
    pub formats: Vec<String>,
    pub future_tolerance_us: i64,
}

/// One value of a reading, in canonical units.
pub struct Value<'a> {
    pub name: &'a str,
    pub value: f64,
    pub flag: u8,
}

/// A reading the fast path is sure the Python path would accept as it is.
pub struct Reading<'a> {
    pub station: usize,
    pub time: Time,
    pub values: Vec<Value<'a>>,
    pub format: &'a str,
}

/// `^[A-Za-z][A-Za-z0-9_.-]{0,63}$`, the model's parameter name.
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Rules {
    pub fn station_on(&self, index: usize, topic: &str) -> bool {
        self.stations[index].topic.as_deref() == Some(topic)
    }

    pub fn canonical(&self, station: usize, name: &str, value: f64) -> f64 {
        self.stations[station]
            .factors
            .get(name)
            .map_or(value, |factor| value * factor)
    }

    pub fn canonical_of_code(&self, station: usize, code: &str, value: f64) -> f64 {
        self.stations[station]
            .code_factors
            .get(code)
            .map_or(value, |factor| value * factor)
    }

    /// The reading when every value passes the model's checks and its time is not beyond the
    /// future tolerance of its arrival; None leaves the payload to the Python path.
    pub fn checked<'a>(&self, reading: Reading<'a>, received_us: i64) -> Option<Reading<'a>> {
        if reading.values.is_empty() || reading.time.epoch_us > received_us.saturating_add(self.future_tolerance_us) {
            return None;
        }
        // A set, not a scan of the earlier names: payloads of tens of thousands of values reach here.
        let mut names = HashSet::with_capacity(reading.values.len());
        for item in &reading.values {
            if !item.value.is_finite() || !valid_name(item.name) || !self.flags.contains(&item.flag) {
                return None;
            }
            if !names.insert(item.name) {
                return None;
            }
            if let Some(&(low, high)) = self.ranges.get(item.name) {
                if self.evidence.contains(&item.flag) && !(low <= item.value && item.value <= high) {
                    return None;
                }
            }
        }
        Some(reading)
    }
}

/// A finite number in the grammar Python's `float()` and Rust's parser read alike:
/// `[+-]?(digits[.digits?]|.digits)([eE][+-]?digits)?`.
pub fn plain_number(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(b.get(i), Some(b'+' | b'-')));
        let exp_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return None;
        }
        i += exp_digits;
    }
    if i != b.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}
