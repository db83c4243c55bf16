//! Plan → Manifests, through minijinja templates embedded from `templates/`. Pure: no I/O
//! except reading `--templates DIR` overrides and writing `--out-dir`.
//!
//! Defence in depth against YAML injection: `plan::make` has already validated every value, and the
//! templates print values only through the `q` filter, which writes a JSON string (a valid YAML
//! double-quoted scalar). The formatter refuses to print a string that did not go through `q`, and
//! the `safe` filter is removed, so even an override template cannot print raw text by accident.
//! Each rendered document is parsed back (serde-saphyr) and must be exactly one object.

use std::path::{Path, PathBuf};

use minijinja::value::{Serde, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use crate::plan::Plan;

/// A built-in template: its file name under `templates/` and its text, embedded.
macro_rules! template {
    ($name:literal) => {
        ($name, include_str!(concat!("../templates/", $name)))
    };
}

/// The object templates, in apply order (the Namespace first). Overridable by file name.
pub const OBJECT_TEMPLATES: [(&str, &str); 7] = [
    template!("namespace.yaml.j2"),
    template!("serviceaccount.yaml.j2"),
    template!("daemonset.yaml.j2"),
    template!("service.yaml.j2"),
    template!("servicemonitor.yaml.j2"),
    template!("networkpolicy.yaml.j2"),
    template!("grafana-dashboard.yaml.j2"),
];
/// Rendered only when the plan asks for a ServiceMonitor.
pub const SERVICE_MONITOR_TEMPLATE: &str = "servicemonitor.yaml.j2";
/// Rendered only when the plan asks for the Grafana dashboard.
pub const DASHBOARD_TEMPLATE: &str = "grafana-dashboard.yaml.j2";
/// Rendered only when the plan asks for a NetworkPolicy.
pub const NETWORK_POLICY_TEMPLATE: &str = "networkpolicy.yaml.j2";
/// The `kustomization.yaml` written next to the objects by `--out-dir`.
pub const KUSTOMIZATION_TEMPLATE: (&str, &str) = template!("kustomization.yaml.j2");
/// `render --scrape-config`: the plain-Prometheus scrape job.
pub const SCRAPE_CONFIG_TEMPLATE: (&str, &str) = template!("scrape-config.yaml.j2");

/// The templates that are not objects of the plan, overridable by file name like the others.
const OTHER_TEMPLATES: [(&str, &str); 2] = [KUSTOMIZATION_TEMPLATE, SCRAPE_CONFIG_TEMPLATE];

/// Every built-in template.
fn builtin() -> impl Iterator<Item = &'static (&'static str, &'static str)> + Clone {
    OBJECT_TEMPLATES.iter().chain(OTHER_TEMPLATES.iter())
}

/// One rendered Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// The object as YAML text (one document, no `---`).
    pub yaml: String,
    /// The same object as JSON, for server-side apply.
    pub object: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifests {
    pub documents: Vec<Manifest>,
}

impl Manifests {
    /// Multi-document YAML, `---` separated.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for doc in &self.documents {
            out.push_str("---\n");
            out.push_str(&doc.yaml);
        }
        out
    }

    /// The objects as one JSON array.
    pub fn objects(&self) -> Vec<serde_json::Value> {
        self.documents.iter().map(|d| d.object.clone()).collect()
    }

    /// The file name of each document under `--out-dir`: the kind (`daemonset.yaml`), and
    /// kind and name for a further object of a kind already written (a node group's DaemonSet:
    /// `daemonset-cadvisor-1a2b3c4d.yaml`).
    pub fn file_names(&self) -> Vec<String> {
        self.documents
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let kind = d.kind.to_ascii_lowercase();
                if self.documents[..i].iter().any(|o| o.kind == d.kind) {
                    format!("{kind}-{}.yaml", d.name)
                } else {
                    format!("{kind}.yaml")
                }
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("--templates {path}: {message}")]
    Overrides { path: PathBuf, message: String },
    #[error("refusing to write {path}: {reason}")]
    Unsafe { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Renders every object of the plan. `templates` overrides built-in templates by file name.
pub fn manifests(plan: &Plan, templates: Option<&Path>) -> Result<Manifests, RenderError> {
    let env = environment(&sources(templates)?)?;
    let ctx = minijinja::context! { plan => Value::from(Serde(plan)) };
    let mut documents = Vec::new();
    for (name, _) in OBJECT_TEMPLATES {
        let wanted = match name {
            SERVICE_MONITOR_TEMPLATE => plan.service_monitor.is_some(),
            NETWORK_POLICY_TEMPLATE => plan.network_policy.is_some(),
            DASHBOARD_TEMPLATE => plan.grafana_dashboard.is_some(),
            _ => true,
        };
        if !wanted {
            continue;
        }
        let text = render_one(&env, name, &ctx)?;
        if let Some(doc) = parse_one(name, &text)? {
            documents.push(doc);
        }
    }
    Ok(Manifests { documents })
}

/// The manifests of several node groups' plans (`plan::groups::plans`, `cadvisor`'s first): the
/// first plan's objects, with every other plan's DaemonSet after `cadvisor`'s. (The Namespace,
/// ServiceAccount, Service and ServiceMonitor depend on the options alone, the same in every
/// plan.) One plan renders exactly as [`manifests`].
pub fn manifests_for_groups(
    plans: &[Plan],
    templates: Option<&Path>,
) -> Result<Manifests, RenderError> {
    let Some((first, rest)) = plans.split_first() else {
        return Ok(Manifests::default());
    };
    let mut out = manifests(first, templates)?;
    let mut at = out
        .documents
        .iter()
        .position(|d| d.kind == "DaemonSet")
        .map_or(out.documents.len(), |i| i + 1);
    for plan in rest {
        let more = manifests(plan, templates)?;
        for ds in more.documents.into_iter().filter(|d| d.kind == "DaemonSet") {
            out.documents.insert(at, ds);
            at += 1;
        }
    }
    Ok(out)
}

/// The `kustomization.yaml` listing the files `write_out_dir` writes.
pub fn kustomization(
    manifests: &Manifests,
    templates: Option<&Path>,
) -> Result<String, RenderError> {
    let env = environment(&sources(templates)?)?;
    let files: Vec<String> = manifests.file_names();
    let ctx = minijinja::context! { resources => files };
    let text = render_one(&env, KUSTOMIZATION_TEMPLATE.0, &ctx)?;
    // It must be YAML too.
    serde_saphyr::from_str::<serde_json::Value>(&text).map_err(|e| RenderError::Template {
        name: KUSTOMIZATION_TEMPLATE.0.to_string(),
        message: format!("does not render valid YAML: {e}"),
    })?;
    Ok(text)
}

/// The rendered `render --scrape-config` document: `scrape_configs:` with our one job.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeConfig {
    /// YAML with comments, as printed.
    pub yaml: String,
    /// The same document as JSON (`-o json`).
    pub object: serde_json::Value,
}

/// Renders the plain-Prometheus scrape job. The result must parse back as a mapping whose
/// `scrape_configs` holds exactly one job with a `job_name`.
pub fn scrape_config(
    job: &crate::plan::scrape::ScrapeJob,
    templates: Option<&Path>,
) -> Result<ScrapeConfig, RenderError> {
    let name = SCRAPE_CONFIG_TEMPLATE.0;
    let env = environment(&sources(templates)?)?;
    let ctx = minijinja::context! { job => Value::from(Serde(job)) };
    let text = render_one(&env, name, &ctx)?;
    let fail = |message: String| RenderError::Template {
        name: name.to_string(),
        message,
    };
    let object: serde_json::Value = serde_saphyr::from_str(&text)
        .map_err(|e| fail(format!("does not render valid YAML: {e}")))?;
    let jobs = object
        .get("scrape_configs")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| fail("renders no `scrape_configs:` list".to_string()))?;
    match jobs.as_slice() {
        [job]
            if job
                .get("job_name")
                .is_some_and(serde_json::Value::is_string) => {}
        _ => {
            return Err(fail(format!(
                "`scrape_configs` must hold exactly one job with a job_name, not {}",
                jobs.len()
            )));
        }
    }
    let mut yaml = text.trim().to_string();
    yaml.push('\n');
    Ok(ScrapeConfig { yaml, object })
}

/// Writes one file per object plus `kustomization.yaml` into `dir` (created if missing).
/// Returns the paths written, kustomization last.
///
/// Never writes outside `dir` or through a link: every file name must be a plain name, an
/// existing symlink (or anything but a regular file) at a destination is refused before
/// anything is written (exit 2), and each file is written to a new temporary file in `dir`
/// (`O_NOFOLLOW`, `create_new`) and renamed over the destination; `rename(2)` replaces a
/// directory entry, it never writes to what a link points at.
pub fn write_out_dir(
    manifests: &Manifests,
    dir: &Path,
    templates: Option<&Path>,
) -> Result<Vec<PathBuf>, RenderError> {
    let kustomization = kustomization(manifests, templates)?;
    let files: Vec<(String, &str)> = manifests
        .file_names()
        .into_iter()
        .zip(manifests.documents.iter().map(|d| d.yaml.as_str()))
        .chain(std::iter::once((
            "kustomization.yaml".to_string(),
            kustomization.as_str(),
        )))
        .collect();
    for (i, (file, _)) in files.iter().enumerate() {
        plain_file_name(file).map_err(|reason| RenderError::Unsafe {
            path: dir.join(file),
            reason,
        })?;
        if files[..i].iter().any(|(other, _)| other == file) {
            return Err(RenderError::Template {
                name: file.clone(),
                message: "two objects would be written to the same file (one object per kind)"
                    .to_string(),
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| RenderError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    // Refuse before writing anything, so a refusal leaves the directory as it was.
    for (file, _) in &files {
        check_destination(&dir.join(file))?;
    }
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(&file);
        replace_file(dir, &file, &path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// A file name we may create in the out dir: no separator, no `..`, not hidden.
fn plain_file_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a plain file name (lowercase letters, digits, '.', '_' and '-'; an object kind must not hold '/' or '..')",
            name.escape_debug()
        ))
    }
}

/// A destination may be missing or a regular file (ours from an earlier run), nothing else.
fn check_destination(path: &Path) -> Result<(), RenderError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(RenderError::Unsafe {
            path: path.to_path_buf(),
            reason: "it is a symlink; render does not write through links (remove it, or choose another --out-dir)".to_string(),
        }),
        Ok(meta) if !meta.is_file() => Err(RenderError::Unsafe {
            path: path.to_path_buf(),
            reason: "it exists and is not a regular file".to_string(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RenderError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `text` to a new temporary file in `dir` and renames it to `path`.
fn replace_file(dir: &Path, file: &str, path: &Path, text: &str) -> Result<(), RenderError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Write { path, source }
    };
    let mut attempt = 0u32;
    let (temp, mut out) = loop {
        let temp = dir.join(format!(".{file}.{}.{attempt}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&temp)
        {
            Ok(f) => break (temp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(source) => return Err(write_err(&temp)(source)),
        }
    };
    let result = out
        .write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(write_err(&temp))
        .and_then(|()| check_destination(path))
        .and_then(|()| std::fs::rename(&temp, path).map_err(write_err(path)));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Built-in templates, replaced by same-named files of `dir`. Unknown `.j2` files in `dir` are an
/// error (a typo would otherwise be silently ignored).
fn sources(dir: Option<&Path>) -> Result<Vec<(&'static str, String)>, RenderError> {
    let builtin = builtin();
    let Some(dir) = dir else {
        return Ok(builtin.map(|(n, s)| (*n, s.to_string())).collect());
    };
    let overrides_err = |message: String| RenderError::Overrides {
        path: dir.to_path_buf(),
        message,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        overrides_err(format!(
            "cannot read the directory ({e}); give a directory holding templates named like the built-in ones"
        ))
    })?;
    let known: Vec<&str> = builtin.clone().map(|(n, _)| *n).collect();
    for entry in entries {
        let entry = entry.map_err(|e| overrides_err(format!("cannot list the directory: {e}")))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".j2") && !known.contains(&name.as_str()) {
            return Err(overrides_err(format!(
                "{name} is not a template name; known names: {}",
                known.join(", ")
            )));
        }
    }
    let mut out = Vec::new();
    for (name, source) in builtin {
        // Read bounded, as every input file (`crate::input`): a huge file, a FIFO or a device
        // named like a template is an error, not our memory (a 6 GB file grew render to 18 GB).
        let text = match crate::input::read_bounded(&dir.join(name), MAX_TEMPLATE) {
            Ok(text) => text,
            Err(crate::input::ReadError::NotFound { .. }) => source.to_string(),
            Err(e) => return Err(overrides_err(format!("cannot use {name}: {e}"))),
        };
        out.push((*name, text));
    }
    Ok(out)
}

/// The largest template override read.
const MAX_TEMPLATE: u64 = crate::input::MAX_INPUT_BYTES;

/// The work one template may do (minijinja's fuel: about one unit per instruction, and about
/// 64 bytes of data per unit; docs.rs/minijinja `Environment::set_fuel`). The built-in templates
/// need a few thousand; an override with a loop of 10^10 rounds ran without end, its output
/// growing, before this.
const TEMPLATE_FUEL: u64 = 1_000_000;

fn environment(sources: &[(&'static str, String)]) -> Result<Environment<'static>, RenderError> {
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| RenderError::Template {
            name: "syntax".to_string(),
            message: e.to_string(),
        })?;
    env.set_syntax(syntax);
    env.remove_filter("safe");
    env.add_filter("q", quote);
    env.set_formatter(|out, state, value| {
        if value.is_safe() || value.kind() == ValueKind::Number {
            minijinja::escape_formatter(out, state, value)
        } else {
            Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "a value is printed without `| q`; every string and boolean must go through the `q` filter so it is quoted",
            ))
        }
    });
    for (name, source) in sources {
        env.add_template_owned(*name, source.clone())
            .map_err(|e| template_error(name, &e))?;
    }
    Ok(env)
}

/// `q`: a JSON string, which is a YAML double-quoted scalar (YAML 1.2 is a superset of JSON).
fn quote(value: &Value) -> Result<Value, minijinja::Error> {
    match value.kind() {
        ValueKind::String | ValueKind::Number | ValueKind::Bool => {
            let json = serde_json::to_string(value)
                .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            Ok(Value::from_safe_string(json))
        }
        other => Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("`q` quotes strings, numbers and booleans, not a {other}"),
        )),
    }
}

fn render_one(env: &Environment<'_>, name: &str, ctx: &Value) -> Result<String, RenderError> {
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| template_error(name, &e))
}

fn template_error(name: &str, err: &minijinja::Error) -> RenderError {
    let mut message = err.to_string();
    for cause in std::iter::successors(std::error::Error::source(err), |e| e.source()) {
        message.push_str(&format!(": {cause}"));
    }
    RenderError::Template {
        name: name.to_string(),
        message,
    }
}

/// Parses one rendered template: empty (only whitespace or comments) means "no object" (an
/// override can switch an object off), otherwise exactly one object with apiVersion, kind and
/// metadata.name.
fn parse_one(name: &str, text: &str) -> Result<Option<Manifest>, RenderError> {
    let fail = |message: String| RenderError::Template {
        name: name.to_string(),
        message,
    };
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| fail(format!("does not render valid YAML: {e}")))?;
    let mut docs: Vec<serde_json::Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let object = match docs.len() {
        0 => return Ok(None),
        1 => docs.remove(0),
        n => {
            return Err(fail(format!(
                "renders {n} YAML documents; each template renders exactly one object"
            )));
        }
    };
    let field = |path: &[&str]| {
        let mut v = &object;
        for key in path {
            v = v.get(key)?;
        }
        v.as_str().map(str::to_string)
    };
    let (Some(api_version), Some(kind), Some(obj_name)) = (
        field(&["apiVersion"]),
        field(&["kind"]),
        field(&["metadata", "name"]),
    ) else {
        return Err(fail(
            "renders no Kubernetes object: apiVersion, kind and metadata.name must be strings"
                .to_string(),
        ));
    };
    let namespace = field(&["metadata", "namespace"]);
    let mut yaml = text.trim_start_matches("---\n").trim().to_string();
    yaml.push('\n');
    Ok(Some(Manifest {
        api_version,
        kind,
        name: obj_name,
        namespace,
        yaml,
        object,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_dir_file_names_are_plain() {
        for ok in [
            "daemonset.yaml",
            "kustomization.yaml",
            "service-monitor_1.yaml",
        ] {
            assert!(plain_file_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../etc.yaml",
            "a/b.yaml",
            "/etc/passwd",
            ".hidden.yaml",
            "..",
            "Kind.yaml",
            "a\nb.yaml",
        ] {
            assert!(plain_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn out_dir_refuses_a_link_or_a_directory_at_a_destination() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.path().join("link.yaml")).unwrap();
        std::fs::create_dir(dir.path().join("dir.yaml")).unwrap();
        for name in ["link.yaml", "dir.yaml"] {
            let err = check_destination(&dir.path().join(name)).unwrap_err();
            assert!(matches!(err, RenderError::Unsafe { .. }), "{err:?}");
        }
        assert!(check_destination(&dir.path().join("new.yaml")).is_ok());
    }

    #[test]
    fn quote_writes_json_strings() {
        let v = quote(&Value::from("a\"b\nc: {{d}}")).expect("quote");
        assert_eq!(v.as_str(), Some(r#""a\"b\nc: {{d}}""#));
        assert!(quote(&Value::from(vec![1, 2])).is_err());
    }

    #[test]
    fn unquoted_strings_are_refused() {
        let sources = vec![("namespace.yaml.j2", "name: {{ plan }}".to_string())];
        let env = environment(&sources).expect("env");
        let ctx = minijinja::context! { plan => "x" };
        let err = render_one(&env, "namespace.yaml.j2", &ctx).unwrap_err();
        assert!(err.to_string().contains("without `| q`"), "{err}");
    }

    #[test]
    fn strict_undefined() {
        let sources = vec![("namespace.yaml.j2", "name: {{ nope | q }}".to_string())];
        let env = environment(&sources).expect("env");
        assert!(render_one(&env, "namespace.yaml.j2", &minijinja::context! {}).is_err());
    }

    #[test]
    fn an_override_that_works_forever_runs_out_of_fuel() {
        let sources = vec![(
            "namespace.yaml.j2",
            "{% for a in range(100000) %}{% for b in range(100000) %}{{ 1 }}{% endfor %}{% endfor %}"
                .to_string(),
        )];
        let env = environment(&sources).expect("env");
        let err = render_one(&env, "namespace.yaml.j2", &minijinja::context! {}).unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
    }

    #[test]
    fn template_overrides_are_read_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("namespace.yaml.j2");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_TEMPLATE + 1)
            .unwrap();
        let err = sources(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("cannot use namespace.yaml.j2") && err.contains("is too large"),
            "{err}"
        );
        std::fs::remove_file(&big).unwrap();
        nix::unistd::mkfifo(&big, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = sources(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("is a FIFO"), "{err}");
        std::fs::remove_file(&big).unwrap();
        std::fs::write(&big, "# mine\n").unwrap();
        let got = sources(Some(dir.path())).unwrap();
        let text = |n: &str| got.iter().find(|(name, _)| *name == n).unwrap().1.clone();
        assert_eq!(text("namespace.yaml.j2"), "# mine\n");
        assert_ne!(text("service.yaml.j2"), "# mine\n");
    }

    #[test]
    fn parse_one_wants_one_object() {
        assert!(parse_one("x", "# nothing\n").expect("empty").is_none());
        assert!(parse_one("x", "a: 1\n---\nb: 2\n").is_err());
        assert!(parse_one("x", "kind: A\n").is_err());
        let m = parse_one(
            "x",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n",
        )
        .expect("ok")
        .expect("some");
        assert_eq!((m.kind.as_str(), m.name.as_str()), ("Namespace", "a"));
    }
}
