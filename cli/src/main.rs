//! v2m-cli: the control client. Not built yet: it arrives with the issue "v2m-cli, the whole
//! pipeline end to end".

fn main() {
    eprintln!(
        "v2m-cli {}: the control client is not built yet; nothing to run.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
