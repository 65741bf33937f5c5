//! Stopping and starting the control plane's processes, for fault tests.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::{ControlPlane, Proc};

/// Restarts, for fault tests: a process stopped and started again on the same port, flags
/// and data, as a rolling upgrade or a crash would. Only on a control plane the test owns
/// ([`ControlPlane::start`]), never on [`shared`].
impl ControlPlane {
    /// Stops `name` (`etcd`, `kube-apiserver`, `kube-controller-manager`): SIGTERM, then
    /// SIGKILL if it is still running after 10 s.
    pub fn stop_process(&mut self, name: &str) -> Result<()> {
        let proc = self.proc_mut(name)?;
        if proc.child.try_wait()?.is_some() {
            return Ok(());
        }
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe {
            libc::kill(proc.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = proc.child.kill();
                proc.child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Starts a stopped `name` again with the same flags (its log is appended to) and waits
    /// until it serves: etcd's `/health`, the apiserver's `/readyz` (which includes etcd).
    /// Returns how long that took.
    pub async fn start_process(&mut self, name: &str) -> Result<Duration> {
        let started = Instant::now();
        let bin = self.bin_dir.join(name);
        let proc = self.proc_mut(name)?;
        ensure!(proc.child.try_wait()?.is_some(), "{name} is still running");
        let out = fs::OpenOptions::new().append(true).open(&proc.log)?;
        proc.child = Command::new(&bin)
            .args(&proc.args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .with_context(|| format!("restarting {}", bin.display()))?;
        let pid = proc.child.id();
        let etcd_url = proc
            .args
            .iter()
            .find_map(|a| a.strip_prefix("--listen-client-urls="))
            .map(str::to_owned);
        self.supervisor.watch(pid)?;
        let http = self.http_client()?;
        let url = match (name, etcd_url) {
            ("etcd", Some(etcd)) => Some(format!("{etcd}/health")),
            ("kube-apiserver", _) => Some(format!("{}/readyz", self.server_url)),
            _ => None,
        };
        if let Some(url) = url {
            self.wait_for(&format!("{name} after a restart"), name, || {
                let request = http.get(&url);
                async move { Ok(request.send().await?.status().is_success()) }
            })
            .await?;
        }
        Ok(started.elapsed())
    }

    fn proc_mut(&mut self, name: &str) -> Result<&mut Proc> {
        self.procs
            .iter_mut()
            .find(|p| p.name == name)
            .with_context(|| format!("no process {name} in this control plane"))
    }
}
