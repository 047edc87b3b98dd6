//! The store on a Redis (or Valkey) server (`--store redis://…`), shared by
//! every replica that names it. Each rule is one atomic step on the server:
//! `SET … NX EXAT` for a code, a Lua script for a grant's creation (the
//! client's bound checked with it), rotation and revocation, so that two
//! replicas can never both accept the same code or the same refresh.
//!
//! Keys (under `tokportal-mcp:`): `code:ID` (expires with the code),
//! `grant:ID` (a hash; expires with the grant), `client:DIGEST` (a sorted
//! set of the client's live grants by expiry, for its bound).
//!
//! The rotation's rules are [`super::rotation`]'s, written again in Lua to
//! run in one step on the server (a WATCH transaction cannot run on the
//! shared, multiplexed connection); the conformance test runs both.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{Created, Grant, MAX_GRANTS_PER_CLIENT, NewGrant, Once, Reserved, Rotation};

const PREFIX: &str = "tokportal-mcp:";
/// How long one command may take before the store counts as unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct Redis {
    connection: ConnectionManager,
    create: Script,
    rotate: Script,
    revoke: Script,
    reserve: Script,
}

fn grant_key(id: &str) -> String {
    format!("{PREFIX}grant:{id}")
}

fn client_key(client: &str) -> String {
    format!("{PREFIX}client:{client}")
}

/// KEYS: grant, client set. ARGV: now, max, id, client, client_name,
/// key_id, scope, created_at, expires_at. 1: made; 0: the client is full.
const CREATE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'client', ARGV[4], 'client_name', ARGV[5], 'key_id', ARGV[6],
  'scope', ARGV[7], 'generation', 0, 'created_at', ARGV[8], 'expires_at', ARGV[9], 'revoked', 0)
redis.call('EXPIREAT', KEYS[1], ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[9], ARGV[3])
if redis.call('TTL', KEYS[2]) < 0 then
  redis.call('EXPIREAT', KEYS[2], ARGV[9])
else
  redis.call('EXPIREAT', KEYS[2], ARGV[9], 'GT')
end
return 1
";

/// KEYS: grant. ARGV: presented generation, now, expires_at, id, prefix.
/// The new generation (>= 1); -1 unknown; -2 revoked; -3 replayed (now revoked).
const ROTATE: &str = r"
local g = redis.call('HMGET', KEYS[1], 'generation', 'expires_at', 'revoked', 'client')
if not g[1] then return -1 end
if g[3] == '1' then return -2 end
if tonumber(g[2]) <= tonumber(ARGV[2]) then return -1 end
local client = ARGV[5] .. 'client:' .. g[4]
if tonumber(ARGV[1]) == tonumber(g[1]) then
  local n = redis.call('HINCRBY', KEYS[1], 'generation', 1)
  redis.call('HSET', KEYS[1], 'expires_at', ARGV[3])
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
  redis.call('ZADD', client, ARGV[3], ARGV[4])
  if redis.call('TTL', client) < 0 then
    redis.call('EXPIREAT', client, ARGV[3])
  else
    redis.call('EXPIREAT', client, ARGV[3], 'GT')
  end
  return n
end
redis.call('HSET', KEYS[1], 'revoked', 1)
redis.call('ZREM', client, ARGV[4])
return -3
";

/// KEYS: grant. ARGV: now, id, prefix. 1: revoked now; 0: not live.
const REVOKE: &str = r"
local g = redis.call('HMGET', KEYS[1], 'expires_at', 'revoked', 'client')
if not g[1] or g[2] == '1' or tonumber(g[1]) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'revoked', 1)
redis.call('ZREM', ARGV[3] .. 'client:' .. g[3], ARGV[2])
return 1
";

/// KEYS: budget. ARGV: amount, limit, expires_at. {1, spent after} when
/// reserved; {0, spent before} when it would pass the limit.
const RESERVE: &str = r"
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {0, spent} end
local now = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return {1, now}
";

/// KEYS: budget. ARGV: amount. Never below zero.
const RELEASE: &str = r"
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent <= 0 then return 0 end
local left = math.max(spent - tonumber(ARGV[1]), 0)
redis.call('SET', KEYS[1], left, 'KEEPTTL')
return left
";

fn said(e: redis::RedisError) -> String {
    // redis-rs' errors name the command and the server's words, not the URL.
    e.to_string()
}

impl Redis {
    pub(super) async fn connect(url: &url::Url) -> Result<Redis, String> {
        let client = redis::Client::open(url.as_str()).map_err(said)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config).await.map_err(said)?;
        Ok(Redis {
            connection,
            create: Script::new(CREATE),
            rotate: Script::new(ROTATE),
            revoke: Script::new(REVOKE),
            reserve: Script::new(RESERVE),
        })
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    pub(super) async fn ping(&self) -> Result<(), String> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.connection())
            .await
            .map(|_| ())
            .map_err(said)
    }

    pub(super) async fn use_code(&self, id: &str, now: i64, expires_at: i64) -> Result<Once, String> {
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{PREFIX}code:{id}"))
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(expires_at.max(now + 1))
            .query_async(&mut self.connection())
            .await
            .map_err(said)?;
        Ok(if set.is_some() { Once::First } else { Once::Again })
    }

    pub(super) async fn create_grant(&self, g: &NewGrant, now: i64) -> Result<Created, String> {
        let made: i64 = self
            .create
            .key(grant_key(&g.id))
            .key(client_key(&g.client))
            .arg(now)
            .arg(MAX_GRANTS_PER_CLIENT)
            .arg(&g.id)
            .arg(&g.client)
            .arg(&g.client_name)
            .arg(&g.key_id)
            .arg(&g.scope)
            .arg(g.created_at)
            .arg(g.expires_at)
            .invoke_async(&mut self.connection())
            .await
            .map_err(said)?;
        Ok(if made == 1 { Created::Created } else { Created::TooMany })
    }

    pub(super) async fn rotate(&self, id: &str, presented: u64, now: i64, expires_at: i64) -> Result<Rotation, String> {
        let outcome: i64 = self
            .rotate
            .key(grant_key(id))
            .arg(presented)
            .arg(now)
            .arg(expires_at)
            .arg(id)
            .arg(PREFIX)
            .invoke_async(&mut self.connection())
            .await
            .map_err(said)?;
        Ok(match outcome {
            -2 => Rotation::Revoked,
            -3 => Rotation::Replayed,
            n if n >= 1 => Rotation::Rotated { generation: n as u64 },
            _ => Rotation::Unknown,
        })
    }

    pub(super) async fn is_live(&self, id: &str, now: i64) -> Result<bool, String> {
        let (expires_at, revoked): (Option<i64>, Option<String>) = redis::cmd("HMGET")
            .arg(grant_key(id))
            .arg("expires_at")
            .arg("revoked")
            .query_async(&mut self.connection())
            .await
            .map_err(said)?;
        Ok(expires_at.is_some_and(|e| e > now) && revoked.as_deref() == Some("0"))
    }

    pub(super) async fn revoke(&self, id: &str, now: i64) -> Result<bool, String> {
        let revoked: i64 = self
            .revoke
            .key(grant_key(id))
            .arg(now)
            .arg(id)
            .arg(PREFIX)
            .invoke_async(&mut self.connection())
            .await
            .map_err(said)?;
        Ok(revoked == 1)
    }

    pub(super) async fn reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        expires_at: i64,
    ) -> Result<Reserved, String> {
        let (made, spent): (i64, i64) = self
            .reserve
            .key(format!("{PREFIX}budget:{key}"))
            .arg(amount)
            .arg(limit)
            .arg(expires_at)
            .invoke_async(&mut self.connection())
            .await
            .map_err(said)?;
        Ok(if made == 1 {
            Reserved::Reserved { spent }
        } else {
            Reserved::Over { spent }
        })
    }

    pub(super) async fn release(&self, key: &str, amount: i64) -> Result<(), String> {
        let _: i64 = Script::new(RELEASE)
            .key(format!("{PREFIX}budget:{key}"))
            .arg(amount)
            .invoke_async(&mut self.connection())
            .await
            .map_err(said)?;
        Ok(())
    }

    pub(super) async fn spent(&self, key: &str) -> Result<i64, String> {
        let spent: Option<i64> = self
            .connection()
            .get(format!("{PREFIX}budget:{key}"))
            .await
            .map_err(said)?;
        Ok(spent.unwrap_or(0))
    }

    pub(super) async fn grants(&self, now: i64) -> Result<Vec<Grant>, String> {
        let mut connection = self.connection();
        let mut keys: Vec<String> = Vec::new();
        {
            let mut scan = connection
                .scan_match::<_, String>(format!("{PREFIX}grant:*"))
                .await
                .map_err(said)?;
            while let Some(key) = futures::StreamExt::next(&mut scan).await {
                keys.push(key.map_err(said)?);
            }
        }
        let mut grants = Vec::with_capacity(keys.len());
        for key in keys {
            let fields: std::collections::HashMap<String, String> = connection.hgetall(&key).await.map_err(said)?;
            let number = |k: &str| fields.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            let text = |k: &str| fields.get(k).cloned().unwrap_or_default();
            let grant = Grant {
                id: key.trim_start_matches(&format!("{PREFIX}grant:")).to_owned(),
                client: text("client"),
                client_name: text("client_name"),
                key_id: text("key_id"),
                scope: text("scope"),
                generation: number("generation").max(0) as u64,
                created_at: number("created_at"),
                expires_at: number("expires_at"),
                revoked: text("revoked") == "1",
            };
            if grant.expires_at > now {
                grants.push(grant);
            }
        }
        Ok(grants)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{grant, redis_server};
    use super::super::{StoreUrl, now};
    use super::*;

    async fn connected(dir: &std::path::Path) -> Option<(std::process::Child, Redis)> {
        let (server, url) = redis_server(dir)?;
        let StoreUrl::Redis(url) = url else {
            unreachable!("redis_server names a Redis store")
        };
        Some((server, Redis::connect(&url).await.unwrap()))
    }

    /// A grant is live until the second it expires, not in it, and leaves
    /// the listing then (as `Grant::is_live` and the other stores have it).
    #[tokio::test]
    async fn a_grant_ends_at_its_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let Some((mut server, redis)) = connected(dir.path()).await else {
            return;
        };
        let now = now();
        let g = grant("g", "c", now);
        assert_eq!(redis.create_grant(&g, now).await.unwrap(), Created::Created);
        assert!(redis.is_live("g", g.expires_at - 1).await.unwrap());
        assert!(!redis.is_live("g", g.expires_at).await.unwrap());
        assert_eq!(redis.grants(g.expires_at - 1).await.unwrap().len(), 1);
        assert!(redis.grants(g.expires_at).await.unwrap().is_empty());
        let _ = server.kill();
        let _ = server.wait();
    }

    /// A code handed over at or past its expiry (a replica whose clock is
    /// ahead) is still held for the rest of the second, never not at all:
    /// Redis drops a key whose `EXAT` has passed, and refuses an `EXAT` of 0.
    #[tokio::test]
    async fn a_code_at_its_expiry_is_still_held() {
        let dir = tempfile::tempdir().unwrap();
        let Some((mut server, redis)) = connected(dir.path()).await else {
            return;
        };
        let mut seen = None;
        for attempt in 0..100 {
            let now = now();
            let id = format!("late-{attempt}");
            let first = redis.use_code(&id, now, now).await.unwrap();
            let again = redis.use_code(&id, now, 0).await.unwrap();
            // Only a try that stayed within one second says anything.
            if super::super::now() == now {
                seen = Some((first, again));
                break;
            }
        }
        assert_eq!(seen, Some((Once::First, Once::Again)));
        let _ = server.kill();
        let _ = server.wait();
    }
}
