//! `ferry daemon` stopping and starting: SIGTERM in the middle of a capture stops it
//! within seconds and leaves no point; SIGKILL in the middle of one, then a restart:
//! the next sync succeeds (reusing what the killed capture uploaded) and the store
//! verifies with every chunk read.

use std::time::Duration;

use anyhow::Result;
use ferry_tests::dr::{points, wait_until, BedHost, Daemon, DrBed};

/// The host's `cat` of its disk never ends (a disk far larger than the test waits for).
fn endless_disk(bed: &DrBed, host: &str) -> Result<()> {
    let h = bed.stack.host(host);
    h.install_command(
        "cat",
        &format!(
            "#!/bin/sh\n[ \"$1\" = -- ] && shift\ncase \"$1\" in\n\
             {}) while head -c 65536 /dev/urandom; do sleep 0.02; done;;\n\
             *) exec /bin/cat \"$@\";;\nesac\n",
            h.disk.display()
        ),
    )
}

fn normal_disk(bed: &DrBed, host: &str) -> Result<()> {
    std::fs::remove_file(bed.stack.host(host).dir.join("bin/cat"))?;
    Ok(())
}

#[test]
fn daemon_stops_on_sigterm_mid_capture_and_resumes_after_sigkill() -> Result<()> {
    let hosts = [BedHost::new("db1", "db", None)];
    let bed = DrBed::new("steady", &hosts, 16, "1h", "", &|_| String::new())?;
    bed.ferry.json(&["protect", "steady"])?;
    let moto = bed.moto();

    // SIGTERM while a capture reads: out within seconds, no point.
    endless_disk(&bed, "db1")?;
    let mut d = Daemon::start(&bed.ferry, bed.log("daemon1.log"), &[])?;
    d.wait_log("sync starts", Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_secs(2));
    let (took, status) = d.terminate(Duration::from_secs(10))?;
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(status.success(), "{status}: {}", d.log_text());
    assert!(
        d.log_text().contains("no point written"),
        "{}",
        d.log_text()
    );
    assert_eq!(
        bed.ferry.json(&["points", "db1"])?.as_array().map(Vec::len),
        Some(0)
    );

    // SIGKILL while a capture uploads; then a restart with the disk readable again.
    let mut d = Daemon::start(&bed.ferry, bed.log("daemon2.log"), &[])?;
    d.wait_log("sync starts", Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_secs(3));
    d.kill9()?;
    assert_eq!(
        bed.ferry.json(&["points", "db1"])?.as_array().map(Vec::len),
        Some(0)
    );
    normal_disk(&bed, "db1")?;
    let mut d = Daemon::start(&bed.ferry, bed.log("daemon3.log"), &[])?;
    wait_until(
        "a point after the restart",
        Duration::from_secs(120),
        || Ok(!points(moto, "db1")?.is_empty()),
    )?;
    let log = d.log_text();
    assert!(log.contains("captured"), "{log}");
    let (_, status) = d.terminate(Duration::from_secs(10))?;
    assert!(status.success());
    let v = bed.ferry.json(&["verify", "--read-data"])?;
    assert_eq!(v["ok"], true, "{v}");
    Ok(())
}

#[test]
fn daemon_keeps_syncing_the_others_while_a_host_fails() -> Result<()> {
    let hosts = [
        BedHost::new("db1", "db", None),
        BedHost::new("web1", "web", None),
    ];
    let mut bed = DrBed::new("uneven", &hosts, 2, "3s", "", &|_| String::new())?;
    bed.ferry.json(&["protect", "uneven"])?;
    // db1 is down from the start: its syncs fail, back off and are tried again.
    bed.stack.host_mut("db1").stop();
    let mut d = Daemon::start(&bed.ferry, bed.log("daemon.log"), &[])?;
    wait_until("three points of web1", Duration::from_secs(120), || {
        Ok(points(bed.moto(), "web1")?.len() >= 3)
    })?;
    d.wait_log("retry_in_s", Duration::from_secs(30))?;
    let log = d.log_text();
    let failures = log
        .lines()
        .filter(|l| l.contains("sync failed") && l.contains("host=db1"))
        .count();
    assert!(failures >= 2, "db1 was not tried again:\n{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("sync failed") && l.contains("host=web1")),
        "{log}"
    );
    assert!(points(bed.moto(), "db1")?.is_empty());
    // Back up: db1 syncs again without a restart.
    bed.stack.host_mut("db1").restart()?;
    wait_until("a point of db1", Duration::from_secs(120), || {
        Ok(!points(bed.moto(), "db1")?.is_empty())
    })?;
    d.terminate(Duration::from_secs(10))?;
    Ok(())
}
