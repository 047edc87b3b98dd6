//! A team's deployment, with real components: Debian's `redis-server` as
//! the store, two `tokportal-mcp --oauth` replicas sharing it and the
//! sealing secret, and nginx in front of both with the deploy file and no
//! affinity. The public URL is nginx's own address, bound before the
//! replicas start, so what the server advertises is where a client goes.

use tokportal::sandbox::Sandbox;

use super::mcp_http::McpHttp;
use super::nginx::Nginx;
use super::redis::RedisServer;

/// One replica of `tokportal-mcp --oauth --public-url PUBLIC --store
/// STORE` against `sandbox`, sealing with `secret`, logging at info.
pub fn replica(sandbox: &Sandbox, public: &str, store: &str, secret: &str) -> McpHttp {
    McpHttp::start(
        sandbox.url(),
        &["--oauth", "--public-url", public, "--store", store],
        &[("TOKPORTAL_MCP_OAUTH_SECRET", secret), ("RUST_LOG", "info")],
    )
}

/// nginx, two replicas and their Redis store. Fields drop in order: nginx
/// stops first, the store last.
pub struct Team {
    pub lb: Nginx,
    pub a: McpHttp,
    pub b: McpHttp,
    pub redis: RedisServer,
    /// `http://127.0.0.1:PORT`: nginx, and both replicas' `--public-url`.
    pub public: String,
}

impl Team {
    /// Starts it, or `None` (saying so) where nginx or redis-server is
    /// missing outside CI.
    pub fn start(sandbox: &Sandbox, secret: &str) -> Option<Team> {
        let nginx = super::required_program("nginx", "apt-get install -y nginx")?;
        let redis = RedisServer::start()?;
        let listener = Nginx::bind();
        let public = format!("http://{}", listener.local_addr().unwrap());
        let a = replica(sandbox, &public, &redis.url, secret);
        let b = replica(sandbox, &public, &redis.url, secret);
        let address = |r: &McpHttp| r.origin.trim_start_matches("http://").to_owned();
        let lb = Nginx::start_on(&nginx, listener, [&address(&a), &address(&b)]);
        Some(Team {
            lb,
            a,
            b,
            redis,
            public,
        })
    }

    /// The `/mcp` URL a client is given: nginx's.
    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.public)
    }
}
