//! `v2m-cli refine` and the `[refine]` backends: the rules on any text, a real llama.cpp
//! server running SmolLM2-135M-Instruct (scripts/setup-llm.sh), and every way a server can
//! fail, each of which leaves the raw text, exit code 8 and the reason. Gemini's request
//! shape is checked against a local server that records it.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::OutputExt;
use support::http::{Answer, ScriptedServer};
use support::llm::LlamaServer;
use v2m_tests::watchdog::Watchdog;

fn scratch(name: &str) -> PathBuf {
    v2m_tests::fixtures::scratch(&format!("refine-{name}"))
}

fn config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// v2m-cli --config CONFIG ARGS, with `stdin` fed, the display variables removed.
fn cli(config: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_v2m-cli"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("GEMINI_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    // Every refine here ends by itself well within this (the slowest is llama.cpp's answer).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "v2m-cli did not end within 120 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(out.stdout_str().trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {:?} / {:?}",
            out.stdout_str(),
            out.stderr_str()
        )
    })
}

#[test]
fn refine_applies_the_rules_to_any_text_without_a_daemon() {
    let dir = scratch("rules");
    let cfg = config(
        &dir,
        "[text]\nreplacements = { \"jason\" = \"JSON\" }\n[refine]\nurl = \"http://127.0.0.1:9/v1\"\n",
    );
    // From standard input, no daemon anywhere (the socket variable points nowhere).
    let out = cli(
        &cfg,
        &["--socket", "/nonexistent/control.sock", "refine"],
        Some("Um, parse the jason file comma then reply period\n"),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_str());
    assert_eq!(out.stdout_str().trim(), "Parse the JSON file, then reply.");
    // As an argument, JSON out; no model asked for: no refine fields but `refined: false`.
    let out = cli(
        &cfg,
        &["--json", "refine", "so uh new paragraph done"],
        None,
        &[],
    );
    let v = json(&out);
    assert_eq!(v["text"], "so\n\nDone");
    assert_eq!(v["refined"], false);
    assert!(v.get("reason").is_none(), "{v}");
    // An empty language is refused like any refine failure: raw text, exit 8.
    let out = cli(
        &cfg,
        &["--json", "refine", "--translate-to", " ", "text"],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(8));
    assert!(
        json(&out)["reason"]
            .as_str()
            .unwrap()
            .contains("needs a language")
    );
    // Rules off: the text as it was.
    let off = config(&dir, "[text]\nrules = false\n");
    let out = cli(&off, &["refine", "um hello comma"], None, &[]);
    assert_eq!(out.stdout_str().trim(), "um hello comma");
    // A bad rule is named, and nothing is printed as if refined.
    let bad = config(&dir, "[text]\nregex_replacements = { \"(x\" = \"y\" }\n");
    let out = cli(&bad, &["refine", "text"], None, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr_str().contains("regex_replacements"),
        "{}",
        out.stderr_str()
    );
    assert!(out.stdout_str().is_empty());
    let unknown = config(&dir, "[refine]\nmodle = \"x\"\n");
    let out = cli(&unknown, &["refine", "text"], None, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr_str().contains("modle"), "{}", out.stderr_str());
}

#[test]
fn a_real_llama_cpp_server_refines_and_translates() {
    let _wd = Watchdog::arm(Duration::from_secs(600), "llama.cpp refine");
    let dir = scratch("llama");
    let server = LlamaServer::start(&dir);
    let cfg = config(
        &dir,
        &format!(
            "[refine]\nurl = \"{}\"\nmodel = \"smollm2\"\ntimeout_ms = 60000\n",
            server.url
        ),
    );
    let text = "hello comma how are you question mark i am fine";
    let ruled = "hello, how are you? I am fine";
    // Through a recording proxy: what the CLI prints is what the model answered.
    let origin = server.url.trim_end_matches("/v1").to_string();
    let proxy = ScriptedServer::start(Answer::Forward(origin));
    let via_proxy = config(
        &dir,
        &format!(
            "[refine]\nurl = \"{}/v1\"\nmodel = \"smollm2\"\ntimeout_ms = 60000\n",
            proxy.url
        ),
    );
    let out = cli(&via_proxy, &["--json", "refine", "--llm", text], None, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_str());
    let v = json(&out);
    let requests = proxy.requests();
    let sent: serde_json::Value = serde_json::from_str(&requests[0].body).unwrap();
    assert_eq!(sent["messages"][1]["content"], ruled, "the rules ran first");
    assert_eq!(
        sent["messages"][0]["content"],
        v2m_cli::refine::DEFAULT_PROMPT
    );
    let answered: serde_json::Value = serde_json::from_str(&requests[0].response).unwrap();
    let answer = answered["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .trim()
        .to_string();
    assert!(!answer.is_empty());
    assert_eq!(v["refined"], true, "{v}");
    assert_eq!(
        v["text"],
        answer.as_str(),
        "the model's text, as it answered"
    );
    assert_eq!(v["raw_text"].as_str().unwrap_or(ruled), ruled);
    // The round trip without the proxy, for README's figure.
    let out = cli(&cfg, &["--json", "refine", "--llm", text], None, &[]);
    let v = json(&out);
    assert_eq!(v["refined"], true, "{v}");
    eprintln!(
        "llama.cpp SmolLM2-135M round trip: {} ms for {ruled:?} -> {:?}",
        v["refine_ms"], v["text"]
    );
    // default = true refines without --llm; --no-llm does not.
    let on = config(
        &dir,
        &format!(
            "[refine]\ndefault = true\nurl = \"{}\"\nmodel = \"smollm2\"\ntimeout_ms = 60000\n",
            server.url
        ),
    );
    let v = json(&cli(&on, &["--json", "refine", text], None, &[]));
    assert_eq!(v["refined"], true, "{v}");
    let v = json(&cli(
        &on,
        &["--json", "refine", "--no-llm", text],
        None,
        &[],
    ));
    assert_eq!(v["text"], ruled);
    assert_eq!(v["refined"], false);
    // Translation through the same model: its answer, whatever a 135M model makes of it.
    let out = cli(
        &cfg,
        &[
            "--json",
            "refine",
            "--translate-to",
            "French",
            "Good morning, my friend.",
        ],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_str());
    let v = json(&out);
    assert_eq!(v["refined"], true);
    let requests = std::fs::read_to_string(&server.log).unwrap_or_default();
    eprintln!(
        "translation: {} ({} bytes of server log)",
        v["text"],
        requests.len()
    );
    assert_ne!(v["text"], "Good morning, my friend.");
}

/// `refine --llm` against `url`; returns the JSON output and exit code.
fn refine_against(
    dir: &Path,
    url: &str,
    timeout_ms: u64,
    extra: &str,
) -> (serde_json::Value, i32, String) {
    let cfg = config(
        dir,
        &format!("[refine]\nurl = \"{url}\"\nmodel = \"m\"\ntimeout_ms = {timeout_ms}\n{extra}"),
    );
    let out = cli(&cfg, &["--json", "refine", "--llm", "raw words"], None, &[]);
    (
        json(&out),
        out.status.code().unwrap_or(-1),
        out.stderr_str(),
    )
}

#[test]
fn every_server_failure_leaves_the_raw_text_with_exit_8_and_the_reason() {
    let dir = scratch("failures");
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let (v, code, err) = refine_against(&dir, &url, 3000, "");
    assert_eq!(code, 8);
    assert_eq!(v["text"], "raw words");
    assert_eq!(v["refined"], false);
    assert!(
        v["reason"].as_str().unwrap().contains("connection refused"),
        "{v}"
    );
    assert!(
        err.contains("delivered unrefined: connection refused"),
        "{err}"
    );
    // Slower than the timeout: given up on in time.
    let slow = ScriptedServer::start(Answer::Silence(Duration::from_secs(5)));
    let (v, code, _) = refine_against(&dir, &format!("{}/v1", slow.url), 500, "");
    assert_eq!(code, 8);
    assert_eq!(v["text"], "raw words");
    assert!(
        v["reason"].as_str().unwrap().contains("within 500 ms"),
        "{v}"
    );
    let waited = v["refine_ms"].as_f64().unwrap();
    eprintln!("timeout 500 ms: gave up after {waited} ms");
    assert!(waited < 600.0, "gave up after {waited} ms");
    // HTTP 500, a body that is not JSON, no text in the completion.
    for (answer, reason) in [
        (
            Answer::Reply(500, r#"{"error":{"message":"model crashed"}}"#.into()),
            "HTTP 500: model crashed",
        ),
        (Answer::Reply(200, "<html>proxy</html>".into()), "not JSON"),
        (
            Answer::Reply(200, r#"{"choices":[{"message":{"content":"  "}}]}"#.into()),
            "no text",
        ),
        (
            Answer::Reply(200, r#"{"choices":[]}"#.into()),
            "no choices[0]",
        ),
    ] {
        let s = ScriptedServer::start(answer);
        let (v, code, _) = refine_against(&dir, &format!("{}/v1", s.url), 3000, "");
        assert_eq!(code, 8, "{v}");
        assert_eq!(v["text"], "raw words");
        assert!(v["reason"].as_str().unwrap().contains(reason), "{v}");
        // The request was the OpenAI shape.
        let r = &s.requests()[0];
        assert_eq!(r.path, "/v1/chat/completions");
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["model"], "m");
        assert_eq!(body["messages"][1]["content"], "raw words");
    }
}

#[test]
fn gemini_requests_carry_the_key_in_a_header_and_its_errors_are_reasons() {
    let dir = scratch("gemini");
    let ok = ScriptedServer::start(Answer::Reply(
        200,
        r#"{"candidates":[{"content":{"parts":[{"text":"Raw words."}],"role":"model"}}]}"#.into(),
    ));
    let cfg = config(
        &dir,
        &format!(
            "[refine]\nbackend = \"gemini\"\nurl = \"{}/v1beta\"\nmodel = \"gemini-test\"\n",
            ok.url
        ),
    );
    let key = "test-key-123";
    let out = cli(
        &cfg,
        &["--json", "refine", "--llm", "raw words"],
        None,
        &[("GEMINI_API_KEY", key)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_str());
    let v = json(&out);
    assert_eq!(v["text"], "Raw words.");
    assert_eq!(v["refined"], true);
    let r = &ok.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1beta/models/gemini-test:generateContent");
    assert_eq!(r.header("x-goog-api-key"), Some(key));
    assert!(!r.path.contains(key), "the key is never in the URL");
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["contents"][0]["parts"][0]["text"], "raw words");
    assert_eq!(body["contents"][0]["role"], "user");
    assert!(
        body["systemInstruction"]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .contains("dictated text")
    );
    // Its error body becomes the reason; the key appears nowhere in the output.
    let bad = ScriptedServer::start(Answer::Reply(
        400,
        r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#.into(),
    ));
    let cfg = config(
        &dir,
        &format!(
            "[refine]\nbackend = \"gemini\"\nurl = \"{}/v1beta\"\n",
            bad.url
        ),
    );
    let out = cli(
        &cfg,
        &["--json", "refine", "--llm", "raw words"],
        None,
        &[("GEMINI_API_KEY", key)],
    );
    assert_eq!(out.status.code(), Some(8));
    let v = json(&out);
    assert_eq!(v["text"], "raw words");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 400: API key not valid"),
        "{v}"
    );
    assert!(!out.stdout_str().contains(key) && !out.stderr_str().contains(key));
    // A blocked prompt and no key at all.
    let blocked = ScriptedServer::start(Answer::Reply(
        200,
        r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#.into(),
    ));
    let cfg = config(
        &dir,
        &format!(
            "[refine]\nbackend = \"gemini\"\nurl = \"{}/v1beta\"\n",
            blocked.url
        ),
    );
    let out = cli(
        &cfg,
        &["--json", "refine", "--llm", "raw words"],
        None,
        &[("GEMINI_API_KEY", key)],
    );
    assert!(
        json(&out)["reason"]
            .as_str()
            .unwrap()
            .contains("blocked: SAFETY")
    );
    let out = cli(&cfg, &["--json", "refine", "--llm", "raw words"], None, &[]);
    assert_eq!(out.status.code(), Some(8));
    assert!(
        json(&out)["reason"]
            .as_str()
            .unwrap()
            .contains("GEMINI_API_KEY is not set")
    );
    assert_eq!(blocked.requests().len(), 1, "no request without a key");
}

#[test]
fn refine_takes_the_clipboard_and_puts_the_result_back_under_a_real_x_server() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "refine clipboard");
    let dir = scratch("clipboard");
    let cfg = config(&dir, "[text]\nreplacements = { \"jason\" = \"JSON\" }\n");
    let xvfb = support::XServer::start(190);
    let display = xvfb.display.clone();
    let xclip = |args: &[&str], input: Option<&str>| {
        let mut c = Command::new("xclip")
            .args(["-selection", "clipboard"])
            .args(args)
            .env("DISPLAY", &display)
            .stdin(Stdio::piped())
            .stdout(if input.is_some() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stderr(Stdio::null())
            .spawn()
            .expect("xclip missing: run scripts/setup.sh");
        if let Some(text) = input {
            c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        drop(c.stdin.take());
        c.wait_with_output().unwrap()
    };
    // The X server takes a moment to accept clients: put the text in until it is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        xclip(&[], Some("send the jason comma please"));
        if String::from_utf8_lossy(&xclip(&["-o"], None).stdout) == "send the jason comma please" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Xvfb did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = cli(
        &cfg,
        &["refine", "--clipboard-in", "--clipboard"],
        None,
        &[("DISPLAY", display.as_str()), ("WAYLAND_DISPLAY", "")],
    );
    let back = xclip(&["-o"], None);
    drop(xvfb);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_str());
    assert_eq!(out.stdout_str().trim(), "send the JSON, please");
    assert_eq!(
        String::from_utf8_lossy(&back.stdout),
        "send the JSON, please"
    );
}
