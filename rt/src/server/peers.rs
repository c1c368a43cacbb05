//! The connections that said hello: what each is, whether it subscribed, and sending to them.
//! A connection that cannot take a message (not reading, or gone) is reported, not removed:
//! the core drops it and everything that depended on it.

use super::connection::{Conn, SendFailure, encode};
use super::input::ConnId;
use std::collections::HashMap;
use std::sync::Arc;
use v2m_shm_proto::protocol::{DaemonMessage, Event};

/// What a peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerKind {
    /// A control client; `subscribed` ones get events, `metrics` ones the histograms too.
    Client {
        /// Receives events.
        subscribed: bool,
        /// Receives [`Event::ReadLag`].
        metrics: bool,
    },
    /// A worker, by name.
    Worker {
        /// Its name.
        name: String,
    },
}

/// The peers.
#[derive(Default)]
pub struct Peers {
    map: HashMap<ConnId, (Conn, PeerKind)>,
}

impl Peers {
    /// Adds a peer.
    pub fn add(&mut self, conn: Conn, kind: PeerKind) {
        self.map.insert(conn.id, (conn, kind));
    }

    /// Removes a peer; its connection handle, if it was known.
    pub fn remove(&mut self, id: ConnId) -> Option<(Conn, PeerKind)> {
        self.map.remove(&id)
    }

    /// Whether `id` is a live peer (requests from one that was dropped are not run).
    pub fn contains(&self, id: ConnId) -> bool {
        self.map.contains_key(&id)
    }

    /// What `id` is.
    pub fn kind(&self, id: ConnId) -> Option<&PeerKind> {
        self.map.get(&id).map(|(_, k)| k)
    }

    /// Subscribes client `id` to events (and histograms with `metrics`); `false` for a worker
    /// or an unknown peer.
    pub fn subscribe(&mut self, id: ConnId, with_metrics: bool) -> bool {
        match self.map.get_mut(&id) {
            Some((
                _,
                PeerKind::Client {
                    subscribed,
                    metrics,
                },
            )) => {
                *subscribed = true;
                *metrics = with_metrics;
                true
            }
            _ => false,
        }
    }

    /// Whether `id` is a client subscribed to events.
    pub fn is_subscribed(&self, id: ConnId) -> bool {
        matches!(
            self.map.get(&id),
            Some((
                _,
                PeerKind::Client {
                    subscribed: true,
                    ..
                }
            ))
        )
    }

    /// Queues `msg` for `id`. An unknown peer is no failure (it left already).
    pub fn send(&self, id: ConnId, msg: &DaemonMessage) -> Result<(), SendFailure> {
        match self.map.get(&id) {
            Some((conn, _)) => conn.send(msg),
            None => Ok(()),
        }
    }

    /// Queues `event` for every subscriber (for [`Event::ReadLag`], those that asked for
    /// metrics), encoded once. Returns the peers that could not take it.
    pub fn broadcast(&self, event: Event) -> Vec<(ConnId, SendFailure)> {
        let metrics_only = matches!(event, Event::ReadLag { .. });
        let wants = |k: &PeerKind| match k {
            PeerKind::Client {
                subscribed,
                metrics,
            } => *subscribed && (*metrics || !metrics_only),
            PeerKind::Worker { .. } => false,
        };
        if !self.map.values().any(|(_, k)| wants(k)) {
            return Vec::new();
        }
        let bytes = match encode(&DaemonMessage::Event(event)) {
            Ok(b) => Arc::new(b),
            Err(e) => {
                log::error!("cannot encode an event: {e}");
                return Vec::new();
            }
        };
        self.map
            .iter()
            .filter(|(_, (_, k))| wants(k))
            .filter_map(|(id, (conn, _))| conn.send_shared(&bytes).err().map(|f| (*id, f)))
            .collect()
    }

    /// Every peer's connection (for the last words at shutdown).
    pub fn drain(&mut self) -> Vec<Conn> {
        self.map.drain().map(|(_, (c, _))| c).collect()
    }

    /// How many peers.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
