//! `label_selector`: a Prometheus' `serviceMonitorSelector` as the cluster may send it (any JSON
//! that deserialises into a `LabelSelector`), through `cadvisor_setup::selector`. Checks:
//! nothing panics; when `satisfy` proposes labels, it never changes ours and the selector then
//! matches; `describe` always answers.
#![no_main]

use std::collections::BTreeMap;

use cadvisor_setup::selector::{LabelSelector, describe, matches, satisfy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(selector) = serde_json::from_slice::<LabelSelector>(data) else {
        return;
    };
    let ours: BTreeMap<String, String> = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "cadvisor".to_string()),
        ("app.kubernetes.io/managed-by".to_string(), "cadvisor-setup".to_string()),
    ]);
    let _ = describe(Some(&selector));
    let matched = matches(&selector, &ours);
    if let Ok(added) = satisfy(&selector, &ours) {
        let mut all = ours.clone();
        for (k, v) in added {
            assert!(!ours.contains_key(&k), "satisfy changed our label {k}");
            all.insert(k, v);
        }
        assert_eq!(matches(&selector, &all), Ok(true), "proposed labels do not match");
    } else if matched == Ok(true) {
        panic!("satisfy refused a selector that already matches");
    }
});
