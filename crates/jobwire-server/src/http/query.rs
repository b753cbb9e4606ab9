//! Query strings and pagination: decoding `?a=1&b=2` (repeated keys kept), `limit`,
//! opaque cursors, and the RFC 8288 `Link: <…>; rel="next"` header.

use super::problem::ApiError;

/// Default page size.
pub(crate) const DEFAULT_LIMIT: usize = 50;
/// Largest page size.
pub(crate) const MAX_LIMIT: usize = 1000;

/// A decoded query string, in order, with repeated keys kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a `%` not
/// followed by two hex digits stays as it is. The result must be UTF-8.
fn decode(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request("the query string is not valid UTF-8 once decoded"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Query {
    /// Decodes a raw query string (`None` when the URI has none).
    pub(crate) fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        for piece in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            pairs.push((decode(k)?, decode(v)?));
        }
        Ok(Query { pairs })
    }

    /// The first value of a string parameter, where an empty one (`cursor=`) is the same
    /// as none: forms and generated clients send those for "not set".
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `limit`: default 50, 1 to 1000.
    pub(crate) fn limit(&self) -> Result<usize, ApiError> {
        let Some(raw) = self.get("limit") else {
            return Ok(DEFAULT_LIMIT);
        };
        match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}, not {raw:?}"
            ))),
        }
    }

    /// The `Link` header value pointing at the next page: this query with `cursor`
    /// replaced.
    pub(crate) fn next_link(&self, path: &str, cursor: &str) -> String {
        let mut parts: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| k != "cursor")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        parts.push(format!("cursor={}", encode(cursor)));
        format!("<{path}?{}>; rel=\"next\"", parts.join("&"))
    }
}

/// Which list a cursor belongs to (a cursor of one list is refused by another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorKind {
    /// `GET /v1/services`: the cursor is the last sequence number seen, ascending.
    Services,
    /// `GET /v1/jobs`: the cursor is the last sequence number seen, descending.
    Jobs,
}

impl CursorKind {
    fn prefix(self) -> &'static str {
        match self {
            CursorKind::Services => "s1.",
            CursorKind::Jobs => "j1.",
        }
    }
}

/// An opaque cursor for a position in a list.
pub(crate) fn encode_cursor(kind: CursorKind, seq: i64) -> String {
    format!("{}{seq:016x}", kind.prefix())
}

/// The position in a cursor; 400 when it was not made by [`encode_cursor`] for `kind`.
pub(crate) fn decode_cursor(kind: CursorKind, raw: &str) -> Result<i64, ApiError> {
    raw.strip_prefix(kind.prefix())
        .filter(|hex| hex.len() == 16 && hex.bytes().all(|b| hex_value(b).is_some()))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        // Every cursor of the documented shape is read; one past the end is the end.
        .map(|seq| i64::try_from(seq).unwrap_or(i64::MAX))
        .ok_or_else(|| {
            ApiError::bad_request("the cursor is not valid: pass next_cursor from a previous page of the same list unchanged")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let q = Query::parse(Some(
            "a=1&label=env%3Aprod&label=team:x+y&b&%zz=%4&c=%C3%A9",
        ))
        .unwrap();
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.all("label").collect::<Vec<_>>(), ["env:prod", "team:x y"]);
        assert_eq!(q.get("b"), Some(""));
        assert_eq!(q.text("b"), None, "an empty string parameter is no value");
        assert_eq!(q.get("%zz"), Some("%4"));
        assert_eq!(q.get("c"), Some("é"));
        assert_eq!(q.get("missing"), None);
        assert!(Query::parse(Some("a=%FF")).is_err());
        assert_eq!(Query::parse(None).unwrap(), Query::default());
    }

    #[test]
    fn limits() {
        for (raw, want) in [
            (None, Some(50)),
            (Some("limit=1"), Some(1)),
            (Some("limit=1000"), Some(1000)),
            (Some("limit=0"), None),
            (Some("limit=1001"), None),
            (Some("limit=-1"), None),
            (Some("limit=ten"), None),
            (Some("limit="), None),
        ] {
            let got = Query::parse(raw).unwrap().limit().ok();
            assert_eq!(got, want, "{raw:?}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for seq in [1, 42, i64::MAX] {
            let c = encode_cursor(CursorKind::Jobs, seq);
            assert_eq!(decode_cursor(CursorKind::Jobs, &c).ok(), Some(seq));
            assert!(decode_cursor(CursorKind::Services, &c).is_err());
        }
        for bad in [
            "",
            "garbage",
            "j1.",
            "j1.zz00000000000000",
            "j1.000000000000002a0",
        ] {
            assert!(decode_cursor(CursorKind::Jobs, bad).is_err(), "{bad}");
        }
        // Every cursor of the documented shape is read: the start, and past the end.
        assert_eq!(
            decode_cursor(CursorKind::Jobs, "j1.0000000000000000").ok(),
            Some(0)
        );
        assert_eq!(
            decode_cursor(CursorKind::Jobs, "j1.ffffffffffffffff").ok(),
            Some(i64::MAX)
        );
    }

    #[test]
    fn next_link_replaces_cursor() {
        let q = Query::parse(Some("limit=2&cursor=old&label=a%3Ab")).unwrap();
        assert_eq!(
            q.next_link("/v1/jobs", "j1.00000000000000ff"),
            "</v1/jobs?limit=2&label=a%3Ab&cursor=j1.00000000000000ff>; rel=\"next\""
        );
    }
}
