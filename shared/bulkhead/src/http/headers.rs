//! Versions and idempotency keys in request headers, and the entity tag of a version.

use super::Problem;
use axum::http::{HeaderMap, header};

/// The version in `If-Match`, if any: `3`, `"3"` or `W/"3"`. `*` means any version.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| Problem::bad_request("invalid-if-match", "If-Match must be a version number"))
}

/// The `Idempotency-Key` header, if any: 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_string()))
        }
        _ => Err(Problem::bad_request(
            "invalid-idempotency-key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// The strong entity tag of a version.
pub fn etag(version: u64) -> [(header::HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}

/// A header's value, when it is visible ASCII.
pub(super) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn if_match_accepts_plain_quoted_and_weak_versions() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_MATCH, v.parse().unwrap());
            if_match(&h)
        };
        assert_eq!(with("3").unwrap(), Some(3));
        assert_eq!(with("\"4\"").unwrap(), Some(4));
        assert_eq!(with("W/\"5\"").unwrap(), Some(5));
        assert_eq!(with("*").unwrap(), None);
        assert_eq!(with("abc").unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
