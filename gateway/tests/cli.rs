//! The `portcullis` binary: `check` reports bad configs by file, line and key; `--help` helps.

use std::process::Command;

fn portcullis(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_names_file_line_and_key_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let cases: &[(&str, &str)] = &[
        (
            "[[listener]]\naddr = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"http://127.0.0.1:1\"\napp_id = \"sharepoint\"\n",
            "gw.toml:5:10: `route[0].app_id`: not a GUID",
        ),
        (
            "[[listener]]\naddr = \"localhost\"\n[[route]]\nupstream = \"http://127.0.0.1:1\"\napp_id = \"00000003-0000-0ff1-ce00-000000000000\"\n",
            "gw.toml:2:8: `listener[0].addr`",
        ),
        ("[[listener]]\nadr = \"x\"\n", "gw.toml:2:1: unknown field `adr`"),
        (
            "[[listener]]\naddr = \"127.0.0.1:8080\"\ntls = { cert = \"missing.pem\", key = \"missing-key.pem\" }\n[[route]]\nupstream = \"http://127.0.0.1:1\"\napp_id = \"00000003-0000-0ff1-ce00-000000000000\"\n",
            "missing.pem",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&path, text).unwrap();
        let (code, out) = portcullis(&["check", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains(want), "wanted {want:?} in:\n{out}");
    }
    let (code, out) = portcullis(&["check", "--config", "/nonexistent/gw.toml"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("/nonexistent/gw.toml: cannot read the config file"),
        "{out}"
    );
}

#[test]
fn serve_refuses_a_bad_config_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, "[[listener]]\naddr = \"127.0.0.1:0\"\n").unwrap();
    let (code, out) = portcullis(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no [[route]]"), "{out}");
}

#[test]
fn help_lists_every_command() {
    let (code, out) = portcullis(&["--help"]);
    assert_eq!(code, 0);
    for cmd in ["serve", "check", "demo", "standin"] {
        assert!(out.contains(cmd), "{cmd} missing from --help:\n{out}");
    }
}
