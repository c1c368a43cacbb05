//! A microphone that can be pulled out: a private PulseAudio server with a null sink, whose
//! monitor source is captured through ALSA's `pulse` plugin as the PCM `v2mpulse`. Killing the
//! server is a sound device going away without a word (the stream just stops delivering, as
//! with a sound server that crashed or some USB microphones); starting it again brings the
//! device back.
//!
//! The server is the user's own kind of thing, not a stand-in: a real pulseaudio process, the
//! real ALSA plugin, the real cpal path. It is private: its own socket, runtime and config
//! directories under the test's scratch directory, no autospawn, no D-Bus, no realtime.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The cpal device id of the PulseAudio microphone.
pub const DEVICE: &str = "alsa:v2mpulse";

/// Where Debian and Ubuntu put ALSA's pulse plugin.
const PLUGIN_DIRS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/alsa-lib",
    "/usr/lib/aarch64-linux-gnu/alsa-lib",
    "/usr/lib/alsa-lib",
];

/// A running (or killed, to be restarted) private PulseAudio server.
pub struct PulseMic {
    dir: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
}

impl PulseMic {
    /// Fails the calling test, saying what to install, unless pulseaudio and ALSA's pulse
    /// plugin are present.
    pub fn require() {
        let server = Command::new("pulseaudio")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            server,
            "pulseaudio is missing: run scripts/setup.sh (package pulseaudio; on a PipeWire \
             desktop, where it conflicts with pipewire-pulse, run this test in a container)"
        );
        let plugin = PLUGIN_DIRS
            .iter()
            .any(|d| Path::new(d).join("libasound_module_pcm_pulse.so").exists());
        assert!(
            plugin,
            "ALSA's pulse plugin is missing: run scripts/setup.sh (package libasound2-plugins)"
        );
    }

    /// Starts a server under `dir` and adds the `v2mpulse` PCM to the ALSA configuration in
    /// `xdg_config_home` (appended, so a FIFO microphone there stays).
    pub fn start(dir: &Path, xdg_config_home: &Path) -> PulseMic {
        Self::require();
        let dir = dir.join("pulse");
        std::fs::create_dir_all(dir.join("run")).expect("create the pulse directories");
        let socket = dir.join("native.sock");
        std::fs::write(
            dir.join("server.pa"),
            format!(
                "load-module module-native-protocol-unix auth-anonymous=1 socket={}\n\
                 load-module module-null-sink sink_name=v2mnull rate=48000 channels=2\n",
                socket.display()
            ),
        )
        .expect("write the server script");
        let asoundrc = xdg_config_home.join("alsa/asoundrc");
        std::fs::create_dir_all(asoundrc.parent().unwrap()).expect("create the ALSA config dir");
        let mut conf = std::fs::read_to_string(&asoundrc).unwrap_or_default();
        conf.push_str(&format!(
            "pcm.v2mpulse {{\n type pulse\n server \"unix:{}\"\n device \"v2mnull.monitor\"\n}}\n",
            socket.display()
        ));
        std::fs::write(&asoundrc, conf).expect("write asoundrc");
        let mut mic = PulseMic {
            dir,
            socket,
            child: None,
        };
        mic.restart();
        mic
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
        let log = std::fs::File::create(self.dir.join("pulseaudio.log")).expect("create the log");
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--realtime=no",
                "--high-priority=no",
                "--disallow-exit=yes",
            ])
            .arg("-F")
            .arg(self.dir.join("server.pa"))
            .env("HOME", &self.dir)
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("PULSE_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pulseaudio");
        self.child = Some(child);
        let since = Instant::now();
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "pulseaudio exited at start ({status}): {}",
                    std::fs::read_to_string(self.dir.join("pulseaudio.log")).unwrap_or_default()
                );
            }
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "pulseaudio did not open {} in 20 s",
                self.socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PulseMic {
    fn drop(&mut self) {
        self.kill();
    }
}
