//! Device discovery on fixture trees (`tests/fixtures/devroot/<name>`, laid out like `/`) and on
//! this machine. Fixtures hold symlinks and Unix modes: Unix only.
#![cfg(unix)]

use std::path::PathBuf;

use xnpu::{Device, DeviceStatus, Discovery};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/devroot")
        .join(name)
}

/// Discovery of a fixture as seen from an x86_64 machine (so the simulator row is there).
fn at(name: &str) -> Discovery {
    Discovery::at(fixture(name)).arch("x86_64")
}

fn row<'a>(devices: &'a [Device], id: &str) -> &'a Device {
    devices
        .iter()
        .find(|d| d.id() == id)
        .unwrap_or_else(|| panic!("no {id} row in {devices:#?}"))
}

/// Every family is listed, the CPU is available, and every row has a hint.
fn check_rows(devices: &[Device]) {
    let cpu = row(devices, "cpu");
    assert!(cpu.available(), "{cpu:?}");
    for id in ["openvino:npu", "xdna:npu", "qnn:htp"] {
        row(devices, id);
    }
    for d in devices {
        assert!(!d.hint.trim().is_empty(), "{} has no hint", d.id());
        assert!(!d.hint.contains('\n'), "{} hint is not one line", d.id());
    }
}

fn tried(status: &DeviceStatus) -> &[PathBuf] {
    match status {
        DeviceStatus::LibraryMissing { tried } => tried,
        other => panic!("expected LibraryMissing, got {other:?}"),
    }
}

#[test]
fn intel_npu_bound_with_library_is_available() {
    let lib = fixture("intel-npu/opt/intel/libopenvino_c.so.2641");
    let devices = at("intel-npu").env("XNPU_OPENVINO_LIB", &lib).devices();
    check_rows(&devices);
    let npu = row(&devices, "openvino:npu");
    assert_eq!(npu.status, DeviceStatus::Available, "{npu:#?}");
    assert_eq!(npu.device, "Intel Meteor Lake NPU [8086:7d1d]");
    assert_eq!(
        npu.driver.as_deref(),
        Some("intel_vpu (kernel 6.8.0-45-generic)")
    );
    let found = npu.library.as_ref().unwrap();
    assert_eq!(found.path, lib);
    assert_eq!(found.version.as_deref(), Some("2026.4.1"));
    assert!(npu.details.contains("/dev/accel/accel0"));
    // OpenVINO was found, so its CPU plugin is listed too, and never called an NPU.
    let ov_cpu = row(&devices, "openvino:cpu");
    assert!(ov_cpu.available());
    assert!(ov_cpu.hint.contains("not an NPU"));
    // The CPU row reads the fixture's /proc/cpuinfo.
    let cpu = row(&devices, "cpu");
    assert_eq!(cpu.vendor, "GenuineIntel");
    assert_eq!(cpu.device, "Intel(R) Core(TM) Ultra 7 155H (2 threads)");
    // Nothing else is there.
    assert_eq!(row(&devices, "xdna:npu").status, DeviceStatus::NotPresent);
    assert_eq!(row(&devices, "qnn:htp").status, DeviceStatus::NotPresent);
}

#[test]
fn intel_npu_without_openvino_lists_where_it_looked() {
    let devices = at("intel-npu").devices();
    let npu = row(&devices, "openvino:npu");
    let tried = tried(&npu.status);
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    assert!(
        tried
            .iter()
            .any(|p| p.ends_with("openvino/libs/libopenvino_c.so*")),
        "{tried:?}"
    );
    assert!(
        tried.iter().any(|p| p.contains("/opt/intel/openvino*")),
        "{tried:?}"
    );
    assert!(npu.hint.contains("pip install openvino"), "{}", npu.hint);
    assert!(npu.hint.contains("XNPU_OPENVINO_LIB"), "{}", npu.hint);
    // No OpenVINO, no openvino:cpu row.
    assert!(devices.iter().all(|d| d.id() != "openvino:cpu"));
}

#[test]
fn an_override_that_names_nothing_is_reported_not_skipped() {
    let bogus = fixture("intel-npu/nowhere/libopenvino_c.so");
    let devices = at("intel-npu").env("XNPU_OPENVINO_LIB", &bogus).devices();
    assert_eq!(tried(&row(&devices, "openvino:npu").status), [bogus]);
}

#[test]
fn amd_xdna_without_driver_is_driver_not_bound() {
    let devices = at("amd-xdna-unbound").devices();
    check_rows(&devices);
    let npu = row(&devices, "xdna:npu");
    assert_eq!(npu.status, DeviceStatus::DriverNotBound, "{npu:#?}");
    assert!(npu.device.contains("[1022:1502]"), "{}", npu.device);
    assert!(npu.details.contains("0000:c4:00.1"));
    assert!(npu.hint.contains("amdxdna"), "{}", npu.hint);
    assert!(npu.hint.contains("modprobe"), "{}", npu.hint);
    assert!(npu.hint.contains("6.14"), "{}", npu.hint);
    assert!(npu.hint.contains("this kernel: 6.8.0"), "{}", npu.hint);
    // Phoenix is XDNA 1: the hint says so.
    assert!(npu.hint.contains("XDNA 1"), "{}", npu.hint);
    // The host bridge (1022:14e8) is not mistaken for an NPU, and nothing else is found.
    assert_eq!(
        row(&devices, "openvino:npu").status,
        DeviceStatus::NotPresent
    );
}

#[test]
fn amd_xdna_node_not_writable_is_no_permission() {
    // proc/self/status says uid 54321; the node is owned by whoever checked out the tree and
    // is not world-writable (git stores 0644).
    let devices = at("amd-xdna-noperm").devices();
    check_rows(&devices);
    let npu = row(&devices, "xdna:npu");
    assert_eq!(npu.status, DeviceStatus::NoPermission, "{npu:#?}");
    assert_eq!(npu.device, "AMD XDNA 2 NPU (Strix Point) [1022:17f0]");
    assert_eq!(npu.driver.as_deref(), Some("amdxdna 2.21.0"));
    assert!(npu.hint.contains("render"), "{}", npu.hint);
}

#[test]
fn amd_xdna_bound_and_accessible_needs_xrt() {
    // The same tree seen by root (the fixture's credentials are replaced by uid 0 when the
    // tree is copied without proc/self/status).
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("amd-xdna-noperm"), dir.path());
    std::fs::remove_file(dir.path().join("proc/self/status")).unwrap();
    let devices = Discovery::at(dir.path()).arch("x86_64").devices();
    let npu = row(&devices, "xdna:npu");
    let tried = tried(&npu.status);
    assert!(
        tried
            .iter()
            .any(|p| p.ends_with("opt/xilinx/xrt/lib/libxrt_coreutil.so*")),
        "{tried:?}"
    );
    assert!(npu.hint.contains("XNPU_XRT_LIB"), "{}", npu.hint);

    let xrt = dir.path().join("opt/xilinx/xrt/lib");
    std::fs::create_dir_all(&xrt).unwrap();
    std::fs::write(xrt.join("libxrt_coreutil.so.2.21.75"), b"").unwrap();
    let devices = Discovery::at(dir.path()).arch("x86_64").devices();
    let npu = row(&devices, "xdna:npu");
    assert_eq!(npu.status, DeviceStatus::Available, "{npu:#?}");
    assert_eq!(
        npu.library.as_ref().unwrap().version.as_deref(),
        Some("2.21.75")
    );
}

#[test]
fn driver_bound_without_accel_node_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("intel-npu"), dir.path());
    std::fs::remove_dir_all(dir.path().join("sys/class/accel")).unwrap();
    let devices = Discovery::at(dir.path()).devices();
    let npu = row(&devices, "openvino:npu");
    match &npu.status {
        DeviceStatus::Unsupported { why } => assert!(why.contains("no /sys/class/accel"), "{why}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(npu.hint.contains("dmesg"), "{}", npu.hint);
}

#[test]
fn level_zero_is_needed_for_the_intel_npu() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("intel-npu"), dir.path());
    std::fs::remove_file(dir.path().join("usr/lib/libze_intel_npu.so.1")).unwrap();
    let lib = dir.path().join("opt/intel/libopenvino_c.so.2641");
    let devices = Discovery::at(dir.path())
        .env("XNPU_OPENVINO_LIB", &lib)
        .devices();
    let npu = row(&devices, "openvino:npu");
    let tried = tried(&npu.status);
    assert!(
        tried
            .iter()
            .any(|p| p.ends_with("usr/lib/libze_intel_npu.so*")),
        "{tried:?}"
    );
    // The loader was found, so it is not in the list.
    assert!(
        tried
            .iter()
            .all(|p| !p.to_string_lossy().contains("libze_loader")),
        "{tried:?}"
    );
    assert!(npu.hint.contains("linux-npu-driver"), "{}", npu.hint);
}

#[test]
fn every_fixture_renders_a_row_per_family() {
    for name in [
        "intel-npu",
        "amd-xdna-unbound",
        "amd-xdna-noperm",
        "qualcomm",
        "qualcomm-nofastrpc",
        "wsl",
        "wheels",
        "empty",
    ] {
        let d = at(name);
        let devices = d.devices();
        check_rows(&devices);
        let text = xnpu::devices::render(&devices, d.wsl().as_deref());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("device"), "{text}");
        for dev in &devices {
            let line = lines
                .iter()
                .find(|l| l.starts_with(&format!("{} ", dev.id())))
                .unwrap_or_else(|| panic!("{name}: no table line for {}\n{text}", dev.id()));
            assert!(line.contains(dev.status.label()), "{line}");
            if dev.backend != "cpu" {
                assert!(
                    text.contains(&dev.hint),
                    "{name}: hint of {} missing",
                    dev.id()
                );
            }
        }
    }
}

#[test]
fn qualcomm_fastrpc_needs_the_qnn_library() {
    let devices = at("qualcomm").devices();
    check_rows(&devices);
    let htp = row(&devices, "qnn:htp");
    assert!(!tried(&htp.status).is_empty());
    assert!(htp.details.contains("/dev/fastrpc-cdsp"));
    assert!(htp.hint.contains("XNPU_QNN_LIB_DIR"), "{}", htp.hint);

    let sdk = fixture("qualcomm/opt/qcom/qairt");
    let devices = at("qualcomm")
        .arch("aarch64")
        .env("QNN_SDK_ROOT", &sdk)
        .devices();
    let htp = row(&devices, "qnn:htp");
    assert_eq!(htp.status, DeviceStatus::Available, "{htp:#?}");
    assert_eq!(
        htp.library.as_ref().unwrap().path,
        sdk.join("lib/aarch64-oe-linux-gcc11.2/libQnnHtp.so")
    );
    // On Arm there is no x86 simulator row.
    assert!(devices.iter().all(|d| d.name != "htp-sim"));
}

#[test]
fn qualcomm_soc_without_fastrpc_is_driver_not_bound() {
    let devices = at("qualcomm-nofastrpc").devices();
    let htp = row(&devices, "qnn:htp");
    assert_eq!(htp.status, DeviceStatus::DriverNotBound, "{htp:#?}");
    assert!(htp.device.contains("qcom,x1e80100"), "{}", htp.device);
    assert!(htp.hint.contains("fastrpc"), "{}", htp.hint);
}

#[test]
fn wsl_says_the_devices_come_through_the_windows_host() {
    let d = at("wsl");
    let evidence = d.wsl().expect("WSL not detected");
    assert!(evidence.contains("/dev/dxg"), "{evidence}");
    assert!(evidence.contains("/usr/lib/wsl/lib"), "{evidence}");
    assert!(evidence.contains("microsoft-standard-WSL2"), "{evidence}");
    let devices = d.devices();
    check_rows(&devices);
    for id in ["openvino:npu", "xdna:npu", "qnn:htp"] {
        let r = row(&devices, id);
        match &r.status {
            DeviceStatus::Unsupported { why } => {
                assert!(why.contains("WSL") && why.contains("Windows host"), "{why}")
            }
            other => panic!("{id}: expected Unsupported, got {other:?}"),
        }
        assert!(r.hint.contains("Windows"), "{}", r.hint);
    }
    let text = xnpu::devices::render(&devices, d.wsl().as_deref());
    assert!(text.contains("WSL detected"), "{text}");
}

#[test]
fn empty_machine_has_nothing_but_the_cpu() {
    let d = at("empty");
    assert_eq!(d.wsl(), None);
    let devices = d.devices();
    check_rows(&devices);
    let npu = row(&devices, "openvino:npu");
    assert_eq!(npu.status, DeviceStatus::NotPresent);
    assert!(npu.hint.contains("Core Ultra"), "{}", npu.hint);
    let xdna = row(&devices, "xdna:npu");
    assert_eq!(xdna.status, DeviceStatus::NotPresent);
    assert!(xdna.hint.contains("Ryzen AI"), "{}", xdna.hint);
    let htp = row(&devices, "qnn:htp");
    assert_eq!(htp.status, DeviceStatus::NotPresent);
    assert!(htp.hint.contains("Snapdragon"), "{}", htp.hint);
    let sim = row(&devices, "qnn:htp-sim");
    assert!(!tried(&sim.status).is_empty());
    assert!(
        sim.hint.contains("pip install onnxruntime-qnn"),
        "{}",
        sim.hint
    );
    let text = xnpu::devices::render(&devices, None);
    assert!(!text.contains("WSL"), "{text}");
    assert!(text.contains("tried:"), "{text}");
}

#[test]
fn wheels_in_the_system_python_are_found_with_their_versions() {
    let devices = at("wheels").devices();
    check_rows(&devices);
    let ov = row(&devices, "openvino:cpu");
    let lib = ov.library.as_ref().unwrap();
    assert!(lib.path.ends_with("openvino/libs/libopenvino_c.so.2641"));
    assert_eq!(lib.version.as_deref(), Some("2026.4.1"));
    let sim = row(&devices, "qnn:htp-sim");
    assert_eq!(sim.status, DeviceStatus::Available, "{sim:#?}");
    assert!(sim.hint.contains("not an NPU"), "{}", sim.hint);
    assert_eq!(
        sim.library.as_ref().unwrap().version.as_deref(),
        Some("onnxruntime-qnn 2.7.0, QNN 2.51.0")
    );
    // The x86 wheel never stands in for the real HTP.
    assert_eq!(row(&devices, "qnn:htp").status, DeviceStatus::NotPresent);
    // The NPU row is still absent: a library is not a device.
    assert_eq!(
        row(&devices, "openvino:npu").status,
        DeviceStatus::NotPresent
    );
}

#[test]
fn this_machine_lists_every_family_with_the_cpu_available() {
    let devices = xnpu::devices();
    check_rows(&devices);
    if cfg!(target_arch = "x86_64") {
        row(&devices, "qnn:htp-sim");
    }
    let text = xnpu::devices::render(&devices, Discovery::system().wsl().as_deref());
    for id in ["cpu", "openvino:npu", "xdna:npu", "qnn:htp"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{id} "))),
            "no row {id}:\n{text}"
        );
    }
}

/// Copies a fixture tree, symlinks as symlinks.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
