//! What the archive keeps of a run: its record (`run.json`: the final status answer,
//! the pods' summary, which log objects it has) and the rules that turn an archived
//! log back into a log answer (`tail`, `timestamps`, `since_*`, `limit_bytes`).

use serde::{Deserialize, Serialize};

/// The version of the record format written now.
pub const FORMAT: u32 = 1;

/// `run.json`: written last, so that a run is archived exactly when its record exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: u32,
    pub namespace: String,
    pub job_name: String,
    /// The Job's uid: a Job created again under the same name is another run.
    pub job_uid: Option<String>,
    /// The Job's creation time, labels and SparkTest's annotations (its run id,
    /// template, test definition and display name), for the job list.
    pub created_at: Option<String>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// When the record was written (RFC 3339).
    pub archived_at: String,
    /// The status answer as `GET .../status` gave it when the run ended (without its
    /// `timestamp`); `status` is `cancelled` for a run deleted before it finished.
    pub status: serde_json::Value,
    /// The pod the log endpoints read by default (kubectl's pick), if any pod existed.
    pub default_pod: Option<String>,
    pub pods: Vec<PodSummary>,
}

/// One pod of the run, retries included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodSummary {
    pub name: String,
    pub phase: Option<String>,
    pub start_time: Option<String>,
    /// The container the log endpoints read by default.
    pub default_container: Option<String>,
    pub containers: Vec<ContainerSummary>,
}

/// One container of a pod, with its log as archived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSummary {
    pub name: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The archive's key of the gzip-compressed log (kubelet timestamps on each line);
    /// `None` when the kubelet had no log to give.
    pub log_key: Option<String>,
    /// Bytes of log archived (uncompressed).
    pub log_bytes: u64,
    /// The log was longer than the archive's per-container cap and was cut there.
    pub truncated: bool,
}

impl RunRecord {
    pub fn pod(&self, name: &str) -> Option<&PodSummary> {
        self.pods.iter().find(|p| p.name == name)
    }
}

/// Keys of a run's objects in the archive, relative to its root.
pub fn record_key(namespace: &str, job: &str) -> String {
    format!("{namespace}/{job}/run.json")
}

pub fn log_key(namespace: &str, job: &str, pod: &str, container: &str) -> String {
    format!("{namespace}/{job}/logs/{pod}/{container}.log.gz")
}

/// The namespace and job of a record key (`{ns}/{job}/run.json`).
pub fn parse_record_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_suffix("/run.json")?;
    let (ns, job) = rest.split_once('/')?;
    (!job.contains('/')).then_some((ns, job))
}

/// How an archived log is read back: the log endpoints' parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Render {
    pub tail_lines: u32,
    pub timestamps: bool,
    /// Only lines at or after this time.
    pub since: Option<std::time::SystemTime>,
    pub limit_bytes: u64,
    /// Each line prefixed (`[pod/P/C] ` for `all_containers`).
    pub prefix: Option<String>,
}

impl Render {
    /// Whether [`render`] would give `log` back unchanged: no filter, no prefix, the
    /// timestamps kept, and the whole log within the tail and the byte limit.
    pub fn shows_all_of(&self, log: &str) -> bool {
        self.since.is_none()
            && self.timestamps
            && self.prefix.is_none()
            && log.len() as u64 <= self.limit_bytes
            && line_count(log) <= self.tail_lines as usize
    }
}

/// Lines of a log (a last line without its newline counts).
fn line_count(log: &str) -> usize {
    let newlines = log.bytes().filter(|b| *b == b'\n').count();
    newlines + usize::from(!log.is_empty() && !log.ends_with('\n'))
}

/// The answer's text from an archived log (each line `TIMESTAMP SP TEXT`): lines since
/// `since`, the last `tail_lines` of them, timestamps kept or cut, at most `limit_bytes`
/// (cut at a character boundary). Returns the text and whether it was cut.
pub fn render(log: &str, how: &Render) -> (String, bool) {
    let lines: Vec<&str> = log
        .split_inclusive('\n')
        .filter(|line| match how.since {
            None => true,
            Some(since) => line_time(line).is_none_or(|t| t >= since),
        })
        .collect();
    let skip = lines.len().saturating_sub(how.tail_lines as usize);
    let mut out = String::new();
    let limit = usize::try_from(how.limit_bytes).unwrap_or(usize::MAX);
    for line in &lines[skip..] {
        let text = if how.timestamps {
            *line
        } else {
            line.split_once(' ').map_or(*line, |(_, rest)| rest)
        };
        let prefix = how.prefix.as_deref().unwrap_or("");
        if out.len() + prefix.len() + text.len() > limit {
            let room = limit.saturating_sub(out.len());
            let piece = format!("{prefix}{text}");
            let mut cut = room.min(piece.len());
            while !piece.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&piece[..cut]);
            return (out, true);
        }
        out.push_str(prefix);
        out.push_str(text);
    }
    (out, false)
}

/// [`render`] over a gzip-compressed log read as a stream: only the window's lines
/// (at most `tail_lines`, at most `limit_bytes` of them) are held.
pub fn render_stream(gzip: impl std::io::Read, how: &Render) -> std::io::Result<(String, bool)> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(flate2::read::GzDecoder::new(gzip));
    let mut window: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut held = 0usize;
    let room = usize::try_from(how.limit_bytes).unwrap_or(usize::MAX);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        if how
            .since
            .is_some_and(|since| line_time(&line).is_some_and(|t| t < since))
        {
            continue;
        }
        held += line.len();
        window.push_back(std::mem::take(&mut line));
        // More than the answer can hold is dropped from the front as it comes.
        while window.len() > how.tail_lines as usize
            || (held > room.saturating_add(4096) && window.len() > 1)
        {
            if let Some(old) = window.pop_front() {
                held -= old.len();
            }
        }
    }
    let text: String = window.into_iter().collect();
    Ok(render(
        &text,
        &Render {
            since: None,
            ..how.clone()
        },
    ))
}

/// The kubelet timestamp that starts a log line.
fn line_time(line: &str) -> Option<std::time::SystemTime> {
    crate::time::parse_rfc3339(line.split_once(' ')?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-11-26T11:48:19.100000000Z one\n2026-11-26T11:48:20.200000000Z two\n2026-11-26T11:48:21.300000000Z three\n";

    fn how() -> Render {
        Render {
            tail_lines: 1000,
            timestamps: true,
            since: None,
            limit_bytes: 1 << 20,
            prefix: None,
        }
    }

    #[test]
    fn render_table() {
        let at = |s: &str| crate::time::parse_rfc3339(s);
        let cases = [
            ("everything", how(), LOG.to_string(), false),
            (
                "tail 2",
                Render {
                    tail_lines: 2,
                    ..how()
                },
                LOG.lines().skip(1).map(|l| format!("{l}\n")).collect(),
                false,
            ),
            (
                "no timestamps",
                Render {
                    timestamps: false,
                    ..how()
                },
                "one\ntwo\nthree\n".into(),
                false,
            ),
            (
                "since, as a time",
                Render {
                    since: at("2026-11-26T13:48:20+02:00"),
                    timestamps: false,
                    ..how()
                },
                "two\nthree\n".into(),
                false,
            ),
            (
                "limit cuts and says so",
                Render {
                    limit_bytes: 8,
                    timestamps: false,
                    ..how()
                },
                "one\ntwo\n".into(),
                true,
            ),
            (
                "a prefix on each line",
                Render {
                    prefix: Some("[pod/p/main] ".into()),
                    timestamps: false,
                    tail_lines: 1,
                    ..how()
                },
                "[pod/p/main] three\n".into(),
                false,
            ),
        ];
        for (name, how, want, cut) in cases {
            assert_eq!(render(LOG, &how), (want, cut), "{name}");
        }
    }

    #[test]
    fn a_cut_never_splits_a_character_and_a_last_line_without_newline_counts() {
        let (text, cut) = render(
            "2026-01-01T00:00:00Z ééé",
            &Render {
                timestamps: false,
                limit_bytes: 3,
                ..how()
            },
        );
        assert_eq!((text.as_str(), cut), ("é", true));
    }

    #[test]
    fn the_whole_log_is_recognised_so_it_is_not_copied() {
        assert!(how().shows_all_of(LOG));
        assert_eq!(render(LOG, &how()), (LOG.to_string(), false));
        for (name, r) in [
            (
                "tail",
                Render {
                    tail_lines: 2,
                    ..how()
                },
            ),
            (
                "timestamps",
                Render {
                    timestamps: false,
                    ..how()
                },
            ),
            (
                "limit",
                Render {
                    limit_bytes: 10,
                    ..how()
                },
            ),
            (
                "prefix",
                Render {
                    prefix: Some("[x] ".into()),
                    ..how()
                },
            ),
            (
                "since",
                Render {
                    since: Some(std::time::UNIX_EPOCH),
                    ..how()
                },
            ),
        ] {
            assert!(!r.shows_all_of(LOG), "{name}");
        }
        assert!(
            Render {
                tail_lines: 3,
                ..how()
            }
            .shows_all_of(LOG)
        );
        assert!(
            Render {
                tail_lines: 1,
                ..how()
            }
            .shows_all_of("one line, no newline")
        );
    }

    #[test]
    fn a_streamed_render_is_the_same_answer_holding_only_the_window() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(LOG.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let at = |s: &str| crate::time::parse_rfc3339(s);
        for r in [
            how(),
            Render {
                tail_lines: 2,
                ..how()
            },
            Render {
                timestamps: false,
                limit_bytes: 8,
                ..how()
            },
            Render {
                since: at("2026-11-26T11:48:20Z"),
                ..how()
            },
            Render {
                prefix: Some("[p] ".into()),
                tail_lines: 1,
                ..how()
            },
        ] {
            assert_eq!(
                render_stream(&gz[..], &r).unwrap(),
                render(LOG, &r),
                "{r:?}"
            );
        }
    }

    #[test]
    fn record_keys_round_trip() {
        let key = record_key("team-a", "test-run-1");
        assert_eq!(key, "team-a/test-run-1/run.json");
        assert_eq!(parse_record_key(&key), Some(("team-a", "test-run-1")));
        assert_eq!(parse_record_key("team-a/x/logs/p/c.log.gz"), None);
        assert_eq!(parse_record_key("a/b/c/run.json"), None);
    }
}
