//! Percent-encoding for path segments and query values (RFC 3986 unreserved set kept).

/// Encodes `s` for use as one path segment or one query value.
///
/// ```
/// assert_eq!(jobwire_core::endpoint::encode_component("a b/c?d"), "a%20b%2Fc%3Fd");
/// assert_eq!(jobwire_core::endpoint::encode_component("svc_1-x.y~z"), "svc_1-x.y~z");
/// ```
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string built pair by pair, values encoded.
#[derive(Default)]
pub(crate) struct Query(String);

impl Query {
    pub(crate) fn push(&mut self, key: &str, value: &str) {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(key);
        self.0.push('=');
        self.0.push_str(&encode_component(value));
    }

    pub(crate) fn push_opt(&mut self, key: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.push(key, &v.to_string());
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_non_ascii_as_utf8_bytes() {
        assert_eq!(encode_component("é"), "%C3%A9");
        assert_eq!(encode_component(""), "");
        let mut q = Query::default();
        q.push("a", "1 2");
        q.push_opt("b", Some(3));
        q.push_opt("c", None::<u32>);
        assert_eq!(q.as_str(), "?a=1%202&b=3");
    }
}
