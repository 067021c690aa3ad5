//! Our JSON reading schema on the fast path: one object, mirroring `JsonCodec` for the payloads
//! it accepts as they are; lists, other time forms and anything doubtful return None.

use serde_json::{Map, Value as Json};

use crate::civil;
use crate::rules::{Reading, Rules, Value};

/// Integers beyond 2**53 are not all floats; the Python path converts them.
const EXACT: f64 = 9_007_199_254_740_992.0;

fn number(value: &Json) -> Option<f64> {
    let Json::Number(number) = value else { return None };
    number.as_f64().filter(|v| v.is_finite() && v.abs() <= EXACT)
}

fn flag(value: &Json) -> Option<u8> {
    match value.as_str()?.as_bytes() {
        [flag] => Some(*flag),
        _ => None,
    }
}

fn value<'a>(rules: &Rules, station: usize, name: &'a str, sent: &Json) -> Option<Value<'a>> {
    let (raw, flag) = match sent {
        Json::Object(fields) => {
            if fields.keys().any(|key| key != "value" && key != "flag") {
                return None;
            }
            (
                number(fields.get("value")?)?,
                fields.get("flag").map_or(Some(b'N'), flag)?,
            )
        }
        other => (number(other)?, b'N'),
    };
    Some(Value {
        name,
        value: rules.canonical(station, name, raw),
        flag,
    })
}

pub fn reading<'a>(document: &'a Map<String, Json>, topic: &str, rules: &'a Rules) -> Option<Reading<'a>> {
    if document.keys().any(|key| !rules.json_keys.contains(key)) {
        return None;
    }
    let station = *rules.by_id.get(document.get("station_id")?.as_str()?)?;
    if !rules.station_on(station, topic) {
        return None;
    }
    if let Some(river) = document.get("river") {
        if river.as_str()? != rules.stations[station].river {
            return None;
        }
    }
    let time_text = document.get("time")?.as_str()?;
    if time_text.bytes().all(|c| c.is_ascii_digit()) {
        return None; // the HJ 212 form, parsed by the Python path
    }
    let time = civil::iso_time(time_text)?;
    let format = match document.get("source_format") {
        None => "json", // JsonCodec's default
        Some(sent) => rules
            .formats
            .iter()
            .find(|known| Some(known.as_str()) == sent.as_str())?
            .as_str(),
    };
    let values = document.get("values")?.as_object()?;
    let values = values
        .iter()
        .map(|(name, sent)| value(rules, station, name.as_str(), sent))
        .collect::<Option<Vec<_>>>()?;
    Some(Reading {
        station,
        time,
        values,
        format,
    })
}
