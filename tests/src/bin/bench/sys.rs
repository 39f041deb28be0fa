//! What the bench reads from the OS: CPU time of a thread or a process, peak memory, the
//! machine; and the child processes it starts (killed when dropped).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// CPU time consumed by the calling thread so far (user + system), not time spent waiting.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID needs nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// User and system CPU time of the calling thread (`getrusage(RUSAGE_THREAD)`): precise in
/// sum, the split between the two is sampled, so only meaningful over many calls.
pub fn thread_user_sys() -> (Duration, Duration) {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let tv = |t: libc::timeval| {
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_usec).unwrap_or(0) * 1000,
        )
    };
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// utime + stime of a process (all its threads), from `/proc/<pid>/stat`.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) … utime(14) stime(15), i.e. indexes 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / clock_ticks(),
    ))
}

/// Busy CPU time of the whole machine (all cores), from `/proc/stat`.
pub fn machine_busy() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some(Duration::from_secs_f64(
        total.saturating_sub(idle) as f64 / clock_ticks(),
    ))
}

/// Peak resident memory (VmHWM) of a process, in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub struct Machine {
    pub cores: usize,
    pub model: String,
    pub rustc: String,
    pub load_at_start: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let load_at_start = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        model,
        rustc,
        load_at_start,
    }
}

/// A process the bench started: killed (by its own pid) when dropped.
pub struct ChildGuard {
    pub child: Child,
    // Kept open so that the child never writes to a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
}

impl ChildGuard {
    pub fn new(child: Child) -> Self {
        ChildGuard {
            child,
            _stdout: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts this executable again with `args` (a server of the bench), which prints the port
/// it listens on as its first line of output. Logs (stderr) go to `log`.
pub fn spawn_server(
    args: &[&str],
    envs: &[(String, String)],
    log: &Path,
) -> Result<(ChildGuard, u16), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(exe)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .map_err(|e| format!("spawn {args:?}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut guard = ChildGuard::new(child);
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("{args:?}: {e}"))?;
    let port = line
        .trim()
        .parse::<u16>()
        .map_err(|_| format!("{args:?} did not start (see {}): {line:?}", log.display()))?;
    guard._stdout = Some(reader);
    Ok((guard, port))
}

/// Runs the ignored test `test` of `tests/tests/{file}.rs` alone (`cargo test … --ignored
/// --exact --nocapture`, the test profile) with `envs` on top of this process's environment.
pub fn run_ignored_test(
    file: &str,
    test: &str,
    envs: &[(&str, String)],
) -> Result<std::process::Output, String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    Command::new("cargo")
        .current_dir(root)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .args([
            "test",
            "--quiet",
            "-p",
            "gateway-tests",
            "--test",
            file,
            "--",
            "--ignored",
            "--exact",
            test,
            "--nocapture",
        ])
        .output()
        .map_err(|e| format!("cargo test: {e}"))
}

/// The last `chars` characters of `text`.
pub fn tail(text: &str, chars: usize) -> String {
    let mut last: Vec<char> = text.chars().rev().take(chars).collect();
    last.reverse();
    last.into_iter().collect()
}
