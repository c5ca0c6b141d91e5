//! The backend registry: every kind of backend this build of xnpu can drive, in one list
//! ([`providers`]), and what each found on this machine. The device policy, `xnpu devices`
//! and Python's `backends()` read it; a backend crate joins by one line in [`providers`] and a
//! [`Provider`] of its own. Plugins found at run time join as their own backends.
//!
//! Device ids have one syntax everywhere — `xnpu devices`, `--devices`, `XNPU_DEVICES`,
//! Python's `devices=`: `family` or `family:device` (`cpu`, `openvino:npu`, `qnn:htp-sim`);
//! a plugin's backend by the name it gives itself (`fixture`, `openvino:cpu`), or
//! `plugin:<name>` when a backend found before already has that name (`plugin:cpu`,
//! `plugin:openvino:cpu`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use xnpu_graph::backend::{Available, Offers, Provider};

/// Every provider built into this xnpu, the CPU first. The one place a backend crate is
/// named.
pub fn providers() -> &'static [&'static dyn Provider] {
    static LIST: OnceLock<Vec<&'static dyn Provider>> = OnceLock::new();
    LIST.get_or_init(|| {
        vec![
            &xnpu_backend_cpu::PROVIDER as &'static dyn Provider,
            #[cfg(feature = "openvino")]
            &xnpu_backend_openvino::PROVIDER,
            #[cfg(feature = "qnn")]
            &xnpu_backend_qnn::PROVIDER,
        ]
    })
}

/// The provider of a device id's family (`qnn` for `qnn:htp-sim`).
pub fn provider_of(id: &str) -> Option<&'static dyn Provider> {
    let family = id.split(':').next().unwrap_or(id);
    providers()
        .iter()
        .copied()
        .find(|p| p.family().eq_ignore_ascii_case(family))
}

/// The backends sessions can use without opening an on-demand provider — every other
/// provider's offers, then each loadable plugin's backend — and notes on what was skipped.
/// Discovered once per process, then shared by every session.
pub fn available() -> (&'static [Available], &'static [String]) {
    static FOUND: OnceLock<Offers> = OnceLock::new();
    static WARNED: AtomicBool = AtomicBool::new(false);
    let found = FOUND.get_or_init(discover_eager);
    // Warned outside the initialisation: a log callback that calls back into xnpu finds the
    // list made, not a lock it holds.
    if !WARNED.swap(true, Ordering::AcqRel) {
        warn(&found.notes);
    }
    (&found.available, &found.notes)
}

/// What an on-demand provider offers: discovered on the first call, then kept.
pub fn on_demand(provider: &dyn Provider) -> Arc<Offers> {
    static FOUND: Mutex<BTreeMap<&'static str, Arc<Offers>>> = Mutex::new(BTreeMap::new());
    let found = || FOUND.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(offers) = found().get(provider.family()) {
        return offers.clone();
    }
    // Discovered and warned about with no lock held (a log callback may call back into
    // xnpu); of two threads that raced, the first to insert wins.
    let offers = Arc::new(provider.discover());
    let (kept, inserted) = {
        let mut map = found();
        match map.get(provider.family()) {
            Some(o) => (o.clone(), false),
            None => {
                map.insert(provider.family(), offers.clone());
                (offers, true)
            }
        }
    };
    if inserted {
        warn(&kept.notes);
    }
    kept
}

/// Every backend this xnpu can run on here, on-demand providers included (`xnpu devices`
/// opens them all), and every note.
pub fn everything() -> (Vec<Available>, Vec<String>) {
    let (list, notes) = available();
    let (mut list, mut notes) = (list.to_vec(), notes.to_vec());
    for p in providers().iter().filter(|p| p.on_demand()) {
        let offers = on_demand(*p);
        list.extend(offers.available.iter().cloned());
        notes.extend(offers.notes.iter().cloned());
        notes.extend(
            offers
                .unavailable
                .iter()
                .filter(|u| !offers.notes.contains(u))
                .cloned(),
        );
    }
    (list, notes)
}

fn discover_eager() -> Offers {
    let mut found = Offers::default();
    for p in providers().iter().filter(|p| !p.on_demand()) {
        let offers = p.discover();
        found.available.extend(offers.available);
        found.notes.extend(offers.notes);
    }
    plugin_offers(&mut found);
    found
}

/// Every discovery note is something the user set up that could not be used (a plugin that
/// did not load, a malformed `XNPU_OPENVINO_CONFIG`, a library that would not open): each is
/// a warning once per process, not only a line in `xnpu devices`.
fn warn(notes: &[String]) {
    for note in notes {
        tracing::warn!("{note}");
    }
}

/// Each loadable plugin's default backend, under its name (or `plugin:<name>` when taken).
/// A plugin of an on-demand family is skipped: loading it would open what the built-in
/// provider opens only on demand (QNN: 40 ms and a line on stdout in every process).
fn plugin_offers(found: &mut Offers) {
    for (path, plugin) in crate::plugins::discover() {
        let on_demand_twin = plugin.as_ref().is_ok_and(|p| {
            providers()
                .iter()
                .any(|b| b.on_demand() && b.family() == p.name())
        });
        if on_demand_twin {
            continue;
        }
        match plugin.and_then(|p| p.create_backend("")) {
            Ok(b) => {
                let name = xnpu_graph::backend::Backend::name(&b).to_string();
                let id = if found.available.iter().any(|a| a.id == name) {
                    format!("plugin:{name}")
                } else {
                    name
                };
                found.available.push(Available {
                    backend: Arc::new(b.named(&id)),
                    id,
                    detail: format!("plugin {}", path.display()),
                });
            }
            Err(e) => found.notes.push(format!("skipped {}: {e}", path.display())),
        }
    }
}
