//! Tokens that change: a [`TokenSource`] is asked for the bearer token before each
//! request (a source that caches answers at once), and told when a 401 says the token it
//! gave is no good, so that the next answer is a fresh one; the call is then sent once
//! more. For programs that run longer than their tokens live (as aws-sdk-rust's
//! credential providers do for AWS).
//!
//! A closure is a source:
//!
//! ```
//! use jobwire_core::token::TokenSource;
//! let source = || Ok::<_, std::io::Error>(std::env::var("MY_TOKEN").unwrap_or_default());
//! let config = jobwire_core::ClientConfig::default().token_source(source);
//! # let _ = config;
//! ```

use std::sync::Arc;

use http::header::HeaderValue;

use crate::error::{BoxError, Error};

/// Where the bearer token comes from, when it is not fixed; see the module docs.
///
/// ```
/// use std::sync::Mutex;
/// use jobwire_core::token::TokenSource;
/// use jobwire_core::BoxError;
///
/// /// A token fetched once, and again after the server turned it down.
/// struct Refreshing {
///     cached: Mutex<Option<String>>,
/// }
///
/// impl TokenSource for Refreshing {
///     fn token(&self) -> Result<String, BoxError> {
///         let mut cached = self.cached.lock().unwrap();
///         Ok(cached.get_or_insert_with(|| "fetched".to_owned()).clone())
///     }
///     fn invalidate(&self) {
///         *self.cached.lock().unwrap() = None;
///     }
/// }
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// The token to send now. Asked before every request; an error fails the call with
    /// [`Error::Invalid`] (`what: "token"`), nothing sent.
    fn token(&self) -> Result<String, BoxError>;

    /// A 401 said the token last given is not (or no longer) valid: the next
    /// [`token`](Self::token) should not give it again. Does nothing by default.
    fn invalidate(&self) {}
}

impl std::fmt::Debug for dyn TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.write_str("TokenSource")
    }
}

impl<F, E> TokenSource for F
where
    F: Fn() -> Result<String, E> + Send + Sync + 'static,
    E: Into<BoxError>,
{
    fn token(&self) -> Result<String, BoxError> {
        self().map_err(Into::into)
    }
}

/// A shared token source, as the client's settings keep it.
pub type SharedTokenSource = Arc<dyn TokenSource>;

/// `Authorization: Bearer <token>` from `source`, marked sensitive.
pub(crate) fn authorization(source: &dyn TokenSource) -> Result<HeaderValue, Error> {
    let token = source
        .token()
        .map_err(|e| Error::invalid("token", format!("the token source failed: {e}")))?;
    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| Error::invalid("token", "must be visible ASCII (it goes in a header)"))?;
    // Kept out of HTTP/2 header compression tables and of debug output.
    value.set_sensitive(true);
    Ok(value)
}

/// Puts `source`'s token in `request`'s `Authorization` header.
pub(crate) fn authorize<B>(
    request: &mut http::Request<B>,
    source: &dyn TokenSource,
) -> Result<(), Error> {
    let value = authorization(source)?;
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, value);
    Ok(())
}
