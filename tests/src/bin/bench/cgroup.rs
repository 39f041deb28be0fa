//! A Lambda-sized CPU (issue 18): a cgroup of the bench's own whose CPU quota is a 128 MB
//! function's share of a vCPU. Lambda gives CPU in proportion to memory, one full vCPU at
//! 1,769 MB (AWS Lambda Developer Guide, "Configure Lambda function memory"), so 128 MB is
//! 128/1769 = 7.2 %: 1 ms of CPU in each 13.82 ms period (1 ms is the kernel's smallest
//! quota). The child processes the bench starts are moved into it between fork and exec.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The memory size whose CPU share is reproduced.
pub const LAMBDA_MEMORY_MB: u64 = 128;
/// The memory size at which a function has one full vCPU.
const ONE_VCPU_MB: u64 = 1769;
/// The CFS quota: the kernel's smallest (1 ms), the period stretched to match the share.
const QUOTA_US: u64 = 1_000;

pub fn period_us(memory_mb: u64) -> u64 {
    QUOTA_US * ONE_VCPU_MB / memory_mb.max(1)
}

/// A cgroup with the quota set; removed when dropped (once its processes have ended).
pub struct LambdaCpu {
    dir: PathBuf,
    /// `cgroup.procs`, opened before any fork: the child writes "0" (itself) into it.
    procs: File,
    pub description: String,
}

impl LambdaCpu {
    /// cgroup v2 (`cpu.max`) where mounted, else v1 (`cpu.cfs_period_us`, `cpu.cfs_quota_us`).
    /// `Err` says why not (not mounted, not writable): the caller prints it and skips.
    pub fn create(name: &str) -> Result<Self, String> {
        let period = period_us(LAMBDA_MEMORY_MB);
        let mut tried = Vec::new();
        for (root, version) in mount_points() {
            let dir = root.join(name);
            match Self::create_in(&dir, version, period) {
                Ok(cpu) => return Ok(cpu),
                Err(e) => {
                    let _ = std::fs::remove_dir(&dir);
                    tried.push(format!("{}: {e}", dir.display()));
                }
            }
        }
        if tried.is_empty() {
            tried.push("no cgroup v2 or v1 cpu controller is mounted".into());
        }
        Err(tried.join("; "))
    }

    fn create_in(dir: &Path, version: u8, period: u64) -> Result<Self, String> {
        let write = |file: &str, value: &str| {
            std::fs::write(dir.join(file), value).map_err(|e| format!("{file}: {e}"))
        };
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let description = if version == 2 {
            if let Some(parent) = dir.parent() {
                // The parent hands the cpu controller down (already so where it is delegated).
                let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+cpu");
            }
            write("cpu.max", &format!("{QUOTA_US} {period}"))?;
            format!("cgroup v2 cpu.max \"{QUOTA_US} {period}\"")
        } else {
            write("cpu.cfs_period_us", &period.to_string())?;
            write("cpu.cfs_quota_us", &QUOTA_US.to_string())?;
            format!("cgroup v1 cpu.cfs_quota_us {QUOTA_US} per cpu.cfs_period_us {period}")
        };
        let procs = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| format!("cgroup.procs: {e}"))?;
        Ok(LambdaCpu {
            dir: dir.to_owned(),
            procs,
            description: format!(
                "{description} ({:.1} % of a CPU, a {LAMBDA_MEMORY_MB} MB Lambda's share)",
                100.0 * QUOTA_US as f64 / period as f64
            ),
        })
    }

    /// Makes `command`'s process join the cgroup before it executes its binary, so that its
    /// whole start is under the quota.
    pub fn confine(&self, command: &mut Command) {
        let fd = self.procs.as_raw_fd();
        // SAFETY: between fork and exec the hook only calls write(2) on a descriptor opened
        // beforehand, which is async-signal-safe; "0" names the calling process.
        unsafe {
            command.pre_exec(move || {
                if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
}

impl Drop for LambdaCpu {
    fn drop(&mut self) {
        let _ = self.procs.flush();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Where a cpu controller is mounted: v2 first (`cgroup2`, with `cpu` among its
/// controllers), then v1 (`cgroup` with the `cpu` option).
fn mount_points() -> Vec<(PathBuf, u8)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut found = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(path), Some(kind), Some(options)) = (fields.get(1), fields.get(2), fields.get(3))
        else {
            continue;
        };
        let path = PathBuf::from(path);
        if *kind == "cgroup2" {
            let controllers =
                std::fs::read_to_string(path.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "cpu") {
                found.insert(0, (path, 2));
            }
        } else if *kind == "cgroup" && options.split(',').any(|o| o == "cpu") {
            found.push((path, 1));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_128_mb_function_gets_1_ms_in_13_82() {
        assert_eq!(super::period_us(128), 13_820);
        assert_eq!(super::period_us(1769), 1_000);
    }
}
