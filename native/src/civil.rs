//! Calendar arithmetic and the time texts of the wire format (no time-zone database needed:
//! station times are Beijing time or carry their own offset).

/// A reading's time: its instant, and the ISO text the Python path serialises for it
/// (the wall time as sent, with its offset; `Z` for UTC; microseconds only when not zero).
pub struct Time {
    pub epoch_us: i64,
    pub text: String,
}

pub const BEIJING_OFFSET_MIN: i32 = 8 * 60;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Wall-clock fields as Python's `datetime` accepts them (year 1..=9999, second < 60).
pub struct Wall {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micro: u32,
}

impl Wall {
    /// Year (4 digits), month, day, hour, minute and second (2 digits each) starting at `at`.
    fn of_digits(text: &[u8], at: [usize; 6]) -> Option<Wall> {
        let two = |start: usize| number(&text[start..start + 2]);
        Some(Wall {
            year: i64::from(number(&text[at[0]..at[0] + 4])?),
            month: two(at[1])?,
            day: two(at[2])?,
            hour: two(at[3])?,
            minute: two(at[4])?,
            second: two(at[5])?,
            micro: 0,
        })
    }

    fn valid(&self) -> bool {
        (1..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
            && self.micro < 1_000_000
    }

    /// The instant and text of this wall time at `offset_min` east of UTC; None when invalid.
    pub fn at(&self, offset_min: i32) -> Option<Time> {
        if !self.valid() {
            return None;
        }
        let seconds = days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
            - i64::from(offset_min) * 60;
        let mut text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.micro != 0 {
            text.push_str(&format!(".{:06}", self.micro));
        }
        if offset_min == 0 {
            text.push('Z');
        } else {
            let sign = if offset_min < 0 { '-' } else { '+' };
            let abs = offset_min.unsigned_abs();
            text.push_str(&format!("{sign}{:02}:{:02}", abs / 60, abs % 60));
        }
        Some(Time {
            epoch_us: seconds * 1_000_000 + i64::from(self.micro),
            text,
        })
    }
}

pub fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Checked: a wrapped number would change a frame's meaning.
    digits
        .iter()
        .try_fold(0u32, |n, d| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))
}

/// HJ 212 `yyyyMMddHHmmss[zzz]`, Beijing time.
pub fn hj212_time(text: &str) -> Option<Time> {
    let b = text.as_bytes();
    if !(b.len() == 14 || b.len() == 17) || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut wall = Wall::of_digits(b, [0, 4, 6, 8, 10, 12])?;
    if b.len() == 17 {
        wall.micro = number(&b[14..17])? * 1000;
    }
    wall.at(BEIJING_OFFSET_MIN)
}

/// The common RFC 3339 form `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff][Z|±HH:MM]` (Beijing time without
/// an offset). Other forms Python's `fromisoformat` takes are left to the Python path.
pub fn iso_time(text: &str) -> Option<Time> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut wall = Wall::of_digits(b, [0, 5, 8, 11, 14, 17])?;
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        wall.micro = match digits {
            3 => number(&rest[1..4])? * 1000,
            6 => number(&rest[1..7])?,
            _ => return None,
        };
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [] => BEIJING_OFFSET_MIN,
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let minutes = (number(&[*h1, *h2])? * 60 + number(&[*m1, *m2])?) as i32;
            if minutes == 0 && *sign == b'-' || minutes >= 24 * 60 {
                return None;
            }
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    wall.at(offset)
}

/// `produced_at` as pydantic serialises a UTC `datetime.now(UTC)`.
pub fn utc_text(epoch_us: i64) -> String {
    let seconds = epoch_us.div_euclid(1_000_000);
    let micro = epoch_us.rem_euclid(1_000_000) as u32;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400) as u32;
    let wall = Wall {
        year,
        month,
        day,
        hour: of_day / 3600,
        minute: of_day / 60 % 60,
        second: of_day % 60,
        micro,
    };
    wall.at(0).map_or_else(String::new, |time| time.text)
}
