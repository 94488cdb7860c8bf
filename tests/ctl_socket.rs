//! The control socket itself: private (0600), one owner (the folder lock), stale files
//! replaced, long folder paths moved to the runtime dir, bad requests answered with
//! an error and nothing changed, and no descriptor leak over many connections.

mod common;
mod ctl_common;

use std::io::{BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;

use common::{read_events, Scratch};
use ctl_common::{connect, eventually, fd_count, read_json_line, stderr, Live, POOLS};

fn long_task() -> String {
    format!("{POOLS}\n[[task]]\nid = \"long\"\npool = \"slow\"\n")
}

#[test]
fn the_socket_is_private_and_gone_when_the_manager_stops() {
    let mut live = Live::start(&long_task());
    let path = live.dir.join("ctl.sock");
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let out = live.stop();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(!path.exists(), "the socket file outlived its manager");
}

#[test]
fn garbage_an_oversized_line_and_unknown_commands_get_errors_and_change_nothing() {
    let mut live = Live::start(&long_task());
    live.wait_state("long", "running");
    let before = read_events(&live.dir).len();
    let status_before = live.status();

    let mut stream = connect(&live.dir);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for (request, expect) in [
        ("this is not json", "not a request"),
        (r#"{"no_cmd": 1}"#, "not a request"),
        (r#"{"cmd": "frobnicate all", "id": 5}"#, "unknown command \"frobnicate\""),
        (r#"{"cmd": "cancel no-such-task"}"#, "no task \"no-such-task\""),
        (r#"{"cmd": "concurrency slow 0"}"#, "usage: concurrency POOL N"),
    ] {
        stream.write_all(format!("{request}\n").as_bytes()).unwrap();
        let reply = read_json_line(&mut reader);
        assert_eq!(reply["ok"], false, "{request}: {reply}");
        assert!(reply["error"].as_str().unwrap().contains(expect), "{request}: {reply}");
    }
    // The same connection still answers.
    stream.write_all(b"{\"cmd\":\"status\",\"id\":\"after\"}\n").unwrap();
    let reply = read_json_line(&mut reader);
    assert_eq!((reply["ok"].clone(), reply["id"].clone()), (true.into(), "after".into()), "{reply}");

    // A 2 MiB line: an error, then the connection is closed.
    let huge = vec![b'x'; 2 << 20];
    let writer = std::thread::spawn({
        let mut stream = stream.try_clone().unwrap();
        move || {
            let _ = stream.write_all(&huge);
            let _ = stream.write_all(b"\n");
        }
    });
    let reply = read_json_line(&mut reader);
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("over 1048576 bytes"), "{reply}");
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing after the refusal: {:?}", String::from_utf8_lossy(&rest));
    drop(stream);
    let _ = writer.join();

    // Nothing changed: no record, same state; the manager still answers.
    assert_eq!(read_events(&live.dir).len(), before, "a bad request wrote to the log");
    assert_eq!(live.status(), status_before);
    live.stop();
}

#[test]
fn a_thousand_subscribe_cycles_leave_the_managers_descriptors_as_they_were() {
    let mut live = Live::start(&long_task());
    live.wait_state("long", "running");
    let pid = live.pid();
    let baseline = fd_count(pid);
    assert!(baseline > 0);
    let dir = live.dir.clone();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for _ in 0..125 {
                    let mut stream = connect(&dir);
                    stream.write_all(b"{\"cmd\":\"subscribe\",\"from_seq\":0}\n").unwrap();
                    // Read the first record, then go away mid-stream.
                    let first = read_json_line(&mut BufReader::new(&stream));
                    assert_eq!(first["seq"], 1, "{first}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a subscriber thread failed");
    }
    eventually("the descriptors to come back to the baseline", || fd_count(pid) <= baseline);
    assert_eq!(live.status()["counts"]["running"], 1, "the run went on");
    live.stop();
}

#[test]
fn a_second_manager_is_refused_and_the_first_ones_socket_still_answers() {
    let live = Live::start(&long_task());
    let workflow = live.scratch.path().join("workflow.toml");
    let second = live
        .scratch
        .pitboss()
        .args(["run", "--headless", "--state-dir"])
        .arg(&live.dir)
        .arg(&workflow)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    let resumed = live.scratch.pitboss().args(["resume", "--headless"]).arg(&live.dir).output().unwrap();
    assert_eq!(resumed.status.code(), Some(2), "{}", stderr(&resumed));
    live.wait_state("long", "running");
    assert!(live.dir.join("ctl.sock").exists());
}

#[test]
fn a_stale_socket_file_of_a_crashed_manager_is_replaced() {
    let scratch = Scratch::new();
    let dir = scratch.run_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // A socket nobody listens on, as a manager killed with -9 leaves it.
    drop(std::os::unix::net::UnixListener::bind(dir.join("ctl.sock")).unwrap());
    assert!(std::os::unix::net::UnixStream::connect(dir.join("ctl.sock")).is_err());
    let mut live = Live::start_in(scratch, Some(dir), &long_task(), &[]);
    // The new manager answers on the replaced socket (its task may not be started yet).
    live.wait_state("long", "running");
    assert_eq!(live.status()["counts"]["running"], 1);
    live.stop();
}

#[test]
fn a_folder_path_too_long_for_a_socket_gets_a_pointer_to_the_runtime_dir() {
    let scratch = Scratch::new();
    let runtime = scratch.path().join("rt");
    std::fs::create_dir_all(&runtime).unwrap();
    let dir = scratch.path().join("a".repeat(60)).join("b".repeat(60)).join("run");
    assert!(dir.join("ctl.sock").as_os_str().len() > 107);
    let runtime_env = runtime.display().to_string();
    let mut live = Live::start_in(scratch, Some(dir.clone()), &long_task(), &[("XDG_RUNTIME_DIR", &runtime_env)]);
    assert!(!dir.join("ctl.sock").exists());
    let target = std::fs::read_to_string(dir.join("ctl.sock.path")).unwrap();
    assert!(target.starts_with(&runtime_env), "{target}");
    let meta = std::fs::metadata(target.trim_end()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let folder = std::fs::metadata(runtime.join("pitboss")).unwrap();
    assert_eq!(folder.permissions().mode() & 0o777, 0o700);
    // `pitboss ctl` finds it through the pointer.
    let out = live.ctl(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    live.stop();
    assert!(!dir.join("ctl.sock.path").exists() && !std::path::Path::new(target.trim_end()).exists());
}

#[test]
fn a_client_of_another_uid_is_refused_by_its_peer_credentials() {
    if unsafe { libc::getuid() } != 0 {
        // Only root can connect as another user; the file mode refuses others anyway.
        eprintln!("skipped: needs root to connect as another uid");
        return;
    }
    let mut live = Live::start(&long_task());
    // Open the door the file modes keep shut, so that only the peer check is left.
    let socket = live.dir.join("ctl.sock");
    std::fs::set_permissions(&live.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let client = format!(
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?}); print(s.makefile().readline())",
        socket.display().to_string()
    );
    let out =
        std::process::Command::new("python3").args(["-c", &client]).uid(65534).gid(65534).output().expect("python3");
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(reply.contains("\"ok\":false") && reply.contains("refused: uid 65534"), "{reply} {}", stderr(&out));
    live.stop();
}
