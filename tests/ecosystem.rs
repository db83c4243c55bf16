//! Tier 4: the automation examples against the real tools (cloud-init's schema validator,
//! ansible-core). The Ansible run against the simulated cluster lives in tests/cluster.rs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

mod cloud_init {
    use super::*;

    fn schema(file: &Path) -> std::process::Output {
        let tool = support::real::tool_path("cloud-init").unwrap_or_else(|| "cloud-init".into());
        Command::new(tool)
            .args(["schema", "--config-file"])
            .arg(file)
            .output()
            .unwrap()
    }

    #[test]
    fn the_example_user_data_passes_cloud_init_schema() {
        let available = support::real::tool_path("cloud-init").is_some();
        if !support::real::require("cloud-init (apt-get install cloud-init)", available) {
            return;
        }
        let out = schema(&repo("scripts/cloud-init/user-data.yaml"));
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cloud-init schema failed:\n{text}");
        assert!(text.contains("Valid cloud-config"), "{text}");
    }

    #[test]
    fn the_validator_really_rejects_a_broken_copy() {
        let available = support::real::tool_path("cloud-init").is_some();
        if !support::real::require("cloud-init (apt-get install cloud-init)", available) {
            return;
        }
        let good = std::fs::read_to_string(repo("scripts/cloud-init/user-data.yaml")).unwrap();
        let broken = good.replace("runcmd:\n", "runcmd: oops\nbroken_runcmd:\n");
        assert_ne!(good, broken, "the example lost its runcmd section");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("user-data.yaml");
        std::fs::write(&file, broken).unwrap();
        let out = schema(&file);
        assert!(
            !out.status.success(),
            "a runcmd that is not a list must fail the schema"
        );
    }

    #[test]
    fn the_user_data_runs_cadvisor_setup_unattended_after_microk8s_is_ready() {
        let text = std::fs::read_to_string(repo("scripts/cloud-init/user-data.yaml")).unwrap();
        let wait = text.find("--wait-ready").expect("waits for MicroK8s");
        let run = text
            .find("cadvisor-setup install --yes")
            .expect("runs install --yes");
        assert!(wait < run, "install must run after microk8s is ready");
        assert!(text.starts_with("#cloud-config"));
    }
}

mod ansible {
    use super::*;

    #[test]
    fn the_playbook_passes_ansible_syntax_check() {
        let tool = support::real::tool_path("ansible-playbook");
        if !support::real::require(
            "ansible-playbook (pip install ansible-core)",
            tool.is_some(),
        ) {
            return;
        }
        let out = Command::new(tool.unwrap())
            .args(["-i", "localhost,", "--syntax-check"])
            .arg(repo("scripts/ansible/playbook.yml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
