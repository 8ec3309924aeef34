//! Dot segments (`.`, `..`) in request paths, resolved before routing as
//! nginx does, so that a path can never climb out of the route that matched
//! it (`/files/../private`) or reach an upstream as `/static/../secret`.
//!
//! Percent-encoded dots (`%2e`) count as dots. A path that climbs above the
//! root, or that hides a dot segment behind an encoded slash or a backslash
//! (`..%2f`, `..\`), is refused: there is no safe reading of it.

/// The path to route, or `Err` for a path that must be refused (400).
/// `Ok(None)` means the path is already normal (the common case, found
/// without allocating).
pub(crate) fn normalize(path: &str) -> Result<Option<String>, ()> {
    if !path.contains(['.', '%', '\\']) {
        return Ok(None);
    }
    let mut out: Vec<&str> = Vec::new();
    let mut changed = false;
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match dots(seg) {
            Some(1) => {
                changed = true;
                trailing_slash = i == last;
            }
            Some(2) => {
                changed = true;
                out.pop().ok_or(())?;
                trailing_slash = i == last;
            }
            _ => {
                if hides_dot_segment(seg) {
                    return Err(());
                }
                out.push(seg);
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    let mut normal = String::with_capacity(path.len());
    for seg in &out {
        normal.push('/');
        normal.push_str(seg);
    }
    if trailing_slash || normal.is_empty() {
        normal.push('/');
    }
    Ok(Some(normal))
}

/// `Some(1)` for `.`, `Some(2)` for `..` (either possibly percent-encoded).
fn dots(seg: &str) -> Option<usize> {
    let mut n = 0;
    let mut rest = seg.as_bytes();
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[0] == b'%' && rest[1] == b'2' && (rest[2] | 0x20) == b'e'
        {
            rest = &rest[3..];
        } else {
            return None;
        }
        n += 1;
    }
    (n == 1 || n == 2).then_some(n)
}

/// A segment that, once decoded, holds a dot segment between slashes or
/// backslashes (`..%2f`, `%2e%2e%5c`, `..\`): an upstream that decodes it
/// would climb.
fn hides_dot_segment(seg: &str) -> bool {
    if !seg.contains(['%', '\\']) {
        return false;
    }
    let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
    decoded.contains(['/', '\\']) && decoded.split(['/', '\\']).any(|p| p == ".." || p == ".")
}

/// The phase: rewrites the request's path to its normal form, or refuses it.
pub(crate) fn apply(
    mut req: http::Request<crate::Body>,
) -> Result<http::Request<crate::Body>, crate::GatewayError> {
    match normalize(req.uri().path()) {
        Ok(None) => {}
        Ok(Some(normal)) => {
            let uri = match req.uri().query() {
                Some(q) => format!("{normal}?{q}"),
                None => normal,
            };
            if let Ok(uri) = uri.parse() {
                *req.uri_mut() = uri;
            }
        }
        Err(()) => {
            return Err(crate::GatewayError::BadRequest(
                "the path climbs above the root".into(),
            ))
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn dot_segments_are_resolved_or_refused() {
        let ok = |p: &str| normalize(p).unwrap().unwrap_or_else(|| p.to_owned());
        assert_eq!(ok("/a/b"), "/a/b");
        assert_eq!(ok("/v1.2/file.txt"), "/v1.2/file.txt");
        assert_eq!(ok("/files/../private/x"), "/private/x");
        assert_eq!(ok("/files/%2e%2e/private"), "/private");
        assert_eq!(ok("/files/.%2E/private"), "/private");
        assert_eq!(ok("/a/./b/."), "/a/b/");
        assert_eq!(ok("/a/b/.."), "/a/");
        assert_eq!(ok("/a/.."), "/");
        assert_eq!(ok("/a%20b/c"), "/a%20b/c");
        assert_eq!(ok("/..."), "/...");
        for bad in [
            "/..",
            "/../etc/passwd",
            "/a/../../etc",
            "/%2e%2e/x",
            "/files/..%2fprivate",
            "/files/..%2Fprivate",
            "/files/%2e%2e%2fprivate",
            "/files/..%5cprivate",
            "/files/..\\private",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
