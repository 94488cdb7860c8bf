//! `[run] broker`, `broker_lease`, `broker_password_file` (DESIGN §7): the broker a
//! run's attempts go through, checked like the rest of the file (issue 16).

use crate::core::workflow::{BrokerSpec, BrokerUrl, PasswordSource, DEFAULT_LEASE_MS, DEFAULT_TTL_MS};

use super::check::Checker;
use super::parse::RawRun;

/// The shortest `broker_lease`: a lease shorter than a worker's heartbeat round trip
/// would reclaim healthy workers' tasks.
const MIN_LEASE_MS: u64 = 1_000;

impl Checker<'_> {
    /// `[run] broker`, `broker_lease`, `broker_password_file`: a URL that names a
    /// broker and holds no password; a lease; the file a password is read from (else
    /// the environment variable). The lease and file need a broker. A broker given on
    /// the command line (`--broker`, [`Checker::broker_flag`]) replaces the file's URL
    /// and keeps its lease and password file, or makes a default spec: the run is then
    /// a broker run for the whole check (pools may leave `command` out).
    pub(super) fn broker(&mut self, raw: Option<&RawRun>) -> Option<BrokerSpec> {
        let from_file = self.file_broker(raw);
        let Some(flag) = self.broker_flag.clone() else { return from_file };
        let mut spec = from_file.unwrap_or_else(|| BrokerSpec::new(&flag));
        spec.url = flag.to_string();
        Some(spec)
    }

    /// The broker the file's `[run]` names, checked.
    fn file_broker(&mut self, raw: Option<&RawRun>) -> Option<BrokerSpec> {
        let run = raw?;
        let Some(url) = &run.broker else {
            for (value, key) in
                [(&run.broker_lease, "broker_lease"), (&run.broker_password_file, "broker_password_file")]
            {
                if let Some(v) = value {
                    self.report(v.span(), format!("run.{key} needs `broker = \"redis://…\"` in [run]"));
                }
            }
            return None;
        };
        let spec = match BrokerUrl::parse(url.get_ref()) {
            Ok(parsed) => BrokerSpec::new(&parsed),
            Err(e) => {
                self.report(url.span(), format!("run.broker: {e}"));
                // The workflow is refused; the rest is still checked as a broker run's
                // (pools without `command`), so the one problem is the one reported.
                BrokerSpec { url: String::new(), password: PasswordSource::None, lease_ms: 0, ttl_ms: 0 }
            }
        };
        let mut spec = BrokerSpec { lease_ms: DEFAULT_LEASE_MS, ttl_ms: DEFAULT_TTL_MS, ..spec };
        if let Some(lease) = &run.broker_lease {
            spec.lease_ms = self.duration(lease, "run.broker_lease").unwrap_or(spec.lease_ms);
            if spec.lease_ms < MIN_LEASE_MS {
                let message = format!("run.broker_lease must be at least 1s, got {:?}", lease.get_ref());
                self.report(lease.span(), message);
            }
        }
        if let Some(file) = &run.broker_password_file {
            if file.get_ref().trim().is_empty() {
                self.report(file.span(), "run.broker_password_file is empty");
            }
            let path = self.base.join(file.get_ref());
            spec.password = PasswordSource::File(std::path::absolute(&path).unwrap_or(path));
        }
        Some(spec)
    }
}
