//! scripts/worker-cgroup.sh for real: the kernel's own files say the limits are set and the
//! command is in its group; the CPU quota bounds CPU time; a worker whose group goes over its
//! memory limit is killed by the kernel's OOM killer and restarted by v2m-rt's supervision while
//! capture goes on.
//!
//! Needs a cgroup hierarchy this user may write: cgroup v1 memory and cpu as root (this
//! project's machines), or a delegated cgroup v2 subtree (a systemd user session). Needs the
//! model: scripts/setup-model.sh tiny.en.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;
use v2m_tests::watchdog::Watchdog;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/worker-cgroup.sh")
}

/// Where a controller's files for `pid` are: (the group's directory, whether it is v2).
fn group_of(pid: u32, controller: &str) -> (PathBuf, bool) {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f[2] == "cgroup" && f[3].split(',').any(|o| o == controller) {
            let own = cgroup
                .lines()
                .map(|l| l.splitn(3, ':').collect::<Vec<_>>())
                .find(|p| p[1].split(',').any(|c| c == controller))
                .map(|p| p[2].to_string())
                .unwrap();
            let dir = PathBuf::from(format!("{}{}", f[1], own));
            if dir.join(format!("{controller}.stat")).exists()
                || dir.join("memory.limit_in_bytes").exists()
                || dir.join("cpu.cfs_quota_us").exists()
            {
                return (dir, false);
            }
        }
    }
    let v2 = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f[2] == "cgroup2")
        .map(|f| f[1].to_string())
        .expect("no cgroup hierarchy");
    let own = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    (PathBuf::from(format!("{v2}{own}")), true)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Runs `sh -c body` under the script; returns the script and the pid the body writes.
fn limited(args: &[&str], body: &str, dir: &Path) -> (Child, u32) {
    let pid_file = dir.join("pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut child = Command::new(script())
        .args(args)
        .args(["--", "sh", "-c"])
        .arg(format!("echo $$ > {}; {body}", pid_file.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let since = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = t.trim().parse()
        {
            return (child, pid);
        }
        if since.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the command never started: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scratch(name: &str) -> PathBuf {
    v2m_tests::fixtures::scratch(&format!("cgroup-{name}"))
}

#[test]
fn limits_are_set_the_command_is_in_its_group_and_the_group_goes_with_it() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "cgroup limits");
    let dir = scratch("limits");
    let name = format!("v2m-test-{}", std::process::id());
    let (child, pid) = limited(
        &["--memory-max", "300M", "--cpu-quota", "50", "--name", &name],
        "exec sleep 60",
        &dir,
    );
    let (mem, v2) = group_of(pid, "memory");
    let (cpu, _) = group_of(pid, "cpu");
    eprintln!(
        "memory group {}, cpu group {}",
        mem.display(),
        cpu.display()
    );
    assert!(
        mem.ends_with(&name),
        "{} is not the command's own group",
        mem.display()
    );
    assert!(cpu.ends_with(&name), "{}", cpu.display());
    assert!(
        read(&mem.join("cgroup.procs"))
            .lines()
            .any(|l| l == pid.to_string())
    );
    if v2 {
        assert_eq!(read(&mem.join("memory.max")), (300u64 << 20).to_string());
        assert_eq!(read(&cpu.join("cpu.max")), "50000 100000");
    } else {
        assert_eq!(
            read(&mem.join("memory.limit_in_bytes")),
            (300u64 << 20).to_string()
        );
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    }
    // The script itself stays outside: only the command is limited.
    let (script_mem, _) = group_of(child.id(), "memory");
    assert_ne!(script_mem, mem);

    // SIGTERM reaches the command; the group is removed after it.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{out:?}");
    assert!(!mem.exists(), "{} was left behind", mem.display());
    assert!(!cpu.exists(), "{} was left behind", cpu.display());
}

#[test]
fn the_cpu_quota_bounds_cpu_time() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "cgroup cpu quota");
    let dir = scratch("cpu");
    // Two seconds of spinning under a quota of a quarter of one CPU.
    let (child, _) = limited(
        &["--cpu-quota", "25"],
        "exec python3 -c 'import os, time\nt = time.time()\nwhile time.time() - t < 2: pass\nprint(sum(os.times()[:2]))'",
        &dir,
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let cpu: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    eprintln!("CPU time in 2 s of spinning under a 25% quota: {cpu:.2} s");
    // Unlimited it would be about 2 s; the quota allows 0.5 s (plus a period of slack).
    assert!(cpu < 0.8, "{cpu} s of CPU: the quota is not applied");
    assert!(cpu > 0.1, "{cpu} s: the command barely ran");
}

#[test]
fn bad_options_are_refused_clearly() {
    for (args, says) in [
        (&["--memory-max", "5X", "--", "true"][..], "not a size"),
        (&["--memory-max", "1M", "--", "true"][..], "below 16M"),
        (&["--cpu-quota", "half", "--", "true"][..], "percentage"),
        (&["--", "true"][..], "nothing to limit"),
        (&["--memory-max", "64M"][..], "no command"),
        (
            &["--cgroup", "v3", "--memory-max", "64M", "--", "true"][..],
            "auto, v2 or v1",
        ),
        (
            &["--name", "a/b", "--memory-max", "64M", "--", "true"][..],
            "plain name",
        ),
        (&["--frobnicate", "--", "true"][..], "unknown option"),
    ] {
        let out = Command::new(script()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    }
}

/// Writes `bytes` into a tmpfs file from inside `procs`'s group. Its pages are charged to the
/// group and cannot be reclaimed (no swap), yet belong to no process: to get the group back under
/// its limit the OOM killer must take the group's biggest process, the worker.
fn fill_group(procs: &Path, file: &Path, bytes: u64) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && exec dd if=/dev/zero of={} bs=1M count={} status=none",
            procs.display(),
            file.display(),
            bytes >> 20
        ))
        .spawn()
        .unwrap()
}

#[test]
fn a_worker_over_its_memory_limit_is_killed_and_restarted_while_capture_goes_on() {
    let _wd = Watchdog::arm(Duration::from_secs(600), "cgroup OOM kill");
    let limit: u64 = 1 << 30;
    let mut worker = vec![
        script().display().to_string(),
        "--memory-max".into(),
        "1G".into(),
        "--".into(),
    ];
    worker.extend(tiny_worker());
    let mut p = pipeline_with("cgroup-oom", &worker, true);
    let pid = p.worker_pid().expect("the supervised worker runs");
    let (group, v2) = group_of(pid, "memory");
    // Anonymous memory: what the kernel cannot reclaim (page cache it can, so it does not count).
    let stat = read(&group.join("memory.stat"));
    let anon = stat
        .lines()
        .find_map(|l| l.strip_prefix(if v2 { "anon " } else { "rss " }))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("anonymous memory in memory.stat");
    eprintln!(
        "worker {pid} in {} holds {} MiB",
        group.display(),
        anon >> 20
    );
    assert!(anon < limit && anon > 64 << 20, "{anon}");

    let frames = |p: &Daemon| -> u64 {
        let s: serde_json::Value = serde_json::from_str(&ok(p.cli(&["--json", "status"]))).unwrap();
        s["Status"]["ring"]["frames_written"].as_u64().unwrap()
    };
    // A tmpfs file written from inside the worker's group takes what the worker does not
    // use and more: the group goes over its limit and the kernel kills the worker. The script
    // then clears the group (the writer goes with it) and v2m-rt starts it again.
    let before = frames(&p);
    let fill = PathBuf::from(format!("/dev/shm/v2m-test-fill-{}", std::process::id()));
    let mut filler = fill_group(&group.join("cgroup.procs"), &fill, limit - anon / 2);
    let since = Instant::now();
    while p.worker_pid() == Some(pid) {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the worker was not killed; its group: {}{}",
            std::fs::read_to_string(group.join("memory.stat")).unwrap_or_default(),
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = frames(&p);
    let _ = filler.kill();
    let _ = filler.wait();
    let _ = std::fs::remove_file(&fill);
    p.wait_for_worker(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let after = frames(&p);
    eprintln!("ring frames: {before} before, {during} at the kill, {after} after the restart");
    assert!(during > before && after > during, "capture stopped");
    let log = p.log_text();
    assert!(
        log.contains("the kernel killed") && log.contains("out of memory"),
        "the worker did not die of the memory limit:{log}"
    );
    let status = ok(p.cli(&["status"]));
    assert!(status.contains("restarts 1"), "{status}");
    assert!(!group.exists(), "{} was left behind", group.display());

    // The next session is transcribed by the restarted worker.
    let (wav, reference) = recording("0880");
    ok(p.cli(&["start"]));
    let (began, length) = play(&p, &wav);
    std::thread::sleep((began + length).saturating_duration_since(Instant::now()));
    let text = ok(p.cli(&["stop"]));
    assert!(close_enough(&reference, &text), "{text}");
}

/// The cgroup v2 choice, on a stand-in tree (this machine's v2 hierarchy has no controllers):
/// the group goes beside the script's own, under the nearest ancestor that offers the
/// controllers, which get enabled there; the limits are written in v2's files and the command
/// is put in the group. Plain files stand in for the kernel's, so only the choice and the
/// writes are checked here; the kernel's side is the v1 tests above.
#[test]
fn cgroup_v2_goes_beside_our_own_group_with_the_limits_in_v2_files() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "cgroup v2 choice");
    let dir = scratch("v2");
    let root = dir.join("cg");
    let own = root.join("user.slice/app.slice/term.scope");
    std::fs::create_dir_all(&own).unwrap();
    let put = |p: PathBuf, s: &str| std::fs::write(p, s).unwrap();
    // The top offers no memory: the group must not go there.
    put(root.join("cgroup.controllers"), "cpu io pids\n");
    put(root.join("cgroup.subtree_control"), "cpu\n");
    let app = root.join("user.slice/app.slice");
    put(
        root.join("user.slice/cgroup.controllers"),
        "cpu io memory pids\n",
    );
    put(
        root.join("user.slice/cgroup.subtree_control"),
        "cpu memory\n",
    );
    put(app.join("cgroup.controllers"), "cpu io memory pids\n");
    put(app.join("cgroup.subtree_control"), "memory pids\n");
    put(own.join("cgroup.controllers"), "cpu memory\n");
    put(own.join("cgroup.procs"), "1\n");
    put(
        dir.join("mounts"),
        &format!("cgroup2 {} cgroup2 rw 0 0\n", root.display()),
    );
    put(dir.join("self"), "0::/user.slice/app.slice/term.scope\n");

    let out = Command::new(script())
        .args(["--cgroup", "v2", "--memory-max", "64M", "--cpu-quota", "50"])
        .args(["--name", "dictation", "--", "sh", "-c", "echo $$"])
        .env("V2M_CGROUP_MOUNTS", dir.join("mounts"))
        .env("V2M_CGROUP_SELF", dir.join("self"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let group = app.join("dictation");
    assert!(
        err.contains(&format!("cgroup v2 {}", group.display())),
        "{err}"
    );
    assert_eq!(read(&group.join("memory.max")), (64u64 << 20).to_string());
    assert_eq!(read(&group.join("cpu.max")), "50000 100000");
    // cpu was not enabled below app.slice yet: the script asked for it.
    assert_eq!(read(&app.join("cgroup.subtree_control")), "+cpu");
    // The command itself (its pid survives `exec`) was written into the group.
    assert_eq!(
        read(&group.join("cgroup.procs")),
        String::from_utf8_lossy(&out.stdout).trim()
    );

    // Without any ancestor that offers memory, v2 is refused with the reason.
    put(app.join("cgroup.controllers"), "cpu io pids\n");
    put(root.join("user.slice/cgroup.controllers"), "cpu io pids\n");
    let out = Command::new(script())
        .args(["--cgroup", "v2", "--memory-max", "64M", "--name", "other"])
        .args(["--", "true"])
        .env("V2M_CGROUP_MOUNTS", dir.join("mounts"))
        .env("V2M_CGROUP_SELF", dir.join("self"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot use cgroup v2") && err.contains("memory"),
        "{err}"
    );
    assert!(!app.join("other").exists());
}
