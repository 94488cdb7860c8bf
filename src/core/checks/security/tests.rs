//! Tests of the security gate's built-in rules: each rule on the shape it finds and
//! on the safe form it must stay quiet on.

use super::*;
use serde_json::json;

fn rules_in(text: &str) -> Vec<String> {
    scan(&json!({ "text": text }), &[]).into_iter().map(|f| f.rule).collect()
}

#[track_caller]
fn hits(rule: &str, text: &str) {
    let found = rules_in(text);
    assert!(found.iter().any(|r| r == rule), "{rule} not found in {text:?}: {found:?}");
}

#[track_caller]
fn quiet(text: &str) {
    let found = scan(&json!({ "text": text }), &[]);
    assert!(found.is_empty(), "expected nothing in {text:?}, found {found:?}");
}

#[test]
fn every_pattern_compiles() {
    let r = rules();
    assert!(r.secret.len() >= 9 && r.code.len() >= 15);
}

#[test]
fn aws_access_key_ids() {
    hits("secret/aws-access-key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE");
    hits("secret/aws-access-key", "temporary: ASIAY34FZKBOKMUTVV7A");
    quiet("AKIA is the prefix of an AWS key id; AKIASHORT is not one");
    quiet("xAKIAIOSFODNN7EXAMPLEx and akiaiosfodnn7example");
}

#[test]
fn aws_secret_keys() {
    hits("secret/aws-secret-key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    hits("secret/aws-secret-key", r#"AWS_SECRET_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY""#);
    quiet("aws_secret_access_key = os.environ['AWS_SECRET_ACCESS_KEY']");
    quiet("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY alone is just forty characters");
}

#[test]
fn github_tokens() {
    hits("secret/github-token", "token ghp_16C7e42F292c6912E7710c838347Ae178B4a here");
    hits("secret/github-token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ");
    quiet("ghp_short and the github_pat_ prefix, mentioned in docs");
}

#[test]
fn slack_tokens() {
    hits("secret/slack-token", "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
    quiet("slack bot tokens start with xoxb- followed by numbers");
    quiet("xoxb-placeholder-token-here");
}

#[test]
fn openai_and_anthropic_keys() {
    hits("secret/openai-key", "OPENAI_API_KEY=sk-proj-Ab3dEf6hIjK9mNoPqR2sTuVwXyZ0123456789abcd");
    hits("secret/openai-key", "sk-4f9d8e7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a");
    hits("secret/anthropic-key", "key: sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789");
    assert!(!rules_in("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789").contains(&"secret/openai-key".into()));
    quiet("we use sk-learn-pipeline-2024-final for the model, and the risk-assessment-framework-2024");
}

#[test]
fn private_keys() {
    hits("secret/private-key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----");
    hits("secret/private-key", "-----BEGIN OPENSSH PRIVATE KEY-----");
    hits("secret/private-key", "-----BEGIN PGP PRIVATE KEY BLOCK-----");
    quiet("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE-----");
}

#[test]
fn password_assignments() {
    hits("secret/password-assignment", r#"db_password = "hunter22""#);
    hits("secret/password-assignment", r#"{"password": "s3cr3t!pass"}"#);
    hits("secret/password-assignment", "API_KEY='a8f9b0c1d2e3'");
    quiet(r#"password = "${DB_PASSWORD}"; PASSWORD = '<your-password>'; pwd = "changeme""#);
    quiet("the password must be at least 12 characters; secretary = Alice");
    quiet(r#"password = os.environ["DB_PASSWORD"]"#);
}

#[test]
fn password_members_of_the_result() {
    let found = scan(&json!({"db": {"password": "hunter22", "user": "admin"}}), &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].rule, "secret/password-assignment");
    assert_eq!(found[0].location, "/db/password:1:1");
    assert!(!found[0].excerpt.contains("hunter22"), "{found:?}");
    let aws = scan(&json!({"aws_secret_access_key": "q8Fj2LmZ0pR7sT4uV1wX9yA3bC6dE5fG8hI2jK0l"}), &[]);
    assert_eq!(aws[0].rule, "secret/aws-secret-key");
    assert!(scan(&json!({"password": "<set me>", "secret": "${VAULT_SECRET}", "password_hint": "x"}), &[]).is_empty());
    assert!(scan(&json!({"secret": "the treasure is under the oak"}), &[]).is_empty());
}

#[test]
fn jwts() {
    hits("secret/jwt", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U");
    quiet("a JWT starts with eyJ because base64 of {\" is eyJ");
}

#[test]
fn the_runs_own_secret_values() {
    let secrets = vec![("DB_PASS".to_string(), "correct-horse-battery".to_string()), ("PIN".into(), "12".into())];
    let found = scan(&json!({"log": "connecting with correct-horse-battery ok; pin 12"}), &secrets);
    assert_eq!(found.len(), 1, "a value under MIN_SECRET_LEN is not looked for: {found:?}");
    assert_eq!(found[0].rule, "secret/run-secret");
    assert_eq!(found[0].location, "/log:1:17");
    assert!(found[0].excerpt.contains("[secret DB_PASS, 21 chars]"), "{found:?}");
    assert!(!found[0].excerpt.contains("horse"), "{found:?}");
    // Where redaction already replaced it, the mark is the finding.
    let found = scan(&json!({"log": "password is [REDACTED:DB_PASS]"}), &[]);
    assert_eq!(found.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["secret/run-secret"]);
    assert!(scan(&json!({"log": "connecting"}), &secrets).is_empty());
}

#[test]
fn keys_are_scanned_and_masked_in_locations() {
    let found = scan(&json!({"AKIAIOSFODNN7EXAMPLE": {"note": "AKIAIOSFODNN7EXAMPL2"}}), &[]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].location, "/AKIA…[20 chars] (key):1:1");
    assert_eq!(found[1].location, "/AKIA…[20 chars]/note:1:1");
    for f in &found {
        assert!(!f.location.contains("IOSFODNN") && !f.excerpt.contains("IOSFODNN"), "{f:?}");
    }
}

#[test]
fn sql_built_by_concatenation() {
    hits("code/sql-concat", r#"q = "SELECT * FROM users WHERE id = " + user_id"#);
    hits("code/sql-concat", r#"query = "SELECT name FROM users WHERE name = '" + name + "'""#);
    hits("code/sql-concat", r#"$q = "DELETE FROM posts WHERE id = " . $id;"#);
    hits("code/sql-concat", r#"sql = 'insert into logs (msg) values (' + msg + ')'"#);
    quiet(r#"cursor.execute("SELECT * FROM users WHERE id = %s", (user_id,))"#);
    quiet(r#"label = "Select a file from " + folder"#);
    quiet(r#"db.query("SELECT * FROM users WHERE id = ?", [id]); msg = "SELECT * FROM t" + ";""#);
}

#[test]
fn sql_built_by_interpolation() {
    hits("code/sql-interpolation", r#"cur.execute(f"SELECT * FROM users WHERE name = '{name}'")"#);
    hits(
        "code/sql-interpolation",
        "cur.execute(f\"\"\"\n  SELECT id\n  FROM users\n  WHERE email = '{email}'\n\"\"\")",
    );
    hits("code/sql-interpolation", "db.query(`SELECT * FROM users WHERE id = ${req.params.id}`)");
    hits("code/sql-interpolation", r#"sql = "UPDATE users SET name = '{}' WHERE id = {}".format(n, i)"#);
    hits("code/sql-interpolation", r#"sql = "DELETE FROM t WHERE id = %s" % row_id"#);
    hits("code/sql-interpolation", r#"let q = format!("SELECT * FROM users WHERE id = {}", id);"#);
    hits("code/sql-interpolation", r#"q := fmt.Sprintf("SELECT * FROM users WHERE id = %d", id)"#);
    quiet(r#"print(f"Selected {n} files from the archive")"#);
    quiet("const msg = `Hello ${name}, select a plan`;");
    quiet(r#"conn.execute("SELECT * FROM users WHERE id = $1", &[&id])"#);
}

#[test]
fn eval_and_exec_of_non_literals() {
    hits("code/eval", "result = eval(user_input)");
    hits("code/eval", "exec(open(path).read())");
    hits("code/eval", r#"eval("1 + " + x)"#);
    quiet(r#"x = eval("2 + 2"); m = re.exec(text); model.eval(); evaluate(x); exec()"#);
    quiet("the evaluation (eval) step runs after training");
}

#[test]
fn html_sinks() {
    hits("code/html-sink", "el.innerHTML = userComment;");
    hits("code/html-sink", r#"div.innerHTML += "<li>" + item + "</li>";"#);
    hits("code/html-sink", "node.outerHTML = html");
    hits("code/html-sink", "document.write(location.hash)");
    hits("code/html-sink", "<div dangerouslySetInnerHTML={{ __html: comment }} />");
    hits("code/html-sink", r#"el.insertAdjacentHTML("beforeend", row)"#);
    hits("code/html-sink", r#"<p v-html="message"></p>"#);
    quiet(r#"el.innerHTML = ""; el.innerHTML = "<b>Loading</b>"; if (a.innerHTML === b) {}"#);
    quiet("el.innerHTML = DOMPurify.sanitize(html); el.textContent = userComment;");
    quiet(r#"document.write("<p>static</p>")"#);
}

#[test]
fn curl_piped_to_a_shell() {
    hits("code/curl-pipe-shell", "curl -fsSL https://get.example.com | sh");
    hits("code/curl-pipe-shell", "wget -qO- https://x.io/install | sudo -E bash -s -- --yes");
    hits("code/curl-pipe-shell", "curl -s https://x.io/i.sh | tee log | bash");
    hits("code/curl-pipe-shell", "bash <(curl -s https://x.io/i.sh)");
    hits("code/curl-pipe-shell", r#"sh -c "$(curl -fsSL https://x.io/i.sh)""#);
    hits("code/curl-pipe-shell", "iwr https://x.io/i.ps1 | iex");
    quiet("curl -fsSL https://x.io/i.sh -o i.sh && sha256sum i.sh && sh i.sh");
    quiet("curl -s https://x.io/data.json | jq .name; curl x | shasum; curl x || sh fallback.sh");
}

#[test]
fn shell_built_from_input() {
    hits("code/shell-injection", r#"os.system("rm -rf " + path)"#);
    hits("code/shell-injection", r#"os.system(f"convert {src} out.png")"#);
    hits("code/shell-injection", "subprocess.run(cmd, shell=True)");
    hits("code/shell-injection", r#"subprocess.check_output(f"ls {d}", shell=True)"#);
    hits("code/shell-injection", r#"sh -c "$1""#);
    hits("code/shell-injection", r#"bash -c "tar xf $1 -C /tmp""#);
    hits("code/shell-injection", "child_process.exec(`git log ${branch}`)");
    hits("code/shell-injection", r#"execSync("ls " + dir)"#);
    quiet("os.system(\"clear\")\nsubprocess.run([\"ls\", path])\nsubprocess.run(\"make test\", shell=True)");
    quiet(r#"os.system("rm -- " + shlex.quote(path))"#);
    quiet(r#"sh -c "echo hello""#);
}

#[test]
fn benign_texts_find_nothing() {
    quiet("The quarterly report shows revenue grew 12% while costs fell.");
    quiet("To install, run `pip install pitboss` and then select the tasks from the list.");
    quiet("def add(a, b):\n    return a + b\n\nprint(add(2, 3))");
    quiet("SELECT id, name FROM users WHERE active = true ORDER BY name;");
    quiet("Use a password manager; never commit secrets. Set token via the environment.");
    assert!(scan(&json!({"n": 3, "ok": true, "list": [1, 2, null]}), &[]).is_empty());
}

#[test]
fn findings_name_rule_location_and_a_masked_excerpt() {
    let result = json!({"files": [{"content": "line one\nkey = \"AKIAIOSFODNN7EXAMPLE\"\ncurl https://x | sh"}]});
    let found = scan(&result, &[]);
    assert_eq!(
        found.iter().map(|f| (f.rule.as_str(), f.location.as_str())).collect::<Vec<_>>(),
        [("secret/aws-access-key", "/files/0/content:2:8"), ("code/curl-pipe-shell", "/files/0/content:3:1")]
    );
    assert_eq!(found[0].excerpt, r#"key = "AKIA…[20 chars]""#);
    assert_eq!(found[1].excerpt, "curl https://x | sh");
}

#[test]
fn the_number_of_findings_is_bounded() {
    let text = "AKIAIOSFODNN7EXAMPLE ".repeat(500);
    assert_eq!(scan(&json!([text]), &[]).len(), MAX_FINDINGS);
}
