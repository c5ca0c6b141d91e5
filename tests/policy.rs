//! Device policy: the syntax shared by `SessionOptions::devices`, `XNPU_DEVICES` and
//! `--devices`; an explicitly requested device that is missing is an error quoting what
//! discovery says; `PreferNpu` falls back quietly and says so in `explain`.

use std::path::{Path, PathBuf};

use xnpu::{Policy, Session, SessionOptions};

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tinycnn.onnx")
}

#[test]
fn policies_parse_from_the_shared_syntax() {
    assert_eq!("prefer-npu".parse::<Policy>().unwrap(), Policy::PreferNpu);
    assert_eq!("PREFER-GPU".parse::<Policy>().unwrap(), Policy::PreferGpu);
    assert_eq!("cpu-only".parse::<Policy>().unwrap(), Policy::CpuOnly);
    assert_eq!(
        "openvino:npu, cpu".parse::<Policy>().unwrap(),
        Policy::Explicit(vec!["openvino:npu".into(), "cpu".into()])
    );
    assert!(Policy::PreferNpu.allows_fallback());
    assert!(!Policy::Explicit(vec!["cpu".into()]).allows_fallback());
}

#[test]
fn an_unavailable_explicit_device_is_an_error_that_says_why() {
    let e = Session::load_with(
        demo(),
        SessionOptions::new().devices("openvino:npu,cpu".parse().unwrap()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("device \"openvino:npu\" is not available")
            && e.contains("this machine has: cpu"),
        "{e}"
    );
    let e = Session::load_with(
        demo(),
        SessionOptions::new().devices(Policy::Explicit(vec!["warp-drive".into()])),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("unknown device \"warp-drive\"") && e.contains("prefer-npu"),
        "{e}"
    );
    // A known family, an unknown device: the ids this machine has.
    let e = Session::load_with(
        demo(),
        SessionOptions::new().devices("cpu:cpu".parse().unwrap()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no device \"cpu:cpu\": this machine has cpu, cpu:reference"),
        "{e}"
    );
}

#[test]
fn an_empty_device_list_is_an_error_not_a_policy() {
    for s in ["", " ", ",", " , "] {
        let e = s.parse::<Policy>().unwrap_err().to_string();
        assert!(e.contains("an empty device list"), "{s:?}: {e}");
    }
    assert_eq!("auto".parse::<Policy>().unwrap(), Policy::PreferNpu);
}

#[test]
fn npu_and_gpu_stand_for_every_device_of_their_kind() {
    // This machine (and CI) has no GPU backend: `gpu` alone is an error saying so and how to
    // fall back; `gpu,cpu` runs on the CPU with a note.
    let (usable, _) = xnpu::registry::everything();
    if usable
        .iter()
        .any(|a| a.backend.kind() == xnpu::graph::backend::DeviceKind::Gpu)
    {
        return;
    }
    let e = Session::load_with(
        demo(),
        SessionOptions::new().devices("gpu".parse().unwrap()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no gpu is available") && e.contains("`gpu,cpu` runs on the CPU"),
        "{e}"
    );
    let s = Session::load_with(
        demo(),
        SessionOptions::new().devices("GPU, cpu".parse().unwrap()),
    )
    .unwrap();
    assert_eq!(s.plan().backends, ["cpu"]);
    assert!(
        s.notes().iter().any(|n| n.contains("no gpu is available")),
        "{:?}",
        s.notes()
    );
}

#[test]
fn prefer_npu_falls_back_to_the_cpu_and_says_so() {
    let s = Session::load_with(demo(), SessionOptions::new().devices(Policy::PreferNpu)).unwrap();
    let per = s.plan().nodes_per_backend();
    // This machine has no NPU (CI neither): everything runs on the CPU, with a note.
    if !per.keys().any(|b| *b != "cpu") {
        assert!(
            s.explain()
                .starts_with("note: no npu available, running on the cpu"),
            "{}",
            s.explain()
        );
    }
    let s = Session::load_with(demo(), SessionOptions::new().devices(Policy::CpuOnly)).unwrap();
    assert_eq!(s.plan().backends, ["cpu"]);
}

#[test]
fn xnpu_devices_sets_the_default_policy() {
    std::env::set_var("XNPU_DEVICES", "warp-drive");
    let r = Session::load(demo());
    std::env::remove_var("XNPU_DEVICES");
    let e = r.unwrap_err().to_string();
    assert!(e.contains("unknown device \"warp-drive\""), "{e}");
}

#[test]
fn every_device_id_xnpu_devices_prints_is_accepted_by_the_policy() {
    // The registry's ids (the "backends this xnpu can run on" table of `xnpu devices`),
    // on-demand backends included.
    let (usable, _) = xnpu::registry::everything();
    assert!(usable.iter().any(|a| a.id == "cpu"), "no cpu backend");
    for a in &usable {
        let policy: Policy = a.id.parse().unwrap();
        let r = xnpu::policy::resolve(&policy).unwrap_or_else(|e| panic!("{}: {e}", a.id));
        assert_eq!(r.backends.len(), 1, "{}", a.id);
        assert_eq!(r.backends[0].name(), a.backend.name(), "{}", a.id);
    }
    // Discovery's rows (the first table) name available devices by the same ids.
    for d in xnpu::devices().iter().filter(|d| d.available()) {
        assert!(
            usable.iter().any(|a| a.id == d.id()),
            "xnpu devices lists {} as available, but --devices {} is refused",
            d.id(),
            d.id()
        );
    }
}
