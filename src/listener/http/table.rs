//! The connection table: every open connection, the class it is in (sent
//! nothing yet, idle between requests, mid-request, being processed,
//! writing, closing), and the bounds kept across all of them.
//!
//! Each class is an intrusive list ordered by when its connections entered
//! it, and each class has one timeout, so the front of a list is always the
//! next to time out and the longest waiting: timeouts and the choice of whom
//! to shed are O(1), whatever the number of connections. Connections in the
//! middle of a request are also in a second list, for the head deadline.
//! Each peer address has a list of its idle connections too, for the
//! per-peer share.
//!
//! The table never touches a socket: it *dooms* a connection (timed out,
//! shed, over the memory budget) and reports it, and the thread that owns
//! the connection closes it, with the answer the reason calls for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A connection's key in the table (also its `mio` token).
pub(crate) type Key = usize;

/// What a connection is doing, as far as the bounds are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Accepted; not a byte received yet.
    Fresh,
    /// Between requests on a keep-alive connection.
    Idle,
    /// A request is arriving (its head, or its body).
    Reading,
    /// A complete request is being processed: never timed out or shed.
    Busy,
    /// An answer is waiting for the client to take it.
    Writing,
    /// Closing after an answer: discarding what the client still sends.
    Closing,
    /// Doomed: the owner is closing it.
    Doomed,
}

/// Why a connection must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Doom {
    /// No request began within the idle timeout.
    IdleTimeout,
    /// A request's head did not arrive within the header timeout (408).
    HeaderTimeout,
    /// A request did not arrive within the request timeout (408).
    RequestTimeout,
    /// The client did not take an answer within the write timeout.
    WriteTimeout,
    /// The time for discarding input before closing is up.
    LingerEnd,
    /// Shed to make room for a new connection.
    Shed,
    /// Holding the most unfinished bytes when the buffered-bytes budget was reached (503).
    OverBudget,
    /// The listener is closing every connection.
    Shutdown,
}

/// Which core a connection lives on, its key, and an id unique for the
/// listener's life (keys are reused; ids are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Home {
    pub core: usize,
    pub key: Key,
    pub id: u64,
}

/// The bounds the table keeps.
#[derive(Debug, Clone)]
pub(crate) struct TableLimits {
    pub max_connections: usize,
    pub max_per_peer: usize,
    pub max_buffered_bytes: usize,
    pub idle_timeout: Duration,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub write_timeout: Duration,
    pub linger_time: Duration,
}

/// The lists a connection can be in, and the link slot each uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListId {
    Fresh = 0,
    Idle = 1,
    Reading = 2,
    Writing = 3,
    Closing = 4,
    Heads = 5,
}

const CLASS_LINK: usize = 0;
const HEADS_LINK: usize = 1;
const PEER_LINK: usize = 2;

#[derive(Debug, Clone, Copy, Default)]
struct Link {
    prev: Option<Key>,
    next: Option<Key>,
    linked: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct List {
    head: Option<Key>,
    tail: Option<Key>,
    len: usize,
}

#[derive(Debug)]
struct Meta {
    core: usize,
    id: u64,
    peer: IpAddr,
    /// A trusted proxy: not held to the per-peer share.
    exempt: bool,
    class: Class,
    /// When it entered its class (for `Reading`: when the request began).
    since: Instant,
    doom: Option<Doom>,
    buffered: usize,
    links: [Link; 3],
}

#[derive(Debug, Default)]
struct Peer {
    count: usize,
    /// Its `Fresh` and `Idle` connections, longest waiting first.
    idle: List,
}

/// The outcome of [`Table::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// In the table under this home.
    Admitted(Home),
    /// Refused: the cap (or the peer's share) is reached and nothing can be shed.
    Refused,
}

/// The table of one listener's connections. Kept behind one mutex.
#[derive(Debug)]
pub(crate) struct Table {
    limits: TableLimits,
    metas: Vec<Option<Meta>>,
    free: Vec<Key>,
    lists: [List; 6],
    peers: HashMap<IpAddr, Peer>,
    open: usize,
    /// Doomed connections not closed yet: they still hold a descriptor.
    doomed: usize,
    buffered: usize,
    next_id: u64,
}

/// The most doomed connections waiting to be closed before new ones are refused.
const MAX_PENDING_DOOMS: usize = 1024;

impl Table {
    pub fn new(limits: TableLimits) -> Self {
        Self {
            limits,
            metas: Vec::new(),
            free: Vec::new(),
            lists: [List::default(); 6],
            peers: HashMap::new(),
            open: 0,
            doomed: 0,
            buffered: 0,
            next_id: 0,
        }
    }

    /// Connections open (doomed ones included, until they are closed).
    pub fn open(&self) -> usize {
        self.open
    }

    /// Request bytes buffered across all connections.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Sheds the connection that has sent the least for the longest, if any
    /// is not being processed (to free a descriptor).
    pub fn shed_one(&mut self, dooms: &mut Vec<(Home, Doom)>) {
        if let Some(victim) = self.global_victim() {
            self.doom(victim, Doom::Shed, dooms);
        }
    }

    /// The connection to shed at the cap: closing, then fresh, then idle,
    /// then writing, then the oldest request still arriving.
    fn global_victim(&self) -> Option<Key> {
        [
            ListId::Closing,
            ListId::Fresh,
            ListId::Idle,
            ListId::Writing,
            ListId::Reading,
        ]
        .iter()
        .find_map(|&list| self.lists[list as usize].head)
    }

    /// Makes room for a new connection from `peer` on `core` and takes it in
    /// as [`Class::Fresh`]. At the peer's share, that peer's longest-idle
    /// connection is shed; at the cap, the connection that has sent the least
    /// for the longest (closing, then fresh, then idle, then writing, then the
    /// oldest request still arriving). Shed connections are added to `dooms`.
    pub fn admit(
        &mut self,
        peer: IpAddr,
        exempt: bool,
        core: usize,
        now: Instant,
        dooms: &mut Vec<(Home, Doom)>,
    ) -> Admission {
        if self.doomed >= MAX_PENDING_DOOMS {
            return Admission::Refused;
        }
        if !exempt {
            let held = self.peers.get(&peer).map_or(0, |p| p.count);
            if held >= self.limits.max_per_peer {
                let victim = self.peers.get(&peer).and_then(|p| p.idle.head);
                match victim {
                    Some(victim) => self.doom(victim, Doom::Shed, dooms),
                    None => return Admission::Refused,
                }
            }
        }
        if self.open - self.doomed >= self.limits.max_connections {
            match self.global_victim() {
                Some(victim) => self.doom(victim, Doom::Shed, dooms),
                None => return Admission::Refused,
            }
        }
        self.next_id += 1;
        let meta = Meta {
            core,
            id: self.next_id,
            peer,
            exempt,
            class: Class::Fresh,
            since: now,
            doom: None,
            buffered: 0,
            links: [Link::default(); 3],
        };
        let key = match self.free.pop() {
            Some(key) => {
                self.metas[key] = Some(meta);
                key
            }
            None => {
                self.metas.push(Some(meta));
                self.metas.len() - 1
            }
        };
        self.open += 1;
        self.peers.entry(peer).or_default().count += 1;
        self.link(key, Class::Fresh);
        Admission::Admitted(Home {
            core,
            key,
            id: self.next_id,
        })
    }

    /// Whether `home` is still the connection in the table under its key.
    fn meta(&self, home: Home) -> Option<&Meta> {
        self.metas
            .get(home.key)
            .and_then(Option::as_ref)
            .filter(|m| m.id == home.id)
    }

    /// Moves a connection to `class` (entering it now), unless it was
    /// doomed: then the reason, and the owner must close it.
    pub fn set_class(&mut self, home: Home, class: Class, now: Instant) -> Result<(), Doom> {
        let Some(meta) = self.meta(home) else {
            return Err(Doom::Shutdown);
        };
        if let Some(doom) = meta.doom {
            return Err(doom);
        }
        if meta.class == class && class != Class::Reading {
            return Ok(());
        }
        self.unlink_all(home.key);
        if let Some(meta) = self.metas[home.key].as_mut() {
            meta.class = class;
            meta.since = now;
        }
        self.link(home.key, class);
        Ok(())
    }

    /// Lets a connection that is closing (doomed or not) linger in
    /// [`Class::Closing`] from `now`, discarding input for the linger time;
    /// `false` when it is no longer in the table.
    pub fn linger(&mut self, home: Home, now: Instant) -> bool {
        let Some(meta) = self.meta(home) else {
            return false;
        };
        let was_doomed = meta.doom.is_some();
        self.unlink_all(home.key);
        if let Some(meta) = self.metas[home.key].as_mut() {
            meta.doom = None;
            meta.class = Class::Closing;
            meta.since = now;
        }
        if was_doomed {
            self.doomed -= 1;
        }
        self.link(home.key, Class::Closing);
        true
    }

    /// The request's head has arrived: only the request deadline applies now.
    pub fn head_done(&mut self, home: Home) {
        if self.meta(home).is_some_and(|m| m.class == Class::Reading) {
            self.unlink_from(home.key, ListId::Heads);
        }
    }

    /// Why a connection was doomed, if it was.
    pub fn doom_of(&self, home: Home) -> Option<Doom> {
        match self.meta(home) {
            Some(meta) => meta.doom,
            None => Some(Doom::Shutdown),
        }
    }

    /// Sets how many request bytes a connection buffers. Past the budget,
    /// the connection holding the most unfinished bytes is doomed: another
    /// one is added to `dooms`; this one gets `Err`, and must close.
    pub fn set_buffered(
        &mut self,
        home: Home,
        bytes: usize,
        dooms: &mut Vec<(Home, Doom)>,
    ) -> Result<(), Doom> {
        let Some(old) = self.meta(home).map(|m| m.buffered) else {
            return Err(Doom::Shutdown);
        };
        self.buffered = self.buffered - old + bytes;
        if let Some(meta) = self.metas[home.key].as_mut() {
            meta.buffered = bytes;
        }
        if bytes <= old || self.buffered <= self.limits.max_buffered_bytes {
            return Ok(());
        }
        // The largest holder among requests still arriving, this one included.
        let mut victim = (home.key, bytes);
        let mut cursor = self.lists[ListId::Reading as usize].head;
        while let Some(key) = cursor {
            let Some(meta) = self.metas[key].as_ref() else {
                break;
            };
            if meta.buffered > victim.1 {
                victim = (key, meta.buffered);
            }
            cursor = meta.links[CLASS_LINK].next;
        }
        if victim.0 == home.key {
            self.doom(home.key, Doom::OverBudget, &mut Vec::new());
            return Err(Doom::OverBudget);
        }
        self.doom(victim.0, Doom::OverBudget, dooms);
        Ok(())
    }

    /// Takes a closed connection out of the table.
    pub fn remove(&mut self, home: Home) {
        if self.meta(home).is_none() {
            return;
        }
        self.unlink_all(home.key);
        let Some(meta) = self.metas[home.key].take() else {
            return;
        };
        self.free.push(home.key);
        self.open -= 1;
        self.buffered -= meta.buffered;
        if meta.doom.is_some() {
            self.doomed -= 1;
        }
        if let Some(peer) = self.peers.get_mut(&meta.peer) {
            peer.count -= 1;
            if peer.count == 0 {
                self.peers.remove(&meta.peer);
            }
        }
    }

    /// Dooms every connection whose time in its class is up; returns when
    /// the next one will be, if any connection can time out.
    pub fn sweep(&mut self, now: Instant, dooms: &mut Vec<(Home, Doom)>) -> Option<Instant> {
        let l = &self.limits;
        let rules = [
            (ListId::Fresh, l.idle_timeout, Doom::IdleTimeout),
            (ListId::Idle, l.idle_timeout, Doom::IdleTimeout),
            (ListId::Heads, l.header_timeout, Doom::HeaderTimeout),
            (ListId::Reading, l.request_timeout, Doom::RequestTimeout),
            (ListId::Writing, l.write_timeout, Doom::WriteTimeout),
            (ListId::Closing, l.linger_time, Doom::LingerEnd),
        ];
        let mut next: Option<Instant> = None;
        for (list, timeout, reason) in rules {
            while let Some(front) = self.lists[list as usize].head {
                let Some(since) = self.metas[front].as_ref().map(|m| m.since) else {
                    break;
                };
                let due = since.checked_add(timeout).unwrap_or(since);
                if due <= now {
                    self.doom(front, reason, dooms);
                } else {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    break;
                }
            }
        }
        next
    }

    fn doom(&mut self, key: Key, reason: Doom, dooms: &mut Vec<(Home, Doom)>) {
        let Some(meta) = self.metas.get(key).and_then(Option::as_ref) else {
            return;
        };
        if meta.doom.is_some() {
            return;
        }
        let home = Home {
            core: meta.core,
            key,
            id: meta.id,
        };
        self.unlink_all(key);
        if let Some(meta) = self.metas[key].as_mut() {
            meta.doom = Some(reason);
            meta.class = Class::Doomed;
        }
        self.doomed += 1;
        dooms.push((home, reason));
    }

    fn link(&mut self, key: Key, class: Class) {
        let list = match class {
            Class::Fresh => ListId::Fresh,
            Class::Idle => ListId::Idle,
            Class::Reading => ListId::Reading,
            Class::Writing => ListId::Writing,
            Class::Closing => ListId::Closing,
            Class::Busy | Class::Doomed => return,
        };
        push_back(
            &mut self.metas,
            &mut self.lists[list as usize],
            key,
            CLASS_LINK,
        );
        if class == Class::Reading {
            push_back(
                &mut self.metas,
                &mut self.lists[ListId::Heads as usize],
                key,
                HEADS_LINK,
            );
        }
        if matches!(class, Class::Fresh | Class::Idle) {
            let Some(meta) = self.metas[key].as_ref() else {
                return;
            };
            if !meta.exempt {
                let peer = meta.peer;
                if let Some(p) = self.peers.get_mut(&peer) {
                    push_back(&mut self.metas, &mut p.idle, key, PEER_LINK);
                }
            }
        }
    }

    fn unlink_from(&mut self, key: Key, list: ListId) {
        let set = if list == ListId::Heads {
            HEADS_LINK
        } else {
            CLASS_LINK
        };
        unlink(&mut self.metas, &mut self.lists[list as usize], key, set);
    }

    fn unlink_all(&mut self, key: Key) {
        let Some(meta) = self.metas.get(key).and_then(Option::as_ref) else {
            return;
        };
        let (class, peer) = (meta.class, meta.peer);
        let list = match class {
            Class::Fresh => Some(ListId::Fresh),
            Class::Idle => Some(ListId::Idle),
            Class::Reading => Some(ListId::Reading),
            Class::Writing => Some(ListId::Writing),
            Class::Closing => Some(ListId::Closing),
            Class::Busy | Class::Doomed => None,
        };
        if let Some(list) = list {
            self.unlink_from(key, list);
        }
        self.unlink_from(key, ListId::Heads);
        if let Some(p) = self.peers.get_mut(&peer) {
            unlink(&mut self.metas, &mut p.idle, key, PEER_LINK);
        }
    }
}

fn links(metas: &mut [Option<Meta>], key: Key, set: usize) -> Option<&mut Link> {
    metas
        .get_mut(key)
        .and_then(Option::as_mut)
        .map(|m| &mut m.links[set])
}

fn push_back(metas: &mut [Option<Meta>], list: &mut List, key: Key, set: usize) {
    let tail = list.tail;
    let Some(link) = links(metas, key, set) else {
        return;
    };
    if link.linked {
        return;
    }
    *link = Link {
        prev: tail,
        next: None,
        linked: true,
    };
    match tail.and_then(|t| links(metas, t, set)) {
        Some(tail_link) => tail_link.next = Some(key),
        None => list.head = Some(key),
    }
    list.tail = Some(key);
    list.len += 1;
}

fn unlink(metas: &mut [Option<Meta>], list: &mut List, key: Key, set: usize) {
    let Some(link) = links(metas, key, set) else {
        return;
    };
    if !link.linked {
        return;
    }
    let (prev, next) = (link.prev, link.next);
    *link = Link::default();
    match prev.and_then(|p| links(metas, p, set)) {
        Some(prev_link) => prev_link.next = next,
        None => list.head = next,
    }
    match next.and_then(|n| links(metas, n, set)) {
        Some(next_link) => next_link.prev = prev,
        None => list.tail = prev,
    }
    list.len -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits(cap: usize, per_peer: usize) -> TableLimits {
        TableLimits {
            max_connections: cap,
            max_per_peer: per_peer,
            max_buffered_bytes: 1000,
            idle_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            linger_time: Duration::from_millis(250),
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    fn admit(t: &mut Table, peer: IpAddr, now: Instant, dooms: &mut Vec<(Home, Doom)>) -> Home {
        match t.admit(peer, false, 0, now, dooms) {
            Admission::Admitted(home) => home,
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn at_the_cap_the_longest_silent_connection_is_shed_not_the_newcomer() {
        let t0 = Instant::now();
        let mut t = Table::new(limits(3, 10));
        let mut dooms = Vec::new();
        let a = admit(&mut t, ip(1), t0, &mut dooms);
        let b = admit(&mut t, ip(2), t0 + Duration::from_secs(1), &mut dooms);
        let c = admit(&mut t, ip(3), t0 + Duration::from_secs(2), &mut dooms);
        // `a` is mid-request, `b` idle after a request, `c` silent.
        t.set_class(a, Class::Reading, t0 + Duration::from_secs(3))
            .unwrap();
        t.set_class(b, Class::Idle, t0 + Duration::from_secs(3))
            .unwrap();
        let d = admit(&mut t, ip(4), t0 + Duration::from_secs(4), &mut dooms);
        assert_eq!(dooms, vec![(c, Doom::Shed)]);
        assert_eq!(t.set_class(c, Class::Reading, t0), Err(Doom::Shed));
        t.remove(c);
        dooms.clear();
        let e = admit(&mut t, ip(5), t0 + Duration::from_secs(5), &mut dooms);
        assert_eq!(dooms, vec![(d, Doom::Shed)], "the next silent one");
        t.remove(d);
        dooms.clear();
        t.set_class(e, Class::Busy, t0 + Duration::from_secs(5))
            .unwrap();
        admit(&mut t, ip(6), t0 + Duration::from_secs(6), &mut dooms);
        assert_eq!(
            dooms[0].0, b,
            "then the idle one, before a request in progress"
        );
    }

    #[test]
    fn busy_connections_are_never_shed_and_then_newcomers_are_refused() {
        let t0 = Instant::now();
        let mut t = Table::new(limits(2, 10));
        let mut dooms = Vec::new();
        for n in 1..=2 {
            let h = admit(&mut t, ip(n), t0, &mut dooms);
            t.set_class(h, Class::Busy, t0).unwrap();
        }
        assert_eq!(t.admit(ip(9), false, 0, t0, &mut dooms), Admission::Refused);
        assert!(dooms.is_empty());
    }

    #[test]
    fn a_peer_at_its_share_loses_its_own_idle_connection_or_is_refused() {
        let t0 = Instant::now();
        let mut t = Table::new(limits(100, 2));
        let mut dooms = Vec::new();
        let other = admit(&mut t, ip(2), t0, &mut dooms);
        let a1 = admit(&mut t, ip(1), t0 + Duration::from_secs(1), &mut dooms);
        let a2 = admit(&mut t, ip(1), t0 + Duration::from_secs(2), &mut dooms);
        admit(&mut t, ip(1), t0 + Duration::from_secs(3), &mut dooms);
        assert_eq!(
            dooms,
            vec![(a1, Doom::Shed)],
            "its own oldest, not the other peer's"
        );
        t.remove(a1);
        let _ = (other, a2);
        // All of its connections busy: the newcomer is refused.
        let mut t = Table::new(limits(100, 1));
        let h = admit(&mut t, ip(1), t0, &mut dooms);
        t.set_class(h, Class::Reading, t0).unwrap();
        assert_eq!(t.admit(ip(1), false, 0, t0, &mut dooms), Admission::Refused);
        assert!(
            matches!(
                t.admit(ip(1), true, 0, t0, &mut dooms),
                Admission::Admitted(_)
            ),
            "exempt"
        );
    }

    #[test]
    fn timeouts_follow_each_class() {
        let t0 = Instant::now();
        let mut t = Table::new(limits(100, 100));
        let mut dooms = Vec::new();
        let silent = admit(&mut t, ip(1), t0, &mut dooms);
        let head = admit(&mut t, ip(1), t0, &mut dooms);
        t.set_class(head, Class::Reading, t0 + Duration::from_secs(1))
            .unwrap();
        let body = admit(&mut t, ip(1), t0, &mut dooms);
        t.set_class(body, Class::Reading, t0 + Duration::from_secs(1))
            .unwrap();
        t.head_done(body);
        let next = t.sweep(t0 + Duration::from_secs(4), &mut dooms);
        assert!(dooms.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(5)));
        t.sweep(t0 + Duration::from_secs(5), &mut dooms);
        assert_eq!(dooms, vec![(silent, Doom::IdleTimeout)]);
        dooms.clear();
        t.sweep(t0 + Duration::from_secs(11), &mut dooms);
        assert_eq!(dooms, vec![(head, Doom::HeaderTimeout)]);
        dooms.clear();
        t.sweep(t0 + Duration::from_secs(31), &mut dooms);
        assert_eq!(dooms, vec![(body, Doom::RequestTimeout)]);
    }

    #[test]
    fn over_the_budget_the_largest_unfinished_request_goes() {
        let t0 = Instant::now();
        let mut t = Table::new(limits(100, 100));
        let mut dooms = Vec::new();
        let big = admit(&mut t, ip(1), t0, &mut dooms);
        let small = admit(&mut t, ip(2), t0, &mut dooms);
        t.set_class(big, Class::Reading, t0).unwrap();
        t.set_class(small, Class::Reading, t0).unwrap();
        t.set_buffered(big, 700, &mut dooms).unwrap();
        t.set_buffered(small, 200, &mut dooms).unwrap();
        // The small one grows past the budget: the big one is cut, not it.
        t.set_buffered(small, 400, &mut dooms).unwrap();
        assert_eq!(dooms, vec![(big, Doom::OverBudget)]);
        t.remove(big);
        assert_eq!(t.buffered(), 400);
        // Alone over the budget: it is cut itself.
        assert_eq!(
            t.set_buffered(small, 1200, &mut dooms),
            Err(Doom::OverBudget)
        );
    }

    #[test]
    fn removing_frees_the_key_and_the_peer() {
        let t0 = Instant::now();
        let mut t = Table::new(limits(1, 1));
        let mut dooms = Vec::new();
        let a = admit(&mut t, ip(1), t0, &mut dooms);
        t.remove(a);
        assert_eq!(t.open(), 0);
        let b = admit(&mut t, ip(1), t0, &mut dooms);
        assert_eq!(b.key, a.key);
        assert_ne!(b.id, a.id);
        assert!(dooms.is_empty());
        // A stale home is not the new connection.
        assert_eq!(t.doom_of(a), Some(Doom::Shutdown));
        assert_eq!(t.doom_of(b), None);
    }
}
