//! Name resolution for the agent without a thread per request.
//!
//! ureq's default resolver looks the host up on a fresh thread whenever the request has a
//! timeout (so the lookup can be abandoned), and jobwire gives every request one: each
//! call paid a thread spawn, even to an IP literal over a pooled connection — most of the
//! blocking facade's CPU over a raw agent. Here an IP literal needs no lookup at all, and
//! a name is looked up (by ureq's resolver, timeout and all) once per
//! [`CACHE_FOR`] and then answered from memory.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a looked-up name is answered from memory. Short: addresses behind a name
/// may move, and one lookup per half minute costs nothing.
pub(crate) const CACHE_FOR: Duration = Duration::from_secs(30);

/// Names looked up at most; past it the cache starts over (a client talks to few hosts).
const MAX_NAMES: usize = 64;

/// The agent's resolver; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct QuickResolver {
    lookup: DefaultResolver,
    names: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

/// The host and port a URI names, the host without IPv6 brackets.
fn host_and_port(uri: &Uri) -> Option<(&str, u16)> {
    let authority = uri.authority()?;
    let port = authority.port_u16().or(match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port))
}

impl Resolver for QuickResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some((host, port)) = host_and_port(uri) else {
            // Let ureq's resolver say what is wrong with the URI.
            return self.lookup.resolve(uri, config, timeout);
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = format!("{host}:{port}");
        let now = Instant::now();
        {
            let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, addrs)) = names.get(&key) {
                if now.duration_since(*at) < CACHE_FOR {
                    return Ok(addrs.clone());
                }
            }
        }
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if names.len() >= MAX_NAMES {
            names.clear();
        }
        names.insert(key, (now, addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::transport::time::Duration as UreqDuration;

    fn resolve(uri: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = uri.parse().unwrap();
        let timeout = NextTimeout {
            after: UreqDuration::from_secs(5),
            reason: ureq::Timeout::Resolve,
            ..NextTimeout::default()
        };
        QuickResolver::default()
            .resolve(&uri, &Config::default(), timeout)
            .map(|addrs| addrs.to_vec())
    }

    #[test]
    fn ip_literals_need_no_lookup() {
        assert_eq!(
            resolve("http://127.0.0.1:7878/v1").unwrap(),
            ["127.0.0.1:7878".parse().unwrap()]
        );
        assert_eq!(
            resolve("https://[::1]/v1").unwrap(),
            ["[::1]:443".parse().unwrap()]
        );
        assert_eq!(resolve("http://10.1.2.3").unwrap()[0].port(), 80);
    }

    #[test]
    fn names_are_looked_up_then_remembered() {
        let resolver = QuickResolver::default();
        let uri: Uri = "http://localhost:9/".parse().unwrap();
        let timeout = || NextTimeout {
            after: UreqDuration::from_secs(5),
            reason: ureq::Timeout::Resolve,
            ..NextTimeout::default()
        };
        let first = resolver
            .resolve(&uri, &Config::default(), timeout())
            .unwrap();
        assert!(first.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
        assert!(resolver.names.lock().unwrap().contains_key("localhost:9"));
        let again = resolver
            .resolve(&uri, &Config::default(), timeout())
            .unwrap();
        assert_eq!(first.to_vec(), again.to_vec());
    }

    #[test]
    fn bad_uris_are_errors_not_panics() {
        assert!(resolve("ftp://h/").is_err());
    }
}
