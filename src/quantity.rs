//! Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1e3`) parsed as
//! `resource.Quantity` reads them, so that a run's CPU and memory can be compared with
//! the configured maximum before the apiserver sees them. Stricter where no run needs
//! more: at most 30 significant digits, exponents within ±30, values below 2^63 units.

use std::fmt;
use std::str::FromStr;

/// A non-negative quantity: the text as written (sent to the apiserver unchanged) and
/// its value in billionths, by which quantities compare (`500m` equals `0.5`).
#[derive(Debug, Clone)]
pub struct Quantity {
    text: String,
    nanos: u128,
}

/// Why a quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a Kubernetes quantity (examples: 500m, 2, 1.5, 128Mi, 4Gi; not negative, at most 64 characters)"
)]
pub struct InvalidQuantity(pub String);

impl Quantity {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Quantity {
    type Err = InvalidQuantity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidQuantity(s.chars().take(64).collect());
        if s.is_empty() || s.len() > 64 {
            return Err(invalid());
        }
        // <digits>[.<digits>] then a suffix; a leading '+' is accepted by Kubernetes.
        let body = s.strip_prefix('+').unwrap_or(s);
        let number_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, suffix) = body.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(invalid());
        }
        // The value as digits / 10^scale, times 10^exp10 (decimal) or 2^exp2 (binary).
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(invalid());
        }
        let mantissa: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| invalid())?
        };
        let scale = i32::try_from(fraction.len()).map_err(|_| invalid())?;
        let (exp10, exp2): (i32, u32) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            e if e.starts_with(['e', 'E']) => {
                let exponent: i32 = e[1..].parse().map_err(|_| invalid())?;
                if !(-30..=30).contains(&exponent) {
                    return Err(invalid());
                }
                (exponent, 0)
            }
            _ => return Err(invalid()),
        };
        // nanos = mantissa * 2^exp2 * 10^(exp10 - scale + 9), rounded up like
        // Kubernetes rounds sub-nano values (a positive value never becomes 0).
        let shift = exp10 - scale + 9;
        let scaled = mantissa.checked_mul(1u128 << exp2).ok_or_else(invalid)?;
        let nanos = if shift >= 0 {
            10u128
                .checked_pow(shift.unsigned_abs())
                .and_then(|p| scaled.checked_mul(p))
                .ok_or_else(invalid)?
        } else {
            let divisor = 10u128
                .checked_pow(shift.unsigned_abs())
                .ok_or_else(invalid)?;
            scaled.div_ceil(divisor)
        };
        // Kubernetes' own limit: values beyond 2^63-1 of the base unit overflow.
        if nanos / 1_000_000_000 > i64::MAX as u128 {
            return Err(invalid());
        }
        Ok(Self {
            text: s.to_string(),
            nanos,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // YAML and JSON both allow a bare number (`cpu: 2`): accept it like kubectl.
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(u64),
            Float(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Int(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_forms_kubernetes_accepts_compare_by_value() {
        assert_eq!(q("500m"), q("0.5"));
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("128Mi"), q("134217728"));
        assert_eq!(q("1.5Gi"), q("1536Mi"));
        assert_eq!(q("+2"), q("2"));
        assert_eq!(q(".5"), q("500m"));
        assert!(q("100m") < q("1"));
        assert!(q("1G") < q("1Gi"));
        assert!(q("8Gi") < q("9Gi"));
        assert!(
            q("1n") > q("0"),
            "sub-unit values are rounded up, never to 0"
        );
        assert_eq!(q("512Mi").to_string(), "512Mi", "sent as written");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "-1",
            "1.2.3",
            "abc",
            "1 Gi",
            "1gi",
            "1KiB",
            "Mi",
            ".",
            "1e",
            "1e99",
            "99999999999999999999999999999999Ei",
            "1Ei1",
            "0x10",
            " 1",
        ] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad:?} accepted");
        }
        assert!("9".repeat(65).parse::<Quantity>().is_err());
    }

    #[test]
    fn yaml_and_json_numbers_are_quantities() {
        let v: Quantity = serde_json::from_str("2").unwrap();
        assert_eq!(v, q("2"));
        let v: Quantity = serde_json::from_str("0.5").unwrap();
        assert_eq!(v, q("500m"));
        assert!(serde_json::from_str::<Quantity>("-1").is_err());
    }
}
