//! What a pool's workers may see of the manager's secrets (DESIGN §14), decided once
//! when a run starts:
//!
//! - **Environment.** A pool gets the manager's environment minus every variable whose
//!   name looks secret ([`looks_secret`]), plus the variables its own `secret_env`
//!   lists, so one pool never sees another pool's keys. With `clean_env = true` it
//!   starts instead from `PATH`, `HOME` and the locale (`LANG`, `LANGUAGE`, `LC_*`)
//!   plus its `secret_env`. The pool's `env` table and pitboss's own marks
//!   (`PITBOSS_*`) are added on top by the runner, as before.
//! - **Redaction.** One [`Redactor`] holds the values of every pool's `secret_env`
//!   variables; the runners pass all worker output through it before it is captured,
//!   shown live or recorded ([`RunEnv::redact_end`] covers results and errors).
//!
//! Values live only in this process's memory: the log records the names.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::sync::Arc;

use crate::core::decide::Outcome;
use crate::core::redact::Redactor;
use crate::core::workflow::Workflow;
use crate::core::SmallOutput;

use super::process::Envp;
use super::AttemptEnd;

/// Parts of a variable name that mark it as secret (matched case-insensitively
/// anywhere in the name).
const SECRET_WORDS: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE"];

/// Name prefixes of cloud providers' credential variables (their profiles, regions
/// and account ids choose which account a tool acts on, so they are held back too).
const SECRET_PREFIXES: &[&str] = &[
    "AWS_",
    "AZURE_",
    "ARM_",
    "GOOGLE_",
    "GCP_",
    "GCLOUD_",
    "CLOUDSDK_",
    "DIGITALOCEAN_",
    "HCLOUD_",
    "OCI_",
    "VAULT_",
];

/// True when a variable's name looks like it holds a secret.
pub fn looks_secret(name: &OsStr) -> bool {
    let upper = name.to_string_lossy().to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w)) || SECRET_PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// True for the variables a `clean_env` pool keeps: PATH, HOME and the locale.
fn is_basic(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    matches!(name.as_ref(), "PATH" | "HOME" | "LANG" | "LANGUAGE") || name.starts_with("LC_")
}

/// The environment one pool's workers start from (before the pool's `env` and
/// pitboss's marks), kept as the changes to make to the manager's environment.
/// `Default`: the manager's whole environment (a runner built without a workflow, in
/// tests and tools).
///
/// Changes rather than a whole new environment, for speed: std spawns with
/// `posix_spawnp` only while the child's `PATH` is the manager's; a cleared
/// environment makes it fall back to fork + exec, which doubled the cost of a
/// trivial attempt (benchmark P1). A `clean_env` pool pays that cost, knowingly.
#[derive(Debug, Default)]
pub struct PoolEnv {
    /// Start from nothing (`clean_env`), then `set`.
    clear: bool,
    /// The manager's variables this pool does not get.
    remove: Vec<OsString>,
    /// Variables added or changed.
    set: Vec<(OsString, OsString)>,
    /// The whole environment for a direct start, built at the first spawn
    /// ([`PoolEnv::envp`]).
    direct: std::sync::OnceLock<Option<Envp>>,
}

impl PoolEnv {
    /// The changes that turn `manager` into `vars`; with `clear`, `vars` whole.
    fn new(vars: Vec<(OsString, OsString)>, manager: &[(OsString, OsString)], clear: bool) -> PoolEnv {
        if clear {
            return PoolEnv { clear, remove: Vec::new(), set: vars, direct: Default::default() };
        }
        let remove =
            manager.iter().filter(|(k, _)| !vars.iter().any(|(n, _)| n == k)).map(|(k, _)| k.clone()).collect();
        let set = vars.into_iter().filter(|var| !manager.contains(var)).collect();
        PoolEnv { clear, remove, set, direct: Default::default() }
    }

    /// This environment whole, for a direct start without std's per-spawn rebuild
    /// (`process`): the manager's environment as it is at the first spawn with these
    /// changes made, as std makes them. `None` where a direct start would act
    /// differently: a cleared environment or a changed PATH (the program is looked up
    /// on the child's PATH then), or a variable no C string can hold.
    pub fn envp(&self) -> Option<&Envp> {
        let path_changed = || self.remove.iter().chain(self.set.iter().map(|(k, _)| k)).any(|k| k == "PATH");
        self.direct
            .get_or_init(|| {
                if self.clear || path_changed() {
                    return None;
                }
                let mut vars: Vec<(OsString, OsString)> =
                    std::env::vars_os().filter(|(k, _)| !self.remove.contains(k)).collect();
                vars.retain(|(k, _)| !self.set.iter().any(|(n, _)| n == k));
                vars.extend(self.set.iter().cloned());
                Envp::new(vars)
            })
            .as_ref()
    }

    /// Makes `cmd` start from this environment.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        if self.clear {
            cmd.env_clear();
        }
        for name in &self.remove {
            cmd.env_remove(name);
        }
        cmd.envs(self.set.iter().map(|(k, v)| (k, v)));
    }
}

/// The environments and the redactor of a run (see the module notes).
#[derive(Debug, Default)]
pub struct RunEnv {
    pools: HashMap<String, Arc<PoolEnv>>,
    /// For a pool the workflow does not name: nothing secret-looking.
    others: Arc<PoolEnv>,
    redactor: Arc<Redactor>,
    too_short: Vec<String>,
    secrets: Secrets,
}

/// The run's own secrets as (NAME, value), for the `security` gate's scan; its
/// `Debug` shows the names only.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

impl RunEnv {
    /// The run's environments, from the manager's environment `manager`.
    pub fn new(workflow: &Workflow, manager: impl IntoIterator<Item = (OsString, OsString)>) -> RunEnv {
        let manager: Vec<(OsString, OsString)> = manager.into_iter().collect();
        let lookup = |name: &str| manager.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let plain: Vec<(OsString, OsString)> = manager.iter().filter(|(k, _)| !looks_secret(k)).cloned().collect();
        let basic: Vec<(OsString, OsString)> = manager.iter().filter(|(k, _)| is_basic(k)).cloned().collect();
        let mut pools = HashMap::new();
        let mut secrets: Vec<(String, String)> = Vec::new();
        for pool in &workflow.pools {
            let mut vars = if pool.clean_env { basic.clone() } else { plain.clone() };
            for name in &pool.secret_env {
                if let Some(value) = lookup(name) {
                    secrets.push((name.clone(), value.to_string_lossy().into_owned()));
                    vars.retain(|(k, _)| k != name.as_str());
                    vars.push((name.into(), value));
                }
            }
            pools.insert(pool.name.clone(), Arc::new(PoolEnv::new(vars, &manager, pool.clean_env)));
        }
        let (redactor, too_short) = Redactor::new(secrets.iter().cloned());
        let others = Arc::new(PoolEnv::new(plain, &manager, false));
        RunEnv { pools, others, redactor: Arc::new(redactor), too_short, secrets: Secrets(secrets) }
    }

    /// The run's environments, from this process's environment.
    pub fn from_process(workflow: &Workflow) -> RunEnv {
        RunEnv::new(workflow, std::env::vars_os())
    }

    /// Where pool `name`'s workers start from.
    pub fn pool(&self, name: &str) -> Arc<PoolEnv> {
        self.pools.get(name).cloned().unwrap_or_else(|| self.others.clone())
    }

    /// The redactor of every pool's secrets.
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// Every pool's `secret_env` values as (NAME, value), in memory only: the
    /// `security` gate looks for them in results.
    pub fn secret_values(&self) -> &[(String, String)] {
        &self.secrets.0
    }

    /// What the operator should know before the run starts: secrets too short to
    /// redact.
    pub fn warnings(&self) -> Vec<String> {
        self.too_short
            .iter()
            .map(|name| {
                format!(
                    "warning: the value of secret {name} is shorter than {} bytes; it is passed to workers but not redacted from their output",
                    crate::core::redact::MIN_SECRET_LEN
                )
            })
            .collect()
    }

    /// Redacts what an attempt's end carries: its result, its error and its output.
    /// Spawned attempts' output was redacted as it was read; this also covers
    /// persistent workers' replies and secrets that only appear once JSON is parsed.
    pub fn redact_end(&self, end: &mut AttemptEnd) {
        let r = &*self.redactor;
        if r.is_empty() {
            return;
        }
        let output = match end {
            AttemptEnd::Outcome(Outcome::Success { result, output, .. })
            | AttemptEnd::Planned(Outcome::Success { result, output, .. }, _) => {
                r.value(result);
                output
            }
            AttemptEnd::Outcome(Outcome::Failure { error, output, .. })
            | AttemptEnd::Planned(Outcome::Failure { error, output, .. }, _) => {
                r.string(error);
                output
            }
            AttemptEnd::Stopped(_, remains) => &mut remains.output,
            AttemptEnd::Lost { reason, .. } => {
                r.string(reason);
                return;
            }
        };
        let SmallOutput { stdout, stderr, .. } = output;
        for text in [stdout, stderr].into_iter().flatten() {
            r.string(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_without_clean_env_leaves_path_alone_so_spawns_stay_posix_spawn() {
        let manager: Vec<(OsString, OsString)> = [("PATH", "/bin"), ("HOME", "/root"), ("OPENAI_API_KEY", "sk-x")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let kept: Vec<(OsString, OsString)> = manager.iter().filter(|(k, _)| !looks_secret(k)).cloned().collect();
        let env = PoolEnv::new(kept, &manager, false);
        assert!(!env.clear, "a cleared environment forces fork + exec");
        assert_eq!(env.remove, vec![OsString::from("OPENAI_API_KEY")]);
        assert!(env.set.is_empty(), "PATH or HOME set again: {:?}", env.set);
    }

    /// What `argv` prints on stdout when started by the old path (tokio's `Command`
    /// with the pool's changes) and by the direct start, with the same extra
    /// variables.
    #[cfg(target_os = "linux")]
    async fn printed_both_ways(pool: &PoolEnv, extra: &[(String, String)], argv: &[&str]) -> (String, String) {
        use tokio::io::AsyncReadExt;
        let mut cmd = tokio::process::Command::new(argv[0]);
        cmd.args(&argv[1..]).process_group(0).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped());
        pool.apply(&mut cmd);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let old = cmd.output().await.unwrap();
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let started = super::super::process::linux::spawn(&argv, pool.envp().unwrap(), extra, None).unwrap();
        let mut child = super::super::process::Process::Direct(started);
        let mut out = Vec::new();
        child.take_stdout().unwrap().read_to_end(&mut out).await.unwrap();
        assert!(child.wait().await.unwrap().success());
        // io::dirs' test sets and removes a variable of its own while this runs;
        // std reads the live environment at each spawn, the pool its copy.
        let without_other_tests = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            text.lines().filter(|l| !l.starts_with("PITBOSS_DIRS_TEST_OVERRIDE=")).map(|l| format!("{l}\n")).collect()
        };
        (without_other_tests(&old.stdout), without_other_tests(&out))
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_direct_start_gives_the_worker_what_std_gives_it() {
        assert!(super::super::process::linux::available(), "this kernel has no pidfd_open");
        let manager: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        // One of the manager's variables held back, one changed, one added.
        let held = manager.iter().find(|(k, _)| k != "PATH").map(|(k, _)| k.clone()).unwrap();
        let mut vars: Vec<(OsString, OsString)> = manager.iter().filter(|(k, _)| *k != held).cloned().collect();
        vars.retain(|(k, _)| k != "HOME");
        vars.push(("HOME".into(), "/pool/home".into()));
        vars.push(("H14Q_POOL_ADDED".into(), "yes".into()));
        let pool = PoolEnv::new(vars, &manager, false);
        // The attempt's own: marks, one replacing the pool's, a name given twice.
        let extra: Vec<(String, String)> = [
            ("PITBOSS_TASK_ID", "t1"),
            ("H14Q_POOL_ADDED", "attempt"),
            ("PITBOSS_ATTEMPT", "1"),
            ("PITBOSS_TASK_ID", "t2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (old, direct) = printed_both_ways(&pool, &extra, &["env"]).await;
        assert_eq!(direct, old, "the environment differs (order included)");
        assert!(direct.contains("PITBOSS_TASK_ID=t2\n") && direct.contains("H14Q_POOL_ADDED=attempt\n"), "{direct}");
        assert!(!direct.lines().any(|l| l.starts_with(&format!("{}=", held.to_string_lossy()))), "{direct}");
        // Signals blocked and ignored: the same. Read by the started process itself
        // (grep of its own status), not by a shell's child: dash blocks signals while
        // it waits for a child, so a look at the shell from its child sees that mask
        // now and then.
        let (old, direct) =
            printed_both_ways(&pool, &extra, &["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]).await;
        assert_eq!(direct, old);
        assert!(direct.contains("SigBlk:\t0000000000000000"), "{direct}");
        // The process group it leads: the same.
        let script = "[ \"$(cut -d' ' -f5 /proc/$$/stat)\" = $$ ] && echo leader";
        let (old, direct) = printed_both_ways(&pool, &extra, &["sh", "-c", script]).await;
        assert_eq!(direct, old);
        assert!(direct.contains("leader"), "{direct}");
    }

    #[test]
    fn a_clean_or_path_changing_pool_is_never_started_directly() {
        let manager: Vec<(OsString, OsString)> =
            [("PATH", "/bin"), ("HOME", "/root")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        assert!(PoolEnv::new(manager.clone(), &manager, true).envp().is_none());
        let other_path = vec![("PATH".into(), "/elsewhere".into()), ("HOME".into(), "/root".into())];
        assert!(PoolEnv::new(other_path, &manager, false).envp().is_none());
    }

    #[test]
    fn secret_looking_names() {
        for name in ["OPENAI_API_KEY", "GITHUB_TOKEN", "db_password", "AWS_PROFILE", "MY_SECRET", "SSH_PRIVATE"] {
            assert!(looks_secret(OsStr::new(name)), "{name}");
        }
        for name in ["PATH", "HOME", "LANG", "TERM", "EDITOR", "PITBOSS_HOME"] {
            assert!(!looks_secret(OsStr::new(name)), "{name}");
        }
    }
}
