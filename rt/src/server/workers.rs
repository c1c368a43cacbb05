//! The workers v2m-rt knows: connected ones, supervised ones not (yet) connected, which one's
//! finals answer `stop`, and when each was last heard from. Pure state: no socket, no process.

use super::input::ConnId;
use std::time::Instant;
use v2m_shm_proto::protocol::{ErrorKind, ErrorReply, WorkerHealth, WorkerIdentity, WorkerStatus};

/// One worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    /// Name and model.
    pub identity: WorkerIdentity,
    /// Its connection, while connected.
    pub conn: Option<ConnId>,
    /// Its last health report.
    pub health: Option<WorkerHealth>,
    /// When it last sent anything.
    pub heard: Option<Instant>,
    /// Its pass in progress, ms, as of its last heartbeat.
    pub pass_ms: Option<u32>,
    /// Connection order: among equals, the earliest connected owns finals.
    order: u64,
}

/// Every worker, and the rule for who owns finals.
#[derive(Debug, Default)]
pub struct Workers {
    list: Vec<Worker>,
    next_order: u64,
    /// Whose finals answer `stop` (`[rt] final_worker`), else the first supervised worker.
    wanted: Option<String>,
    /// Names of the supervised workers: kept when they disconnect, they come back.
    supervised: Vec<String>,
    /// When an unsupervised worker last left: one may come back for a while (a worker
    /// restarted by hand or by systemd), so audio waits for it.
    departed: Option<Instant>,
}

/// How long after an unsupervised worker left a new one is still expected.
pub const COMEBACK: std::time::Duration = std::time::Duration::from_secs(60);

impl Workers {
    /// Workers whose finals come from `final_worker` (else the first of `supervised`, else the
    /// first to connect).
    pub fn new(final_worker: Option<String>, supervised: Vec<String>) -> Workers {
        Workers {
            wanted: final_worker.or_else(|| supervised.first().cloned()),
            supervised,
            ..Workers::default()
        }
    }

    /// A worker said hello on `conn`. Refused when a worker of that name is connected.
    pub fn hello(
        &mut self,
        identity: WorkerIdentity,
        conn: ConnId,
        now: Instant,
    ) -> Result<(), ErrorReply> {
        if self
            .list
            .iter()
            .any(|w| w.identity.name == identity.name && w.conn.is_some())
        {
            return Err(ErrorReply::new(
                ErrorKind::InvalidState,
                format!("a worker named {:?} is already connected", identity.name),
            ));
        }
        let order = self.next_order;
        self.next_order += 1;
        let fresh = Worker {
            identity,
            conn: Some(conn),
            health: None,
            heard: Some(now),
            pass_ms: None,
            order,
        };
        match self
            .list
            .iter_mut()
            .find(|w| w.identity.name == fresh.identity.name)
        {
            Some(w) => *w = fresh,
            None => self.list.push(fresh),
        }
        Ok(())
    }

    /// The worker on `conn` left; returns its name. A worker v2m-rt does not supervise is
    /// forgotten (it may never come back); a supervised one stays, disconnected.
    pub fn gone(&mut self, conn: ConnId) -> Option<String> {
        let i = self.list.iter().position(|w| w.conn == Some(conn))?;
        let name = self.list[i].identity.name.clone();
        self.departed = Some(Instant::now());
        if self.supervised.contains(&name) {
            let w = &mut self.list[i];
            w.conn = None;
            w.pass_ms = None;
        } else {
            self.list.remove(i);
        }
        Some(name)
    }

    /// The name of the worker on `conn`.
    pub fn name_of(&self, conn: ConnId) -> Option<&str> {
        self.list
            .iter()
            .find(|w| w.conn == Some(conn))
            .map(|w| w.identity.name.as_str())
    }

    fn on_mut(&mut self, conn: ConnId) -> Option<&mut Worker> {
        self.list.iter_mut().find(|w| w.conn == Some(conn))
    }

    /// The worker on `conn` sent something at `now`.
    pub fn heard(&mut self, conn: ConnId, now: Instant) {
        if let Some(w) = self.on_mut(conn) {
            w.heard = Some(now);
        }
    }

    /// Its health report.
    pub fn set_health(&mut self, conn: ConnId, health: WorkerHealth) {
        if let Some(w) = self.on_mut(conn) {
            w.health = Some(health);
        }
    }

    /// Its heartbeat: the pass in progress (ms), if any.
    pub fn heartbeat(&mut self, conn: ConnId, pass_ms: Option<u32>) {
        if let Some(w) = self.on_mut(conn) {
            w.pass_ms = pass_ms;
        }
    }

    /// The connected worker whose finals answer `stop`: the wanted one if connected; with none
    /// wanted, the earliest connected.
    pub fn owner(&self) -> Option<&str> {
        let connected = self.list.iter().filter(|w| w.conn.is_some());
        match &self.wanted {
            Some(name) => connected
                .filter(|w| &w.identity.name == name)
                .map(|w| w.identity.name.as_str())
                .next(),
            None => connected
                .min_by_key(|w| w.order)
                .map(|w| w.identity.name.as_str()),
        }
    }

    /// Connected workers: (name, connection, whether it owns finals).
    pub fn connected(&self) -> Vec<(String, ConnId, bool)> {
        let owner = self.owner();
        self.list
            .iter()
            .filter_map(|w| {
                let c = w.conn?;
                Some((
                    w.identity.name.clone(),
                    c,
                    owner == Some(w.identity.name.as_str()),
                ))
            })
            .collect()
    }

    /// The owner's connection.
    pub fn owner_conn(&self) -> Option<ConnId> {
        let owner = self.owner()?;
        self.list
            .iter()
            .find(|w| w.identity.name == owner)
            .and_then(|w| w.conn)
    }

    /// Whether a worker is connected, or may come back (one is supervised, or one left less
    /// than [`COMEBACK`] ago): audio waits in the ring for it.
    pub fn any_possible(&self) -> bool {
        self.list.iter().any(|w| w.conn.is_some())
            || !self.supervised.is_empty()
            || self.departed.is_some_and(|t| t.elapsed() < COMEBACK)
    }

    /// How the owner is doing, for a timeout message.
    pub fn describe_owner(&self, now: Instant) -> String {
        let Some(owner) = self.owner() else {
            return match &self.wanted {
                Some(name) => format!("worker {name} is not connected"),
                None => "no worker connected".into(),
            };
        };
        let w = self.list.iter().find(|w| w.identity.name == owner);
        match w.and_then(|w| w.heard) {
            Some(t) => format!(
                "worker {owner}, last heard {:.1} s ago",
                now.saturating_duration_since(t).as_secs_f32()
            ),
            None => format!("worker {owner}"),
        }
    }

    /// Status of every worker, connected or supervised (`restarts` of a name from the
    /// supervisor).
    pub fn statuses(&self, now: Instant, restarts: impl Fn(&str) -> u32) -> Vec<WorkerStatus> {
        let owner = self.owner();
        let mut out: Vec<WorkerStatus> = self
            .list
            .iter()
            .map(|w| WorkerStatus {
                identity: w.identity.clone(),
                connected: w.conn.is_some(),
                owns_finals: owner == Some(w.identity.name.as_str()),
                health: w.health.clone(),
                restarts: restarts(&w.identity.name),
                heard_ms_ago: w
                    .conn
                    .and(w.heard)
                    .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                pass_ms: w.conn.and(w.pass_ms),
            })
            .collect();
        for name in &self.supervised {
            if !self.list.iter().any(|w| &w.identity.name == name) {
                out.push(WorkerStatus {
                    identity: WorkerIdentity {
                        name: name.clone(),
                        model: "(not connected yet)".into(),
                    },
                    connected: false,
                    owns_finals: false,
                    health: None,
                    restarts: restarts(name),
                    heard_ms_ago: None,
                    pass_ms: None,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(name: &str) -> WorkerIdentity {
        WorkerIdentity {
            name: name.into(),
            model: "tiny.en/int8".into(),
        }
    }

    #[test]
    fn the_earliest_connected_owns_finals_unless_one_is_wanted() {
        let now = Instant::now();
        let mut w = Workers::new(None, vec![]);
        assert_eq!(w.owner(), None);
        assert!(!w.any_possible());
        w.hello(id("a"), ConnId(1), now).unwrap();
        w.hello(id("b"), ConnId(2), now).unwrap();
        assert_eq!(w.owner(), Some("a"));
        assert_eq!(w.gone(ConnId(1)).as_deref(), Some("a"));
        assert_eq!(w.owner(), Some("b"));
        w.gone(ConnId(2));
        assert!(w.any_possible(), "one that just left may come back");
        // Wanted by configuration: only that one, and only while connected.
        let mut w = Workers::new(Some("b".into()), vec![]);
        w.hello(id("a"), ConnId(1), now).unwrap();
        assert_eq!(w.owner(), None);
        w.hello(id("b"), ConnId(2), now).unwrap();
        assert_eq!(w.owner(), Some("b"));
        assert_eq!(w.owner_conn(), Some(ConnId(2)));
        assert_eq!(w.connected().iter().filter(|c| c.2).count(), 1);
    }

    #[test]
    fn a_name_in_use_is_refused_and_departed_strangers_are_forgotten() {
        let now = Instant::now();
        let mut w = Workers::new(None, vec!["sup".into()]);
        w.hello(id("x"), ConnId(1), now).unwrap();
        assert_eq!(
            w.hello(id("x"), ConnId(2), now).unwrap_err().kind,
            ErrorKind::InvalidState
        );
        w.gone(ConnId(1));
        assert!(
            w.statuses(now, |_| 0)
                .iter()
                .all(|s| s.identity.name != "x"),
            "an unsupervised worker that left is not listed for ever"
        );
        // A supervised one stays listed, disconnected, and may reconnect under its name.
        w.hello(id("sup"), ConnId(3), now).unwrap();
        w.gone(ConnId(3));
        let st = w.statuses(now, |_| 2);
        assert_eq!(st.len(), 1);
        assert!(!st[0].connected && st[0].restarts == 2);
        assert!(w.any_possible(), "it comes back");
        w.hello(id("sup"), ConnId(4), now).unwrap();
        assert_eq!(w.name_of(ConnId(4)), Some("sup"));
    }

    #[test]
    fn status_shows_how_long_since_a_worker_was_heard() {
        let t0 = Instant::now();
        let mut w = Workers::new(None, vec![]);
        w.hello(id("a"), ConnId(1), t0).unwrap();
        w.heartbeat(ConnId(1), Some(800));
        let later = t0 + Duration::from_secs(40);
        let st = &w.statuses(later, |_| 0)[0];
        assert_eq!(st.heard_ms_ago, Some(40_000));
        assert_eq!(st.pass_ms, Some(800));
        assert!(w.describe_owner(later).contains("last heard 40.0 s ago"));
        w.heard(ConnId(1), later);
        assert_eq!(w.statuses(later, |_| 0)[0].heard_ms_ago, Some(0));
        assert_eq!(
            Workers::new(Some("z".into()), vec![]).describe_owner(t0),
            "worker z is not connected"
        );
    }
}
