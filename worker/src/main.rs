//! v2m-worker: the Whisper transcription worker. Not built yet: inference and streaming
//! arrive with the issue "v2m-worker: Whisper on ONNX Runtime, streaming, with real weights".

fn main() {
    eprintln!(
        "v2m-worker {}: the transcription worker is not built yet; nothing to run.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
