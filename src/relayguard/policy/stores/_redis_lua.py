"""The Redis store's Lua scripts and their argument encoding (pure: no connection here).

One script call answers a whole batch of checks atomically (Redis runs a script with nothing
interleaved), so several policy servers sharing one Redis never over-admit together. The GCRA
arithmetic is the same, operation for operation, as :meth:`relayguard.policy.limiter.Limit.allow`
in IEEE doubles, so both stores decide alike to the last bit:

* numbers travel as ``repr(float)`` strings (shortest round-trip) and come back formatted with
  ``%.17g`` (exact): a Lua number returned as such would be truncated to an integer by Redis;
* the interval, capacity and drift of each window are computed once in Python and passed in.

Layout under the key prefix P: ``P rate:<store key>`` is a hash of window id -> TAT, expiring
a second after its latest TAT passes (an idle key costs nothing; the TTL is counted from the
caller's ``now``, since TATs are in the caller's clock); ``P contained`` is a hash of contained
key -> JSON ``{"reason", "since"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Final

from relayguard.policy.limiter import Decision, Limit
from relayguard.policy.stores.base import Charge, Check, Verdict, window_id

TOLERANCE: Final = "1e-06"  # limiter._TOLERANCE, the floor of the script's tolerance

_GCRA: Final = r"""
local prefix = ARGV[1]
local min_tolerance = tonumber(ARGV[2])
local pos = 3
local function arg()
  local value = ARGV[pos]
  pos = pos + 1
  return value
end
local function fmt(x) return string.format('%.17g', x) end
-- Relative to the caller's clock, not Redis's: the TATs are in the caller's time.
local function expire(key, tat, now)
  redis.call('PEXPIRE', key, math.ceil((tat - now) * 1000) + 1000)
end
"""

CHECK_SCRIPT: Final = (
    _GCRA
    + r"""
-- The batch comes packed in ARGV[3] as <byte length>:<bytes> items (see pack()), and the answer
-- goes back packed the same way: one argument and one reply string per batch, not ~20 of each
-- per request (the client library's encoding and parsing cost more than the script).
local data = ARGV[3]
local dpos = 1
local function arg()
  local colon = string.find(data, ':', dpos, true)
  local size = tonumber(string.sub(data, dpos, colon - 1))
  local value = string.sub(data, colon + 1, colon + size)
  dpos = colon + size + 1
  return value
end
local contained_key = prefix .. 'contained'
local out = {}
local checks = tonumber(arg())
for _ = 1, checks do
  local nkeys = tonumber(arg())
  local held = false
  for _ = 1, nkeys do
    local key = arg()
    if not held and redis.call('HEXISTS', contained_key, key) == 1 then held = key end
  end
  local ncharges = tonumber(arg())
  if held then
    -- skip the charges' arguments
    for _ = 1, ncharges do
      arg(); arg(); arg()
      local nwin = tonumber(arg())
      for _ = 1, 5 * nwin do arg() end
    end
    out[#out + 1] = 'C'
    out[#out + 1] = held
  else
    out[#out + 1] = 'D'
    out[#out + 1] = ncharges
    for _ = 1, ncharges do
      local key = prefix .. 'rate:' .. arg()
      local now = tonumber(arg())
      local cost = tonumber(arg())
      local nwin = tonumber(arg())
      local ids, intervals, capacities, bursts, drifts = {}, {}, {}, {}, {}
      for i = 1, nwin do
        ids[i] = arg()
        intervals[i] = tonumber(arg())
        capacities[i] = tonumber(arg())
        bursts[i] = tonumber(arg())
        drifts[i] = tonumber(arg())
      end
      local states = redis.call('HMGET', key, unpack(ids))
      local new = {}
      local retry = 0
      local latest = now
      for i = 1, nwin do
        local state = tonumber(states[i]) or 0
        if state > latest then latest = state end
        if cost > bursts[i] then
          retry = math.huge
          new[i] = state
        elseif cost <= 0 then
          new[i] = state
        else
          local base = now
          if state > now then base = state end
          local tat = base + cost * intervals[i]
          local wait = tat - capacities[i] - now
          local tolerance = drifts[i] * now
          if tolerance < min_tolerance then tolerance = min_tolerance end
          if wait > tolerance then
            if wait > retry then retry = wait end
          end
          new[i] = tat
        end
      end
      if retry > 0 then
        out[#out + 1] = '0'
        out[#out + 1] = fmt(latest)
        out[#out + 1] = fmt(retry)
      else
        local fields = {}
        local top = now
        for i = 1, nwin do
          fields[#fields + 1] = ids[i]
          fields[#fields + 1] = fmt(new[i])
          if new[i] > top then top = new[i] end
        end
        if top > now then
          redis.call('HSET', key, unpack(fields))
          expire(key, top, now)
        end
        out[#out + 1] = '1'
        out[#out + 1] = fmt(top)
        out[#out + 1] = '0'
      end
    end
  end
end
local packed = {}
for i = 1, #out do
  local value = tostring(out[i])
  packed[i] = #value .. ':' .. value
end
return table.concat(packed)
"""
)

REFUND_SCRIPT: Final = (
    _GCRA
    + r"""
local charges = tonumber(arg())
for _ = 1, charges do
  local key = prefix .. 'rate:' .. arg()
  local now = tonumber(arg())
  local cost = tonumber(arg())
  local nwin = tonumber(arg())
  local top = now
  for _ = 1, nwin do
    local id = arg()
    local interval = tonumber(arg())
    pos = pos + 3  -- capacity, burst, drift
    local state = tonumber(redis.call('HGET', key, id)) or 0
    local tat = state - cost * interval
    if tat > now then
      redis.call('HSET', key, id, fmt(tat))
      if tat > top then top = tat end
    else
      redis.call('HDEL', key, id)
    end
  end
  if top > now then expire(key, top, now) end
end
return 1
"""
)


@lru_cache(maxsize=4096)
def _window_args(limit: Limit) -> tuple[str, str, str, str, str]:
    return (
        window_id(limit),
        repr(limit.interval),
        repr(limit.capacity),
        str(limit.burst),
        repr(limit.drift),
    )


def _charge_args(out: list[str], charge: Charge) -> None:
    key, windows, now, cost = charge
    out += (key, repr(float(now)), repr(float(cost)), str(len(windows)))
    for w in windows:
        out += _window_args(w)


def check_args(prefix: str, checks: Sequence[Check]) -> list[str | bytes]:
    out = [str(len(checks))]
    for keys, charges in checks:
        out.append(str(len(keys)))
        out += keys
        out.append(str(len(charges)))
        for charge in charges:
            _charge_args(out, charge)
    return [prefix, TOLERANCE, pack(out)]


def pack(fields: Sequence[str]) -> bytes:
    """``fields`` as one string of ``<byte length>:<bytes>`` items (any byte may occur)."""
    parts = []
    for field in fields:
        raw = field.encode()
        parts.append(b"%d:%s" % (len(raw), raw))
    return b"".join(parts)


def unpack(data: bytes) -> list[bytes]:
    """The items of a :func:`pack` string; ValueError when it is not one."""
    out = []
    pos, end = 0, len(data)
    while pos < end:
        colon = data.index(b":", pos)
        stop = colon + 1 + int(data[pos:colon])
        if stop > end:
            raise ValueError("a packed reply cut short")
        out.append(data[colon + 1 : stop])
        pos = stop
    return out


def refund_args(prefix: str, charges: Sequence[Charge]) -> list[str]:
    out = [prefix, TOLERANCE, str(len(charges))]
    for charge in charges:
        _charge_args(out, charge)
    return out


def parse_verdicts(packed: bytes, checks: int) -> list[Verdict]:
    """The script's packed reply as one verdict per check."""
    if not isinstance(packed, bytes):
        raise TypeError(f"a packed reply is bytes, not {type(packed).__name__}")
    reply = unpack(packed)
    verdicts: list[Verdict] = []
    i = 0
    for _ in range(checks):
        tag = reply[i]
        if tag == b"C":
            held = reply[i + 1]
            verdicts.append(held.decode() if isinstance(held, bytes) else str(held))
            i += 2
            continue
        n = int(reply[i + 1])
        i += 2
        decisions = []
        for _ in range(n):
            allowed, state, retry = reply[i], reply[i + 1], reply[i + 2]
            decisions.append(Decision(allowed == b"1", _float(state), _float(retry)))
            i += 3
        verdicts.append(decisions)
    if i != len(reply):
        raise ValueError("the check script answered more than was asked")
    return verdicts


def _float(value: bytes | int) -> float:
    return float(value.decode() if isinstance(value, bytes) else value)
