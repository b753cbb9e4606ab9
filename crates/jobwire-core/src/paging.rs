//! Auto-pagination as a small state machine: which cursor to ask for next, and when to
//! stop — including when a server hands back a cursor it already gave.
//!
//! ```
//! use jobwire_core::paging::Pager;
//! let mut pager = Pager::new(None);
//! assert_eq!(pager.next_request(), Some(None));          // first page, no cursor
//! pager.advance(Some("c1".into())).unwrap();
//! assert_eq!(pager.next_request(), Some(Some("c1")));
//! pager.advance(None).unwrap();                            // last page
//! assert_eq!(pager.next_request(), None);
//! ```

use std::collections::HashSet;

use crate::error::Error;

/// Where a walk through a paged list stands.
#[derive(Debug, Clone)]
pub struct Pager {
    state: State,
    seen: HashSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start(Option<String>),
    Next(String),
    Done,
}

impl Pager {
    /// A walk that starts at `cursor` (the list's beginning when `None`).
    pub fn new(cursor: Option<String>) -> Self {
        let mut seen = HashSet::new();
        if let Some(c) = &cursor {
            seen.insert(c.clone());
        }
        Pager {
            state: State::Start(cursor),
            seen,
        }
    }

    /// The page to fetch next: `Some(cursor)` (`Some(None)` for the first page), or
    /// `None` once the list is exhausted.
    pub fn next_request(&self) -> Option<Option<&str>> {
        match &self.state {
            State::Start(c) => Some(c.as_deref()),
            State::Next(c) => Some(Some(c)),
            State::Done => None,
        }
    }

    /// Records the `next_cursor` of the page just fetched.
    ///
    /// A cursor seen before in this walk would loop forever; it ends the walk with
    /// [`Error::Protocol`] instead.
    pub fn advance(&mut self, next_cursor: Option<String>) -> Result<(), Error> {
        match next_cursor {
            None => {
                self.state = State::Done;
                Ok(())
            }
            Some(c) if c.is_empty() => {
                self.state = State::Done;
                Ok(())
            }
            Some(c) => {
                if !self.seen.insert(c.clone()) {
                    self.state = State::Done;
                    return Err(Error::Protocol(format!(
                        "the server returned cursor {} twice; stopping instead of looping",
                        crate::error::quoted(&c)
                    )));
                }
                self.state = State::Next(c);
                Ok(())
            }
        }
    }

    /// Ends the walk early (a page could not be fetched: the error is the walk's last
    /// item).
    pub fn stop(&mut self) {
        self.state = State::Done;
    }

    /// Whether the walk is over.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: a start cursor, the next_cursor of each page in turn, and what the
    /// pager must ask for before each page (then None) or the page at which it must fail.
    #[test]
    fn walks_table() {
        struct Case {
            start: Option<&'static str>,
            pages: &'static [Option<&'static str>],
            asks: &'static [Option<&'static str>],
            fails_at: Option<usize>,
        }
        let cases = [
            Case {
                start: None,
                pages: &[None],
                asks: &[None],
                fails_at: None,
            },
            Case {
                start: None,
                pages: &[Some("a"), Some("b"), None],
                asks: &[None, Some("a"), Some("b")],
                fails_at: None,
            },
            Case {
                start: Some("x"),
                pages: &[Some("y"), None],
                asks: &[Some("x"), Some("y")],
                fails_at: None,
            },
            // A cursor that does not advance.
            Case {
                start: None,
                pages: &[Some("a"), Some("a")],
                asks: &[None, Some("a")],
                fails_at: Some(1),
            },
            // A cycle through an earlier cursor, including the starting one.
            Case {
                start: Some("s"),
                pages: &[Some("a"), Some("s")],
                asks: &[Some("s"), Some("a")],
                fails_at: Some(1),
            },
            // An empty cursor means the end, like null.
            Case {
                start: None,
                pages: &[Some("")],
                asks: &[None],
                fails_at: None,
            },
        ];
        for (i, case) in cases.iter().enumerate() {
            let mut pager = Pager::new(case.start.map(str::to_owned));
            for (n, next) in case.pages.iter().enumerate() {
                assert_eq!(
                    pager.next_request(),
                    Some(case.asks[n]),
                    "case {i} page {n}"
                );
                let r = pager.advance(next.map(str::to_owned));
                if case.fails_at == Some(n) {
                    assert!(matches!(r, Err(Error::Protocol(_))), "case {i}");
                    break;
                }
                r.unwrap();
            }
            assert_eq!(pager.next_request(), None, "case {i} must end");
            assert!(pager.is_done());
        }
    }
}
