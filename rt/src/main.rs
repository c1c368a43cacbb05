//! v2m-rt: the realtime capture daemon. Not built yet: capture, DSP and the control server
//! arrive with the issue "v2m-rt: the realtime capture daemon and control server".

fn main() {
    eprintln!(
        "v2m-rt {}: the capture daemon is not built yet; nothing to run.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
