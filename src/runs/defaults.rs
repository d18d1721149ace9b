//! The configured defaults and maxima every run is held to ([`RunDefaults`]): their
//! built-in values, the `cpu=…,memory=…` flag syntax ([`ResourceList`]'s `FromStr`)
//! and [`RunDefaults::check`].

use super::spec::ResourceList;
use crate::quantity::Quantity;

/// The configured defaults and maxima every run is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDefaults {
    pub requests: ResourceList,
    pub limits: ResourceList,
    /// Neither a request nor a limit may exceed these.
    pub max: ResourceList,
    pub timeout_seconds: u32,
    pub ttl_seconds_after_finished: u32,
    pub backoff_limit: u32,
}

impl Default for RunDefaults {
    fn default() -> Self {
        let q = |s: &str| Some(s.parse().expect("a valid default quantity"));
        Self {
            requests: ResourceList {
                cpu: q("100m"),
                memory: q("128Mi"),
            },
            limits: ResourceList {
                cpu: q("1"),
                memory: q("512Mi"),
            },
            max: ResourceList {
                cpu: q("4"),
                memory: q("8Gi"),
            },
            timeout_seconds: 3600,
            ttl_seconds_after_finished: 86400,
            backoff_limit: 0,
        }
    }
}

impl std::str::FromStr for ResourceList {
    type Err = String;

    /// `cpu=500m,memory=1Gi` (either may be left out), as `kubectl run --requests`
    /// took it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut list = ResourceList::default();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                format!("'{pair}' is not name=quantity (e.g. cpu=500m,memory=1Gi)")
            })?;
            let value: Quantity = value
                .trim()
                .parse()
                .map_err(|e: crate::quantity::InvalidQuantity| e.to_string())?;
            match name.trim() {
                "cpu" => list.cpu = Some(value),
                "memory" => list.memory = Some(value),
                other => {
                    return Err(format!(
                        "unknown resource '{other}': cpu and memory are known"
                    ));
                }
            }
        }
        Ok(list)
    }
}

impl RunDefaults {
    /// Checks that the defaults themselves respect the maximum and each other.
    pub fn check(&self) -> Result<(), String> {
        for (side, list) in [
            ("DEFAULT_REQUESTS", &self.requests),
            ("DEFAULT_LIMITS", &self.limits),
            ("MAX_RESOURCES", &self.max),
        ] {
            if list.cpu.is_none() || list.memory.is_none() {
                return Err(format!(
                    "{side} must give both cpu and memory (e.g. cpu=1,memory=512Mi): every run's are always set"
                ));
            }
        }
        for (name, value) in [("cpu", &self.limits.cpu), ("memory", &self.limits.memory)] {
            if value.as_ref().is_some_and(Quantity::is_zero) {
                return Err(format!(
                    "DEFAULT_LIMITS {name} must be more than 0 (a zero limit is no limit)"
                ));
            }
        }
        for (side, list) in [
            ("DEFAULT_REQUESTS", &self.requests),
            ("DEFAULT_LIMITS", &self.limits),
        ] {
            for (name, value, max) in [
                ("cpu", &list.cpu, &self.max.cpu),
                ("memory", &list.memory, &self.max.memory),
            ] {
                if let (Some(v), Some(m)) = (value, max)
                    && v > m
                {
                    return Err(format!(
                        "{side} {name}={v} exceeds MAX_RESOURCES {name}={m}"
                    ));
                }
            }
        }
        for (name, r, l) in [
            ("cpu", &self.requests.cpu, &self.limits.cpu),
            ("memory", &self.requests.memory, &self.limits.memory),
        ] {
            if let (Some(r), Some(l)) = (r, l)
                && r > l
            {
                return Err(format!(
                    "DEFAULT_REQUESTS {name}={r} exceeds DEFAULT_LIMITS {name}={l}"
                ));
            }
        }
        Ok(())
    }
}
