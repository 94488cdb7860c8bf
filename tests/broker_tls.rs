//! TLS to brokers for real: a private `redis-server` with a TLS port and a certificate
//! signed by a CA this test makes (rcgen), then the real `pitboss run --broker
//! rediss://…` and a real `pitboss worker` trusting that CA (`--broker-ca-file`, or
//! `PITBOSS_BROKER_CA_FILE`). A wrong CA, no CA, or a plain server on a TLS URL must
//! be a clear exit 2 at start, never a hang. RabbitMQ has no TLS listener here: an
//! `amqps://` worker is pointed at a small rustls server of the test's own, which
//! shows that the AMQP connection trusts the CA file (it gets the AMQP header over
//! TLS) and refuses another CA's certificate.
//!
//! Skipped loudly without `redis-server` (failed under `CI=true`, see broker_common).

#![cfg(feature = "tls")]

mod broker_common;
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_common::wait_until;
use common::{finish_within, read_events, wait_within, Scratch};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A refusal at start must come well before this (connect timeouts are a few seconds).
const START_LIMIT: Duration = Duration::from_secs(30);

/// A CA of the test's own, a server certificate for 127.0.0.1 and a client
/// certificate it signed.
struct Pki {
    ca_pem: String,
    server_pem: String,
    server_key_pem: String,
    client_pem: String,
    client_key_pem: String,
}

impl Pki {
    /// Writes the CA, client certificate and client key (private) into `dir`.
    fn client_files(&self, s: &Scratch) -> (PathBuf, PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let key = s.write("client.key", &self.client_key_pem);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        (s.write("ca.pem", &self.ca_pem), s.write("client.pem", &self.client_pem), key)
    }
}

fn make_pki(name: &str) -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, format!("pitboss test CA {name}"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let key = KeyPair::generate().unwrap();
    let cert = server.signed_by(&key, &ca).unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client.distinguished_name.push(DnType::CommonName, "pitboss-worker");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client = client.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_pem: cert.pem(),
        server_key_pem: key.serialize_pem(),
        client_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// A private redis-server listening with TLS only, on a free port, asking clients for
/// a certificate signed by the same CA when `auth_clients`; killed on drop.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    fn start(dir: &Path, pki: &Pki, auth_clients: bool) -> TlsRedis {
        std::fs::create_dir_all(dir).unwrap();
        let (cert, key, ca) = (dir.join("server.pem"), dir.join("server.key"), dir.join("server-ca.pem"));
        std::fs::write(&cert, &pki.server_pem).unwrap();
        std::fs::write(&key, &pki.server_key_pem).unwrap();
        std::fs::write(&ca, &pki.ca_pem).unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--tls-auth-clients", if auth_clients { "yes" } else { "no" }])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let mut own = TlsRedis { port, child };
        let up = wait_until(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", port)).is_ok());
        if !up {
            let status = own.child.try_wait().ok().flatten();
            panic!("redis-server with --tls-port {port} did not listen within 10 s (exited: {status:?}); built without TLS?");
        }
        own
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pitboss(s: &Scratch) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pitboss"));
    cmd.env("PITBOSS_HOME", s.path())
        .env_remove("PITBOSS_BROKER_PASSWORD")
        .env_remove("PITBOSS_BROKER_CA_FILE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null());
    cmd
}

fn workflow(s: &Scratch, pool: &str, tasks: usize) -> PathBuf {
    let mut wf = format!(
        "[defaults]\ntimeout = \"1m\"\nretry = {{ max_attempts = 1 }}\n\
         [[pool]]\nname = \"{pool}\"\ncommand = [\"true\"]\nconcurrency = 2\n"
    );
    for i in 0..tasks {
        wf.push_str(&format!("[[task]]\nid = \"t{i}\"\n"));
    }
    s.write("wf.toml", &wf)
}

/// `pitboss worker` for `pool` running `true`, its stderr to `log`.
fn worker(s: &Scratch, url: &str, pool: &str, extra: &[&str], env: &[(&str, &Path)], log: &Path) -> Child {
    let mut cmd = pitboss(s);
    cmd.args(["worker", "--broker", url, "--pool", pool]).args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["--", "true"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("pitboss worker starts")
}

/// A worker that must refuse to start: exit 2 within [`START_LIMIT`], its stderr.
fn refused_worker(s: &Scratch, url: &str, extra: &[&str], what: &str) -> String {
    let started = Instant::now();
    let mut cmd = pitboss(s);
    cmd.args(["worker", "--broker", url, "--pool", "p"]).args(extra).args(["--", "true"]);
    let out = finish_within(cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap(), what);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(started.elapsed() < START_LIMIT, "{what}: took {:?}", started.elapsed());
    stderr
}

/// `pitboss run` that must refuse to start: exit 2 within [`START_LIMIT`], no run
/// folder, its stderr.
fn refused_run(s: &Scratch, url: &str, extra: &[&str], what: &str) -> String {
    let wf = workflow(s, "p", 1);
    let dir = s.path().join("refused-run");
    let started = Instant::now();
    let mut cmd = pitboss(s);
    cmd.args(["run", "--headless", "--broker", url]).args(extra).arg("--state-dir").arg(&dir).arg(&wf);
    let out = finish_within(cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap(), what);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(started.elapsed() < START_LIMIT, "{what}: took {:?}", started.elapsed());
    assert!(!dir.exists(), "{what}: a refused broker leaves no run folder");
    stderr
}

#[test]
fn a_run_and_a_worker_finish_over_rediss_with_a_private_ca_and_client_certificates() {
    if !broker_common::redis_server() {
        return;
    }
    let s = Scratch::new();
    let pki = make_pki("good");
    // Redis's default: a client must show a certificate the CA signed.
    let redis = TlsRedis::start(s.path(), &pki, true);
    let (ca, cert, key) = pki.client_files(&s);
    let url = redis.url();

    // The worker finds its files through the environment, the run through flags.
    let log = s.path().join("worker.log");
    let env =
        [("PITBOSS_BROKER_CA_FILE", &*ca), ("PITBOSS_BROKER_CLIENT_CERT", &cert), ("PITBOSS_BROKER_CLIENT_KEY", &key)];
    let mut w = worker(&s, &url, "tls", &[], &env, &log);
    let wf = workflow(&s, "tls", 6);
    let dir = s.run_dir();
    let run_log = s.path().join("run.log");
    let mut run = pitboss(&s)
        .args(["run", "--headless", "--broker", &url, "--broker-ca-file"])
        .arg(&ca)
        .arg("--broker-client-cert")
        .arg(&cert)
        .arg("--broker-client-key")
        .arg(&key)
        .arg("--state-dir")
        .arg(&dir)
        .arg(&wf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&run_log).unwrap())
        .spawn()
        .unwrap();
    // The run waits for a worker: a worker that could not connect fails the test now,
    // not at the deadline.
    let limit = Instant::now() + common::deadline();
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if let Some(status) = w.try_wait().unwrap() {
            let _ = run.kill();
            let _ = run.wait();
            panic!("the worker ended ({status}) before the run: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        if Instant::now() > limit {
            let _ = run.kill();
            let _ = run.wait();
            panic!("the run did not finish within the deadline: {}", std::fs::read_to_string(&run_log).unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&run_log).unwrap_or_default();
    let worker_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "run: {stderr}\nworker: {worker_log}");
    let succeeded = read_events(&dir).iter().filter(|e| e["type"] == "attempt_succeeded").count();
    assert_eq!(succeeded, 6, "run: {stderr}\nworker: {worker_log}");

    // The worker drains and leaves cleanly on SIGTERM.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(w.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = wait_within(&mut w, "the rediss:// worker after SIGTERM");
    assert_eq!(status.code(), Some(0), "worker: {}", std::fs::read_to_string(&log).unwrap_or_default());
}

#[test]
fn another_ca_no_ca_or_a_plain_server_is_exit_2_at_start() {
    if !broker_common::redis_server() {
        return;
    }
    let s = Scratch::new();
    let pki = make_pki("server");
    let redis = TlsRedis::start(s.path(), &pki, false);
    let url = redis.url();
    let wrong = s.write("other-ca.pem", &make_pki("other").ca_pem);
    let wrong = wrong.to_str().unwrap();

    // The words name the refused certificate and where trust came from.
    let cases = [
        ("another CA", vec!["--broker-ca-file", wrong], "other-ca.pem"),
        ("the system's store", vec![], "PITBOSS_BROKER_CA_FILE"),
    ];
    for (what, extra, says) in cases {
        let run = refused_run(&s, &url, &extra, &format!("run trusting {what}"));
        assert!(run.contains(&url) && run.contains("UnknownIssuer") && run.contains(says), "run, {what}: {run}");
        let worker = refused_worker(&s, &url, &extra, &format!("worker trusting {what}"));
        assert!(worker.contains("UnknownIssuer") && worker.contains(says), "worker, {what}: {worker}");
    }

    // A server that asks for a client certificate, and none is given.
    let (ca, _, _) = pki.client_files(&s);
    let strict = TlsRedis::start(&s.path().join("strict"), &pki, true);
    let run = refused_run(&s, &strict.url(), &["--broker-ca-file", ca.to_str().unwrap()], "run without a client cert");
    assert!(run.contains(&strict.url()) && run.contains("CertificateRequired"), "{run}");
    assert!(run.contains("--broker-client-cert"), "{run}");

    // A plain server on a TLS URL: refused in the handshake's words, not a hang.
    let plain = broker_common::OwnRedis::start();
    let tls_url = format!("rediss://127.0.0.1:{}", plain.port);
    let good = s.write("ca.pem", &pki.ca_pem);
    let good = good.to_str().unwrap();
    let run = refused_run(&s, &tls_url, &["--broker-ca-file", good], "run with rediss:// to a plain server");
    assert!(run.contains(&tls_url), "{run}");

    // A CA file that is not one, or one given with a plain URL, is named before connecting.
    let bad = s.write("not-a-ca.pem", "hello\n");
    let worker = refused_worker(&s, &url, &["--broker-ca-file", bad.to_str().unwrap()], "worker with a non-CA file");
    assert!(worker.contains("not-a-ca.pem") && worker.contains("no certificate"), "{worker}");
    let run = refused_run(&s, &plain.url(None), &["--broker-ca-file", good], "run with a CA file and redis://");
    assert!(run.contains("rediss://"), "{run}");
}

/// A TLS server of the test's own on a free port: it completes one handshake with
/// `pki`'s server certificate, asking for a client certificate signed by `pki`'s CA,
/// and sends what the client wrote first (8 bytes: an AMQP client's protocol header)
/// on `got`, then closes; a failed handshake sends its error.
fn tls_listener(pki: &Pki) -> (u16, mpsc::Receiver<Result<Vec<u8>, String>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = vec![CertificateDer::from_pem_slice(pki.server_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
    let clients = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
    let config =
        rustls::ServerConfig::builder().with_client_cert_verifier(clients).with_single_cert(certs, key).unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else { return };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
        let mut conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        let mut header = [0u8; 8];
        let got = tls.read_exact(&mut header).map(|_| header.to_vec()).map_err(|e| e.to_string());
        let _ = tls.flush();
        let _ = tx.send(got);
    });
    (port, rx)
}

#[test]
fn an_amqps_worker_trusts_the_ca_file_and_refuses_another() {
    let s = Scratch::new();
    let pki = make_pki("amqp");
    let (ca, cert, key) = pki.client_files(&s);
    let (ca, cert, key) = (ca.to_str().unwrap(), cert.to_str().unwrap(), key.to_str().unwrap());
    let other = s.write("other-ca.pem", &make_pki("amqp-other").ca_pem);

    // Trusted, with a client certificate: the TLS session opens and carries the AMQP
    // header; the fake broker then hangs up, which the worker reports as an
    // unreachable broker (exit 2).
    let (port, got) = tls_listener(&pki);
    let url = format!("amqps://127.0.0.1:{port}");
    let files = ["--broker-ca-file", ca, "--broker-client-cert", cert, "--broker-client-key", key];
    refused_worker(&s, &url, &files, "amqps worker trusting the CA");
    let header = got.recv_timeout(START_LIMIT).expect("the fake broker saw a connection");
    assert_eq!(header.as_deref(), Ok(&b"AMQP\x00\x00\x09\x01"[..]), "the AMQP header arrived over TLS");

    // Another CA: the handshake fails, the worker says why.
    let (port, got) = tls_listener(&pki);
    let url = format!("amqps://127.0.0.1:{port}");
    let files = ["--broker-ca-file", other.to_str().unwrap(), "--broker-client-cert", cert, "--broker-client-key", key];
    let stderr = refused_worker(&s, &url, &files, "amqps worker, other CA");
    assert!(stderr.contains("UnknownIssuer") && stderr.contains("other-ca.pem"), "{stderr}");
    let seen = got.recv_timeout(START_LIMIT).expect("the fake broker saw a connection");
    assert!(seen.is_err(), "no AMQP bytes may pass a refused handshake: {seen:?}");
}
