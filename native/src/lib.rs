//! riverguard's ingest fast path (`ingest._fastpath`).
//!
//! The bridge routes every MQTT message through here first. A payload the Python codecs would
//! accept as it is — one JSON reading or one single-packet HJ 212-2017 data frame of a registered
//! station on its own topic, every value valid, dated in time — becomes its Kafka record directly,
//! byte for byte what `Router` would produce. Everything else returns None and takes the Python
//! path, which stays the definition: it decides rejections and their reasons, split packets, lists
//! and rarer forms. Tests hold the two paths to the same output for what the fast path accepts.

mod civil;
mod hj212;
mod json;
mod record;
mod rules;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use rules::{Rules, Station};

/// (station_id, mn, river, topic or None, unit factors by parameter (JSON), by HJ 212 code,
/// payload head JSON, payload tail JSON)
type StationSpec = (
    String,
    String,
    String,
    Option<String>,
    HashMap<String, f64>,
    HashMap<String, f64>,
    Vec<u8>,
    Vec<u8>,
);

#[pyclass(module = "ingest._fastpath")]
struct FastRouter {
    rules: Rules,
    trace_prefix: String,
    traced: u64,
}

#[pymethods]
impl FastRouter {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        stations: Vec<StationSpec>,
        ranges: HashMap<String, (f64, f64)>,
        names: HashMap<String, String>,
        commands: HashMap<String, String>,
        flags: &str,
        evidence: &str,
        json_keys: Vec<String>,
        formats: Vec<String>,
        future_tolerance_s: f64,
        trace_prefix: String,
    ) -> Self {
        let mut by_id = HashMap::new();
        let mut by_mn = HashMap::new();
        let mut specs = Vec::with_capacity(stations.len());
        for (index, (station_id, mn, river, topic, factors, code_factors, head, tail)) in
            stations.into_iter().enumerate()
        {
            by_id.insert(station_id.clone(), index);
            by_mn.insert(mn, index);
            specs.push(Station {
                id: station_id,
                river,
                topic,
                factors,
                code_factors,
                head,
                tail,
            });
        }
        let rules = Rules {
            stations: specs,
            by_id,
            by_mn,
            ranges,
            names,
            commands,
            flags: flags.as_bytes().to_vec(),
            evidence: evidence.as_bytes().to_vec(),
            json_keys,
            formats,
            future_tolerance_us: (future_tolerance_s * 1e6) as i64,
        };
        FastRouter {
            rules,
            trace_prefix,
            traced: 0,
        }
    }

    /// `(key, record)` for the readings topic, or None to leave the payload to the Python path.
    /// `received_at` is the arrival as POSIX seconds.
    fn route<'py>(
        &mut self,
        py: Python<'py>,
        payload: &[u8],
        topic: &str,
        received_at: f64,
    ) -> Option<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let received_us = (received_at * 1e6).round() as i64;
        let trace = (self.trace_prefix.as_str(), self.traced + 1);
        // A bug here must not become an exception in the bridge: a panic declines the payload,
        // and the Python path (the definition) routes it.
        let routed = std::panic::catch_unwind(|| record_of(&self.rules, payload, topic, received_us, trace));
        let (station, record) = routed.ok().flatten()?;
        self.traced = trace.1;
        let key = self.rules.stations[station].id.as_bytes();
        Some((PyBytes::new(py, key), PyBytes::new(py, &record)))
    }
}

/// The station and record of a payload the fast path is sure of.
/// `trace` is the prefix and counter of the trace id, written only into a record that is made.
fn record_of(
    rules: &Rules,
    payload: &[u8],
    topic: &str,
    received_us: i64,
    trace: (&str, u64),
) -> Option<(usize, Vec<u8>)> {
    let document;
    let reading = if payload.trim_ascii_start().starts_with(b"##") {
        hj212::reading(payload, topic, rules)?
    } else {
        document = serde_json::from_slice::<serde_json::Value>(payload).ok()?;
        json::reading(document.as_object()?, topic, rules)?
    };
    let reading = rules.checked(reading, received_us)?;
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    Some((
        reading.station,
        record::reading_record(
            rules,
            &reading,
            &civil::utc_text(now_us),
            &format!("{}{:016x}", trace.0, trace.1),
        ),
    ))
}

/// The float text of a record value (for tests against pydantic's serialiser).
#[pyfunction]
fn float_text(value: f64) -> Option<String> {
    let mut out = Vec::new();
    value.is_finite().then(|| {
        record::push_float(&mut out, value);
        String::from_utf8(out).unwrap_or_default()
    })
}

/// The HJ 212-2017 CRC of a data segment (`ingest.hj212.crc16`; tests hold it to the bytewise
/// definition). The gateway computes it for every frame it reads and every answer it writes.
#[pyfunction]
#[pyo3(name = "crc16")]
fn hj212_crc16(data: &[u8]) -> u16 {
    hj212::crc16(data)
}

#[pymodule]
fn _fastpath(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<FastRouter>()?;
    module.add_function(wrap_pyfunction!(float_text, module)?)?;
    module.add_function(wrap_pyfunction!(hj212_crc16, module)?)?;
    Ok(())
}
