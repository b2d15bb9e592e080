//! The `portcullis` binary: `check` reports bad configs by file, line and key; `--help` helps.

mod common;

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
    for cmd in ["serve", "check", "demo", "standin", "whatif", "token"] {
        assert!(out.contains(cmd), "{cmd} missing from --help:\n{out}");
    }
}

/// The demo config as `portcullis demo` writes it, with the data beside it, in `dir`.
fn demo_config(dir: &std::path::Path) -> std::path::PathBuf {
    common::write_demo(
        dir,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        "127.0.0.1:0",
        "t0k3n-for-the-test",
        "",
    )
}

#[test]
fn check_lints_the_policy_set_and_says_secure_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path());
    let (code, out) = portcullis(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("12 device(s)"), "{out}");
    assert!(out.contains("6 conditional-access policies"), "{out}");
    assert!(out.contains("secureByDefault is true"), "{out}");
    assert!(
        out.contains("report-only: evaluated and logged, never enforced"),
        "{out}"
    );

    // A policy excluding a group nobody knows, and an app no enabled policy protects.
    let ca = std::fs::read_to_string(dir.path().join("conditional-access.json"))
        .unwrap()
        .replace(
            "bbbbbbbb-0000-0000-0000-000000000006",
            "bbbbbbbb-0000-0000-0000-0000000000ee",
        );
    std::fs::write(dir.path().join("conditional-access.json"), ca).unwrap();
    let text = std::fs::read_to_string(&config).unwrap()
        + "\n[[route]]\nname = \"wiki\"\nhost = \"wiki.localhost\"\nupstream = \"http://127.0.0.1:9\"\napp_id = \"12345678-0000-4000-8000-000000000001\"\n";
    std::fs::write(&config, text).unwrap();
    let (code, out) = portcullis(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("excludes unknown group bbbbbbbb-0000-0000-0000-0000000000ee"),
        "{out}"
    );
    assert!(
        out.contains(
            "app 12345678-0000-4000-8000-000000000001 is not covered by any enabled policy"
        ),
        "{out}"
    );
}

#[test]
fn whatif_explains_per_policy_with_the_gateways_engine() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path());
    let config = config.to_str().unwrap();
    let (code, out) = portcullis(&[
        "whatif",
        "--config",
        config,
        "--user",
        "aaaaaaaa-0000-0000-0000-000000000002",
        "--group",
        "bbbbbbbb-0000-0000-0000-000000000001",
        "--device",
        "11111111-0000-0000-0000-000000000002",
        "--app",
        "sharepoint.localhost",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("DENY (risk_above_threshold)"), "{out}");
    assert!(out.contains("\"Block legacy clients\""), "{out}");
    assert!(
        out.contains("not applied: client app type browser"),
        "{out}"
    );

    let (code, out) = portcullis(&[
        "whatif",
        "--config",
        config,
        "--json",
        "--user",
        "aaaaaaaa-0000-0000-0000-000000000001",
        "--group",
        "bbbbbbbb-0000-0000-0000-000000000001",
        "--device",
        "11111111-0000-0000-0000-000000000001",
        "--app",
        "00000002-0000-0ff1-ce00-000000000000",
        "--mfa",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "allow", "{out}");
    assert_eq!(v["route"], "exchange");

    let (code, out) = portcullis(&[
        "whatif",
        "--config",
        config,
        "--user",
        "aaaaaaaa-0000-0000-0000-000000000001",
        "--app",
        "nowhere.example",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("neither an app id"), "{out}");
}
