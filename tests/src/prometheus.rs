//! A real Prometheus server (Debian's `prometheus`) scraping a target every second,
//! with a private config and TSDB in a temporary directory, queried over its HTTP
//! API; `promtool` for rule checks; and a reader for the text exposition format
//! that `/metrics` serves. Killed on drop.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{kill9, run_timeout, terminate, CmdOutput};
use crate::{free_port, require_peer, tempdir};

/// `GET http://ADDR/metrics`, as text.
pub fn scrape(addr: SocketAddr) -> String {
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client")
        .get(format!("http://{addr}/metrics"))
        .send()
        .unwrap_or_else(|e| panic!("scrape http://{addr}/metrics: {e}"));
    assert!(resp.status().is_success(), "scrape: {}", resp.status());
    resp.text().expect("metrics body")
}

/// One sample line of the exposition: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels, sorted.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parse the sample lines of a text exposition (comments skipped). Label values
/// here never contain `,` or `"` escapes (the CA's label vocabularies are tame),
/// so a simple split is enough.
pub fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let value: f64 = match value.parse() {
            Ok(v) => v,
            Err(_) => continue,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split(',')
            .filter(|kv| !kv.is_empty())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    out
}

/// Sum of the samples named `name` whose labels include every `(key, value)` of
/// `want` (0 when there is none).
pub fn sum(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Every series name a PromQL expression may use against this exposition: sample
/// names, plus the names a `# TYPE` line implies (counter → `_total`, histogram →
/// `_bucket`/`_sum`/`_count`), so families without samples yet still count.
pub fn series_names(text: &str) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = samples(text).into_iter().map(|s| s.name).collect();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let (Some(name), Some(kind)) = (it.next(), it.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for s in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{s}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// `promtool ARGS…` (Debian's, from the `prometheus` package).
pub fn promtool(args: &[&str]) -> CmdOutput {
    let mut c = Command::new(require_peer("promtool"));
    c.args(args);
    run_timeout(c, None, Duration::from_secs(120))
}

/// A running `prometheus` scraping one target every second.
#[derive(Debug)]
pub struct Prometheus {
    _dir: tempfile::TempDir,
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
    http: reqwest::blocking::Client,
}

impl Prometheus {
    /// Start Prometheus on a free loopback port, scraping `target` (`host:port`,
    /// path `/metrics`) every second with job name `rampart-ca`, loading the rule
    /// files `rules` (evaluated every second). Waits until it is ready.
    pub fn start(target: SocketAddr, rules: &[&Path]) -> Prometheus {
        Self::start_jobs(&[("rampart-ca", target)], rules)
    }

    /// Start Prometheus scraping each `(job, target)` every second.
    pub fn start_jobs(jobs: &[(&str, SocketAddr)], rules: &[&Path]) -> Prometheus {
        let bin = require_peer("prometheus");
        let dir = tempdir("prometheus");
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let rule_list = rules
            .iter()
            .map(|r| format!("  - {:?}\n", r.display().to_string()))
            .collect::<String>();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{}\
             scrape_configs:\n{}",
            if rule_list.is_empty() {
                "  []\n".to_owned()
            } else {
                rule_list
            },
            jobs.iter()
                .map(|(job, target)| format!(
                    "  - job_name: {job}\n    static_configs:\n      - targets: [\"{target}\"]\n"
                ))
                .collect::<String>()
        );
        let config = config.replace("rule_files:\n  []\n", "rule_files: []\n");
        let conf_path = dir.path().join("prometheus.yml");
        fs::write(&conf_path, &config).expect("write prometheus.yml");
        let log = dir.path().join("prometheus.log");
        let log_file = fs::File::create(&log).expect("create prometheus.log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", conf_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-lifecycle")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log fd"))
            .stderr(log_file)
            .spawn()
            .expect("spawn prometheus");
        let mut p = Prometheus {
            _dir: dir,
            child: Some(child),
            addr,
            log,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("HTTP client"),
        };
        let deadline = Instant::now() + crate::process::START_TIMEOUT;
        loop {
            if let Ok(r) = p.http.get(format!("http://{addr}/-/ready")).send() {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(c) = p.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("prometheus exited ({status}) before ready:\n{}", p.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 60 s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /api/v1/query?query=Q`: the instant vector as (labels, value) pairs.
    pub fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let resp: serde_json::Value = self
            .http
            .get(format!("http://{}/api/v1/query", self.addr))
            .query(&[("query", promql)])
            .send()
            .unwrap_or_else(|e| panic!("query {promql}: {e}"))
            .json()
            .unwrap_or_else(|e| panic!("query {promql}: not JSON: {e}"));
        assert_eq!(resp["status"], "success", "query {promql}: {resp}");
        let result = &resp["data"]["result"];
        let Some(list) = result.as_array() else {
            // A scalar result: [time, "value"].
            let v = result[1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            return vec![(BTreeMap::new(), v)];
        };
        list.iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let v = r["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN);
                (labels, v)
            })
            .collect()
    }

    /// The single value of `promql` (summed if it returns several series; `None`
    /// if it returns none).
    pub fn value(&self, promql: &str) -> Option<f64> {
        let r = self.query(promql);
        if r.is_empty() {
            None
        } else {
            Some(r.iter().map(|(_, v)| v).sum())
        }
    }

    /// Poll `promql` until its value satisfies `ok` (20 s deadline; scrapes are
    /// every second but CI is slow). Returns the last value; panics with it and
    /// the expectation on timeout.
    pub fn wait_for(&self, promql: &str, what: &str, ok: impl Fn(Option<f64>) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.value(promql);
            if ok(v) {
                return v.unwrap_or(0.0);
            }
            assert!(
                Instant::now() < deadline,
                "PromQL `{promql}` should be {what}, is {v:?} after 20 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Names of the alerts currently pending or firing.
    pub fn alerts(&self) -> Vec<(String, String)> {
        let resp: serde_json::Value = self
            .http
            .get(format!("http://{}/api/v1/alerts", self.addr))
            .send()
            .expect("GET /api/v1/alerts")
            .json()
            .expect("alerts JSON");
        resp["data"]["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                            x["state"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(5));
            kill9(&mut c);
        }
    }
}
