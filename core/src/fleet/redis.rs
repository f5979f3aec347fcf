//! The Redis backend of the fleet feed: one Redis Stream whose entry ids are the events'
//! sequence numbers (`<seq>-1`), a counter that assigns them, and a checkpoint hash.
//!
//! Keys, for a stream named `S`: `S` (the stream; each entry has one field `e`, the event),
//! `S:seq` (the last sequence number assigned), `S:checkpoint` (a hash: `seq`, `state`).
//! An append is one Lua script (INCR + XADD), so a sequence number is visible only with its
//! entry. Reads are `XREAD BLOCK` on a connection of their own, pipelined after a `GET` of the
//! counter, so a follower can tell "nothing new" from "trimmed past me".

use super::{Backend, Read};
use crate::error::{Error, Result};
use redis::Value;
use std::sync::Mutex;
use std::time::Duration;

const APPEND: &str = r"
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], seq .. '-1', 'e', ARGV[1])
return seq
";

const SAVE_CHECKPOINT: &str = r"
local cur = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'state', ARGV[2])
  return 1
end
return 0
";

/// Most entries one read returns.
const READ_COUNT: usize = 512;

/// A Redis Stream as the fleet feed.
pub struct RedisBackend {
    client: redis::Client,
    url_shown: String,
    stream: String,
    seq_key: String,
    checkpoint_key: String,
    connect_timeout: Duration,
    /// The follower's connection (blocking reads), and the writers' one.
    reader: Mutex<Option<redis::Connection>>,
    writer: Mutex<Option<redis::Connection>>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.url_shown)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A backend on the Redis at `url` (`redis://host:port/db`, or `redis+unix:///path`), using
    /// the stream named `stream`. Nothing is connected until first use.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` for a malformed URL or an empty stream name.
    pub fn new(url: &str, stream: &str, connect_timeout: Duration) -> Result<Self> {
        if stream.is_empty() || stream.len() > 256 {
            return Err(Error::config("fleet `stream` must be a name of 1 to 256 bytes"));
        }
        let client = redis::Client::open(url)
            .map_err(|e| Error::config(format!("fleet `redis_url` is not a Redis URL: {e}")))?;
        // never show a password in errors or status
        let url_shown = match url.find('@') {
            Some(at) => format!("redis://***{}", &url[at..]),
            None => url.to_owned(),
        };
        Ok(Self {
            client,
            url_shown,
            stream: stream.to_owned(),
            seq_key: format!("{stream}:seq"),
            checkpoint_key: format!("{stream}:checkpoint"),
            connect_timeout,
            reader: Mutex::new(None),
            writer: Mutex::new(None),
        })
    }

    /// Runs `f` on the slot's connection, connecting when there is none. A connection kept
    /// from earlier that turns out broken (Redis restarted) is replaced and `f` runs once more:
    /// every event is idempotent, so an append whose reply was lost may be repeated.
    fn with<T>(
        &self,
        slot: &Mutex<Option<redis::Connection>>,
        read_timeout: Duration,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut guard = slot.lock().map_err(|_| Error::internal("fleet connection lock poisoned"))?;
        let mut reused = guard.is_some();
        loop {
            if guard.is_none() {
                let con = self
                    .client
                    .get_connection_with_timeout(self.connect_timeout)
                    .map_err(|e| Error::fleet(format!("cannot reach Redis at {}: {e}", self.url_shown)))?;
                *guard = Some(con);
            }
            let Some(con) = guard.as_mut() else { return Err(Error::internal("fleet connection vanished")) };
            let result = con
                .set_read_timeout(Some(read_timeout))
                .and_then(|()| con.set_write_timeout(Some(self.connect_timeout.max(Duration::from_secs(1)))))
                .and_then(|()| f(con));
            match result {
                Ok(v) => return Ok(v),
                Err(e) => {
                    // any failure: the next call starts on a new connection
                    *guard = None;
                    let broken = e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error();
                    if reused && broken {
                        reused = false;
                        continue;
                    }
                    return Err(Error::fleet(format!("Redis at {}: {e}", self.url_shown)));
                }
            }
        }
    }

    fn command_timeout(&self) -> Duration {
        self.connect_timeout.max(Duration::from_secs(2))
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Nil => Some(0),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The entries of an `XREAD` reply for one stream: `[[key, [[id, [field, value, ...]], ...]]]`
/// (RESP2) or a map of key to entries (RESP3); nil when the block timed out.
fn entries(reply: &Value) -> std::result::Result<Vec<(u64, String)>, String> {
    let streams: Vec<&Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|s| match s {
                Value::Array(pair) if pair.len() == 2 => Ok(&pair[1]),
                _ => Err("a stream of an XREAD reply is not [key, entries]".to_owned()),
            })
            .collect::<std::result::Result<_, _>>()?,
        Value::Map(pairs) => pairs.iter().map(|(_, v)| v).collect(),
        _ => return Err("an XREAD reply is neither nil, an array nor a map".to_owned()),
    };
    let mut out = Vec::new();
    for list in streams {
        let Value::Array(list) = list else { return Err("XREAD entries are not an array".to_owned()) };
        for entry in list {
            let Value::Array(parts) = entry else { return Err("an XREAD entry is not an array".to_owned()) };
            let (Some(id), Some(Value::Array(fields))) = (parts.first().and_then(as_text), parts.get(1)) else {
                return Err("an XREAD entry is not [id, fields]".to_owned());
            };
            let seq = id
                .split_once('-')
                .and_then(|(ms, _)| ms.parse::<u64>().ok())
                .ok_or_else(|| format!("stream entry id `{id}` is not an ambit sequence number"))?;
            let event = fields
                .chunks(2)
                .find(|kv| kv.first().and_then(as_text).as_deref() == Some("e"))
                .and_then(|kv| kv.get(1).and_then(as_text))
                .ok_or_else(|| format!("stream entry `{id}` has no event field `e`"))?;
            out.push((seq, event));
        }
    }
    Ok(out)
}

impl Backend for RedisBackend {
    fn describe(&self) -> String {
        format!("redis {} stream {}", self.url_shown, self.stream)
    }

    fn append(&self, event: &str) -> Result<u64> {
        let reply: Value = self.with(&self.writer, self.command_timeout(), |con| {
            redis::cmd("EVAL").arg(APPEND).arg(2).arg(&self.stream).arg(&self.seq_key).arg(event).query(con)
        })?;
        as_u64(&reply)
            .filter(|s| *s > 0)
            .ok_or_else(|| Error::fleet("Redis answered an append with no sequence number"))
    }

    fn read(&self, after: u64, wait: Duration) -> Result<Read> {
        let block_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let (head, reply): (Value, Value) = self.with(&self.reader, wait + self.command_timeout(), |con| {
            redis::pipe()
                .cmd("GET")
                .arg(&self.seq_key)
                .cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS")
                .arg(&self.stream)
                .arg(format!("{after}-1"))
                .query(con)
        })?;
        let head = as_u64(&head).ok_or_else(|| Error::fleet(format!("`{}` is not a sequence number", self.seq_key)))?;
        let entries = entries(&reply).map_err(Error::fleet)?;
        Ok(Read { head, entries })
    }

    fn head(&self) -> Result<u64> {
        let v: Value =
            self.with(&self.writer, self.command_timeout(), |con| redis::cmd("GET").arg(&self.seq_key).query(con))?;
        as_u64(&v).ok_or_else(|| Error::fleet(format!("`{}` is not a sequence number", self.seq_key)))
    }

    fn save_checkpoint(&self, seq: u64, state: &str) -> Result<bool> {
        let v: Value = self.with(&self.writer, self.command_timeout(), |con| {
            redis::cmd("EVAL").arg(SAVE_CHECKPOINT).arg(1).arg(&self.checkpoint_key).arg(seq).arg(state).query(con)
        })?;
        Ok(as_u64(&v) == Some(1))
    }

    fn load_checkpoint(&self) -> Result<Option<(u64, String)>> {
        let v: Value = self.with(&self.writer, self.command_timeout(), |con| {
            redis::cmd("HMGET").arg(&self.checkpoint_key).arg("seq").arg("state").query(con)
        })?;
        let Value::Array(parts) = v else { return Err(Error::fleet("HMGET answered with no array")) };
        match (parts.first(), parts.get(1)) {
            (Some(Value::Nil) | None, _) => Ok(None),
            (Some(seq), Some(state)) => {
                let seq = as_u64(seq).ok_or_else(|| Error::fleet("the checkpoint's `seq` is not a number"))?;
                let state = as_text(state).ok_or_else(|| Error::fleet("the checkpoint has no `state`"))?;
                Ok(Some((seq, state)))
            }
            _ => Err(Error::fleet("the checkpoint has no `state`")),
        }
    }

    fn claim_once(&self, key: &str, ttl_seconds: u64) -> Result<bool> {
        let v: Value = self.with(&self.writer, self.command_timeout(), |con| {
            redis::cmd("SET")
                .arg(format!("{}:dpop:{key}", self.stream))
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl_seconds.max(1))
                .query(con)
        })?;
        match v {
            Value::Okay => Ok(true),
            Value::SimpleString(s) if s == "OK" => Ok(true),
            Value::Nil => Ok(false),
            other => Err(Error::fleet(format!("Redis answered SET NX with {other:?}"))),
        }
    }

    fn trim_through(&self, seq: u64) -> Result<()> {
        let _: Value = self.with(&self.writer, self.command_timeout(), |con| {
            redis::cmd("XTRIM").arg(&self.stream).arg("MINID").arg(seq.saturating_add(1)).query(con)
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xread_replies_parse_and_hostile_ones_are_errors() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("ambit"),
            Value::Array(vec![
                Value::Array(vec![bulk("7-1"), Value::Array(vec![bulk("e"), bulk("{}")])]),
                Value::Array(vec![bulk("8-1"), Value::Array(vec![bulk("x"), bulk("1"), bulk("e"), bulk("[]")])]),
            ]),
        ])]);
        assert_eq!(entries(&reply).unwrap(), vec![(7, "{}".to_owned()), (8, "[]".to_owned())]);
        assert!(entries(&Value::Nil).unwrap().is_empty());
        let no_event = Value::Array(vec![Value::Array(vec![
            bulk("ambit"),
            Value::Array(vec![Value::Array(vec![bulk("9-1"), Value::Array(vec![bulk("x"), bulk("1")])])]),
        ])]);
        assert!(entries(&no_event).is_err());
        let bad_id = Value::Array(vec![Value::Array(vec![
            bulk("ambit"),
            Value::Array(vec![Value::Array(vec![bulk("abc"), Value::Array(vec![bulk("e"), bulk("{}")])])]),
        ])]);
        assert!(entries(&bad_id).is_err());
        assert!(entries(&Value::Int(3)).is_err());
    }

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        assert_eq!(RedisBackend::new("http://x", "s", Duration::from_secs(1)).unwrap_err().code(), "AMBIT_CONFIG");
        assert_eq!(
            RedisBackend::new("redis://127.0.0.1:1", "", Duration::from_secs(1)).unwrap_err().code(),
            "AMBIT_CONFIG"
        );
        let b = RedisBackend::new("redis://user:secret@127.0.0.1:1/0", "s", Duration::from_millis(200)).unwrap();
        assert!(!b.describe().contains("secret"));
        let e = b.append("{}").unwrap_err();
        assert_eq!(e.code(), "AMBIT_FLEET");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
