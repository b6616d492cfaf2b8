//! Durations on the command line: `30s`, `5m`, `1h30m`, `250ms`, or plain seconds (`30`), as
//! `kubectl --request-timeout` and Terraform's `-lock-timeout` take them. One parser for every
//! flag that takes a duration ([`parse`], a clap `value_parser`).

use std::time::Duration;

/// Parses a duration: a sequence of `<number><unit>` with units `h`, `m`, `s` and `ms`
/// (`1h30m`, `90s`, `1.5s`), or a plain number of seconds.
///
/// # Errors
/// A message for clap naming what is wrong and what is accepted.
pub fn parse(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err(format!("empty duration ({ACCEPTED})"));
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{input}` is not a duration: `{number}` is not a number ({ACCEPTED})"))?;
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "" => return Err(format!("`{input}` is not a duration: `{number}` has no unit ({ACCEPTED})")),
            other => return Err(format!("`{input}` is not a duration: unknown unit `{other}` ({ACCEPTED})")),
        };
        total = Duration::try_from_secs_f64(value * scale)
            .ok()
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| format!("`{input}` is too long a duration"))?;
        rest = tail;
    }
    Ok(total)
}

const ACCEPTED: &str = "use e.g. `30s`, `5m`, `1h30m`, `250ms` or plain seconds";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_units_sums_and_plain_seconds() {
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1h0m5s"), Ok(Duration::from_secs(3605)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(" 2m "), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in ["", "s", "5x", "5 m", "-5s", "1h30", "m5", "1..5s", "99999999999999999999h"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("duration"), "{bad}: {err}");
        }
        assert!(parse("5x").unwrap_err().contains("unknown unit `x`"));
        assert!(parse("1h30").unwrap_err().contains("`30` has no unit"));
    }
}
