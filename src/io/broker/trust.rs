//! Whom a TLS broker connection (`rediss://`, `amqps://`) trusts, and who it says it
//! is. Trust: the system's certificate store by default, or the certificates of a CA
//! file an operator names (`--broker-ca-file`, else [`CA_FILE_ENV`]) for a broker whose
//! certificate a private CA signed. Identity: a client certificate and key for a broker
//! that asks for one (mTLS; Redis's `tls-auth-clients yes`, its default). The files are
//! read and checked once, before any connection, so a wrong path or a file that is not
//! what it should be is a clear error at start rather than a handshake failure that
//! names no file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use crate::core::workflow::{CaFile, ClientCert};
use crate::io::broker::url::{BrokerUrl, UrlError};

/// The environment variable naming a CA file (PEM), when no `--broker-ca-file` is given.
pub const CA_FILE_ENV: &str = "PITBOSS_BROKER_CA_FILE";
/// The environment variable naming a client certificate (PEM), when no flag gives one.
pub const CLIENT_CERT_ENV: &str = "PITBOSS_BROKER_CLIENT_CERT";
/// The environment variable naming that certificate's private key (PEM).
pub const CLIENT_KEY_ENV: &str = "PITBOSS_BROKER_CLIENT_KEY";

/// The TLS files named on the command line; a missing one falls back to its variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--broker-ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--broker-client-cert`.
    pub client_cert: Option<PathBuf>,
    /// `--broker-client-key`.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// The first flag given, by name (for "needs --broker" and "needs TLS" errors).
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (self.ca_file.is_some(), "--broker-ca-file"),
            (self.client_cert.is_some(), "--broker-client-cert"),
            (self.client_key.is_some(), "--broker-client-key"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

/// `url` with the TLS files of `files` (each flag, else its variable) read and
/// attached. A plain URL refuses the flags (the operator likely meant
/// `rediss://`/`amqps://`) and ignores the variables (they may be set for every broker
/// on a host).
pub fn apply(url: BrokerUrl, files: &TlsFiles) -> Result<BrokerUrl, UrlError> {
    apply_from(url, files, |name| std::env::var_os(name))
}

/// [`apply`] with the environment given (for tests).
pub fn apply_from(
    url: BrokerUrl,
    files: &TlsFiles,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<BrokerUrl, UrlError> {
    if !url.tls {
        return match files.first_given() {
            Some(flag) => Err(UrlError::TlsFileWithoutTls { url: url.to_string(), flag }),
            None => Ok(url),
        };
    }
    let pick = |flag: &Option<PathBuf>, var: &str| {
        flag.clone().or_else(|| env(var).filter(|v| !v.is_empty()).map(PathBuf::from))
    };
    let ca = pick(&files.ca_file, CA_FILE_ENV).map(|p| read_ca(&p)).transpose()?;
    let client = match (pick(&files.client_cert, CLIENT_CERT_ENV), pick(&files.client_key, CLIENT_KEY_ENV)) {
        (Some(cert), Some(key)) => Some(read_client(&cert, &key)?),
        (None, None) => None,
        (Some(_), None) => {
            return Err(UrlError::ClientCertHalf { missing: "--broker-client-key or PITBOSS_BROKER_CLIENT_KEY" })
        }
        (None, Some(_)) => {
            return Err(UrlError::ClientCertHalf { missing: "--broker-client-cert or PITBOSS_BROKER_CLIENT_CERT" })
        }
    };
    Ok(url.with_ca(ca).with_client(client))
}

/// Reads a PEM file that must hold at least one certificate.
/// Reads and checks a CA file: readable, PEM, at least one certificate.
pub fn read_ca(path: &Path) -> Result<CaFile, UrlError> {
    Ok(CaFile::new(path, read_certificates(path, "CA file")?))
}

/// Reads and checks a client certificate and its key (private to its owner).
pub fn read_client(cert: &Path, key: &Path) -> Result<ClientCert, UrlError> {
    let cert_pem = read_certificates(cert, "client certificate")?;
    let key_pem = read_private_key(key)?;
    Ok(ClientCert::new(cert, cert_pem, key_pem))
}

fn read_certificates(path: &Path, what: &'static str) -> Result<String, UrlError> {
    let bad = |reason: String| UrlError::TlsFile { what, path: path.to_path_buf(), reason };
    let pem = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    match count_certificates(&pem) {
        Ok(0) => Err(bad("it holds no certificate (-----BEGIN CERTIFICATE-----)".into())),
        Ok(_) => Ok(pem),
        Err(reason) => Err(bad(reason)),
    }
}

/// Reads a private key file: private to its owner (as a password file), one PEM key.
fn read_private_key(path: &Path) -> Result<String, UrlError> {
    let bad = |reason: String| UrlError::TlsFile { what: "client key", path: path.to_path_buf(), reason };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(format!("it is readable by group or others (mode {mode:o}): chmod 600 it")));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let pem = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    check_private_key(&pem).map_err(bad)?;
    Ok(pem)
}

/// `reason` (a connection error's words) with what to do when it is TLS refusing the
/// broker's certificate as signed by an unknown CA (`ca` is the file trusted, if any),
/// or the broker asking for a client certificate that was not given.
pub fn hint(reason: String, ca: Option<&Path>) -> String {
    if reason.contains("CertificateRequired") {
        return format!(
            "{reason}: the broker asks for a client certificate; give --broker-client-cert and \
             --broker-client-key (or {CLIENT_CERT_ENV} and {CLIENT_KEY_ENV})"
        );
    }
    if !reason.contains("UnknownIssuer") {
        return reason;
    }
    match ca {
        Some(path) => format!("{reason}: the broker's certificate is not signed by the CA in {}", path.display()),
        None => format!(
            "{reason}: the broker's certificate is not signed by a CA this host trusts; \
             name its CA with --broker-ca-file or {CA_FILE_ENV}"
        ),
    }
}

/// How many certificates the PEM text holds; Err when a block does not decode.
#[cfg(feature = "tls")]
fn count_certificates(pem: &str) -> Result<usize, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .try_fold(0, |n, cert| cert.map(|_| n + 1))
        .map_err(|e| format!("it is not PEM certificates: {e}"))
}

/// Err when the PEM text holds no private key (the error names no key material).
#[cfg(feature = "tls")]
fn check_private_key(pem: &str) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map(|_| ())
        .map_err(|_| "it holds no PEM private key (-----BEGIN PRIVATE KEY-----)".to_string())
}

/// Without TLS no key is ever used; look for a marker.
#[cfg(not(feature = "tls"))]
fn check_private_key(pem: &str) -> Result<(), String> {
    match pem.contains("PRIVATE KEY-----") {
        true => Ok(()),
        false => Err("it holds no PEM private key (-----BEGIN PRIVATE KEY-----)".to_string()),
    }
}

/// Without TLS no CA file is ever used (TLS URLs are refused); count the markers.
#[cfg(not(feature = "tls"))]
fn count_certificates(pem: &str) -> Result<usize, String> {
    Ok(pem.matches("-----BEGIN CERTIFICATE-----").count())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_A_CERT: &str = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";

    fn url(text: &str) -> BrokerUrl {
        BrokerUrl::parse(text).unwrap()
    }

    /// The CA [`apply_from`] attaches, with `env_ca` as the variable's value.
    fn ca_of(text: &str, env_ca: Option<&str>, flag: Option<&Path>) -> Result<Option<CaFile>, UrlError> {
        let files = TlsFiles { ca_file: flag.map(Path::to_path_buf), ..TlsFiles::default() };
        let env = |name: &str| (name == CA_FILE_ENV).then(|| env_ca.map(OsString::from)).flatten();
        apply_from(url(text), &files, env).map(|u| u.ca)
    }

    #[test]
    fn no_file_means_the_system_store() {
        assert_eq!(ca_of("rediss://h", None, None).unwrap(), None);
        assert_eq!(ca_of("rediss://h", Some(""), None).unwrap(), None);
    }

    #[test]
    fn a_plain_url_refuses_the_flags_and_ignores_the_variables() {
        let err = ca_of("redis://h", None, Some(Path::new("/x/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("rediss://") && err.to_string().contains("--broker-ca-file"), "{err}");
        assert_eq!(ca_of("amqp://h", Some("/x/ca.pem"), None).unwrap(), None);
        let files = TlsFiles { client_key: Some("/k".into()), ..TlsFiles::default() };
        let err = apply_from(url("amqp://h"), &files, |_| None).unwrap_err();
        assert!(err.to_string().contains("--broker-client-key"), "{err}");
    }

    #[test]
    fn a_missing_or_wrong_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = ca_of("rediss://h", missing.to_str(), None).unwrap_err();
        assert!(err.to_string().contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        let err = ca_of("amqps://h", None, Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("empty.pem") && err.to_string().contains("no certificate"), "{err}");
        #[cfg(feature = "tls")]
        {
            let garbled = dir.path().join("garbled.pem");
            std::fs::write(&garbled, NOT_A_CERT).unwrap();
            let err = ca_of("amqps://h", None, Some(&garbled)).unwrap_err();
            assert!(err.to_string().contains("garbled.pem"), "{err}");
        }
    }

    #[test]
    fn the_flag_wins_over_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.pem");
        let err = ca_of("rediss://h", Some("/env/ca.pem"), Some(&other)).unwrap_err();
        assert!(err.to_string().contains("other.pem"), "{err}");
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_a_private_key_file() {
        let files = TlsFiles { client_cert: Some("/c.pem".into()), ..TlsFiles::default() };
        let err = apply_from(url("rediss://h"), &files, |_| None).unwrap_err();
        assert!(err.to_string().contains(CLIENT_KEY_ENV), "{err}");
        let env = |name: &str| (name == CLIENT_KEY_ENV).then(|| OsString::from("/k.pem"));
        let err = apply_from(url("rediss://h"), &TlsFiles::default(), env).unwrap_err();
        assert!(err.to_string().contains(CLIENT_CERT_ENV), "{err}");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let key = dir.path().join("client.key");
            std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = read_private_key(&key).unwrap_err().to_string();
            assert!(err.contains("client.key") && err.contains("chmod 600"), "{err}");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::write(&key, "not a key\n").unwrap();
            let err = read_private_key(&key).unwrap_err().to_string();
            assert!(err.contains("no PEM private key"), "{err}");
        }
    }

    #[test]
    fn an_unknown_issuer_says_where_trust_comes_from() {
        let words = "invalid peer certificate: UnknownIssuer".to_string();
        assert!(hint(words.clone(), None).contains(CA_FILE_ENV));
        assert!(hint(words, Some(Path::new("/etc/ca.pem"))).ends_with("not signed by the CA in /etc/ca.pem"));
        assert_eq!(hint("timed out".into(), None), "timed out");
        let asked = hint("received fatal alert: CertificateRequired".into(), None);
        assert!(asked.contains("--broker-client-cert") && asked.contains(CLIENT_KEY_ENV), "{asked}");
    }
}
