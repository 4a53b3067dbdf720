//! The worker's Lua scripts: each reads and changes the group, the stream
//! and the attempts hash in one atomic step.
//!
//! The attempts hash (`<prefix>:attempts`) holds, for each entry being
//! handled, the field `<id>`: handler calls begun; `<id>:ended`: calls that
//! answered (returned an error or panicked; a call that returned `Ok` is
//! acknowledged and its fields deleted); `<id>:last` and `<id>:error`: how
//! the last answered call ended (`failed` or `panicked`) and what it said.
//! A call that began and never answered — its process died — shows as
//! `<id>` greater than `<id>:ended`.

/// Lua defined at the top of the scripts that acknowledge entries:
/// `forget(hash, id)` deletes an entry's fields from the attempts hash, and
/// `acknowledge(first, last)` acknowledges the ids `ARGV[first..=last]` in
/// the group `ARGV[1]` of the stream `KEYS[1]` and forgets them in the hash
/// `KEYS[2]`, returning how many were acknowledged. (A macro, not a const:
/// `concat!` takes literals only.)
macro_rules! acknowledging {
    ($script:literal) => {
        concat!(
            r"
local function forget(hash, id)
  redis.call('HDEL', hash, id, id .. ':ended', id .. ':last', id .. ':error')
end
local function acknowledge(first, last)
  if last < first then
    return 0
  end
  local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, first, last))
  for i = first, last do
    forget(KEYS[2], ARGV[i])
  end
  return acked
end
",
            $script
        )
    };
}

/// Acknowledges the `ARGV[4]` handled entries that follow (forgetting their
/// attempts, as [`ACKNOWLEDGE`] does), then fetches up to `ARGV[3]` new
/// entries (`XREADGROUP … >`, never blocking) and records, for each, that a
/// handler call begins (the caller fetches only for idle handler threads,
/// which begin at once). With nothing new, returns the stream's last id
/// instead, to wait for anything newer with `XREAD BLOCK` (outside a
/// script).
///
/// `KEYS[1]` the events stream, `KEYS[2]` the attempts hash; `ARGV[1]` the
/// group, `ARGV[2]` this consumer, `ARGV[3]` the count, `ARGV[5..]` the ids
/// to acknowledge. Returns `{last id or '', {{id, fields, calls begun}, …}}`.
pub(crate) const FETCH: &str = acknowledging!(
    r"
acknowledge(5, 4 + tonumber(ARGV[4]))
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                        'STREAMS', KEYS[1], '>')
if not read then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last == 0 then
    return {'0-0', {}}
  end
  return {last[1][1], {}}
end
local out = {}
for _, e in ipairs(read[1][2]) do
  out[#out + 1] = {e[1], e[2], redis.call('HINCRBY', KEYS[2], e[1], 1)}
end
return {'', out}
"
);

/// Takes over entries left idle on any consumer for at least `ARGV[3]` ms,
/// choosing by what their attempts say:
///
/// - `exhausted`: `ARGV[6]` (the most attempts) calls began already: taken
///   to be dead-lettered, without another call;
/// - `suspect`: a call began and never answered (the process running it
///   died, maybe because of this very event): taken only when `ARGV[5]` is
///   `1` (this worker runs nothing else), alone, as `solo`, and so that a
///   crash it causes again counts against it only; otherwise counted and
///   left;
/// - `go`: anything else, up to `ARGV[4]` (the idle handler threads, which
///   the exhausted ones count against too).
///
/// Entries taken to be run (`go`, `solo`) get their call recorded as begun.
/// Entries deleted from the stream meanwhile are dropped from the group and
/// the hash, and reported. First, the `ARGV[8]` handled entries that follow
/// are acknowledged (as in [`FETCH`]): a takeover that may run an entry alone
/// comes after every acknowledgement, so that if that entry crashes the
/// process again, no handled entry is left pending to be counted again.
///
/// `KEYS[1]` the events stream, `KEYS[2]` the attempts hash; `ARGV[1]` the
/// group, `ARGV[2]` this consumer, `ARGV[7]` how many idle entries to look
/// at, `ARGV[9..]` the ids to acknowledge. Returns `{suspects left, {deleted
/// id, …}, {{id, fields, kind, calls begun, calls ended, last ending, last
/// error}, …}}`.
pub(crate) const TAKE_OVER: &str = acknowledging!(
    r"
acknowledge(9, 8 + tonumber(ARGV[8]))
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[7])
local free = tonumber(ARGV[4])
local max = tonumber(ARGV[6])
local chosen = {}
local suspects = 0
for _, p in ipairs(pending) do
  local id = p[1]
  local begun = tonumber(redis.call('HGET', KEYS[2], id) or '0')
  local ended = tonumber(redis.call('HGET', KEYS[2], id .. ':ended') or '0')
  if begun >= max then
    if #chosen < free then
      chosen[#chosen + 1] = {id, 'exhausted', begun, ended}
    end
  elseif begun > ended then
    if ARGV[5] == '1' then
      chosen = {{id, 'solo', begun, ended}}
      suspects = 0
      break
    end
    suspects = suspects + 1
  elseif #chosen < free then
    chosen[#chosen + 1] = {id, 'go', begun, ended}
  end
end
local taken = {}
local deleted = {}
for _, c in ipairs(chosen) do
  local id = c[1]
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], id)
  if #claimed == 0 or not claimed[1] then
    redis.call('XACK', KEYS[1], ARGV[1], id)
    forget(KEYS[2], id)
    deleted[#deleted + 1] = id
  else
    local begun = c[3]
    if c[2] ~= 'exhausted' then
      begun = redis.call('HINCRBY', KEYS[2], id, 1)
    end
    taken[#taken + 1] = {id, claimed[1][2], c[2], begun, c[4],
                         redis.call('HGET', KEYS[2], id .. ':last') or '',
                         redis.call('HGET', KEYS[2], id .. ':error') or ''}
  end
end
return {suspects, deleted, taken}
"
);

/// Before a retry: records that call number `n + 1` begins, and resets the
/// entry's idle time, but only while the entry is still pending on this
/// consumer (another worker may have taken it over during the backoff).
///
/// `KEYS[1]` the events stream, `KEYS[2]` the attempts hash; `ARGV[1]` the
/// group, `ARGV[2]` this consumer, `ARGV[3]` the entry id. Returns the calls
/// begun, or `0` when the entry is not ours any more.
pub(crate) const BEGIN_AGAIN: &str = r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[2] then
  return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
";

/// Moves a pending entry to the dead-letter stream, acknowledges it and
/// forgets its attempts, in one atomic step — but only while it is still
/// pending on this consumer (another worker may have taken it over).
///
/// `KEYS[1]` the events stream, `KEYS[2]` the dead-letter stream, `KEYS[3]`
/// the attempts hash; `ARGV[1]` the group, `ARGV[2]` the entry id, `ARGV[3]`
/// this consumer, `ARGV[4..]` the dead letter's fields. Returns the dead
/// letter's id, or `0`.
pub(crate) const DEAD_LETTER: &str = acknowledging!(
    r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then
  return 0
end
local dead = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
forget(KEYS[3], ARGV[2])
return dead
"
);

/// Acknowledges handled entries and forgets their attempts.
///
/// `KEYS[1]` the events stream, `KEYS[2]` the attempts hash; `ARGV[1]` the
/// group, `ARGV[2..]` the ids. Returns how many were acknowledged.
pub(crate) const ACKNOWLEDGE: &str = acknowledging!(
    r"
return acknowledge(2, #ARGV)
"
);

/// At a graceful stop: hands the entries this consumer still holds to the
/// hand-back consumer (`ARGV[3]`), with an idle time that makes them
/// available to the other workers' takeover when they should be run again,
/// and takes back the recorded call of those whose call never began. Then,
/// when `ARGV[4]` is `1` and nothing is pending on this consumer any more,
/// removes it from the group.
///
/// `KEYS[1]` the events stream, `KEYS[2]` the attempts hash; `ARGV[1]` the
/// group, `ARGV[2]` this consumer, `ARGV[3]` the hand-back consumer,
/// `ARGV[5..]` triples: id, idle time in ms, `1` to take back its begun
/// call. Returns `{handed back, removed (0/1)}`.
pub(crate) const HAND_BACK: &str = r"
local handed = 0
for i = 5, #ARGV, 3 do
  local id = ARGV[i]
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #pending == 1 and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, id, 'IDLE', ARGV[i + 1], 'JUSTID')
    if ARGV[i + 2] == '1' then
      if redis.call('HINCRBY', KEYS[2], id, -1) <= 0 then
        redis.call('HDEL', KEYS[2], id)
      end
    end
    handed = handed + 1
  end
end
local left = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if ARGV[4] ~= '1' or #left > 0 then
  return {handed, 0}
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return {handed, 1}
";

/// Removes from the group the consumers (this one excepted) that hold no
/// pending entry and have been idle for at least `ARGV[3]` ms: workers that
/// died or stopped, once their entries were taken over. A consumer is only
/// ever removed with nothing pending (removing one drops its pending
/// entries); a live worker removed while idle is added again by its next
/// read.
///
/// `KEYS[1]` the events stream; `ARGV[1]` the group, `ARGV[2]` this
/// consumer. Returns the names removed.
pub(crate) const FORGET_IDLE_CONSUMERS: &str = r"
local removed = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do
    info[consumer[i]] = consumer[i + 1]
  end
  local idle = tonumber(info['idle'] or 0)
  if info['name'] ~= ARGV[2] and tonumber(info['pending'] or 1) == 0
     and idle >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed[#removed + 1] = info['name']
  end
end
return removed
";
