//! Shortening text for display: pure, counted in characters so a cut never splits one
//! (task results and worker output are any UTF-8).

/// `s` unchanged when it has at most `max` characters; otherwise its first `max - 1`
/// characters and `…`, so the result is never longer than `max` characters.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
            format!("{}…", &s[..end])
        }
    }
}

/// Keeps `s` under `max` bytes by dropping its front half when it grows past `max`
/// (cut on a character boundary): for text read piece by piece whose end matters
/// (an agent's reply, whose tail becomes the result).
pub fn keep_tail(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut cut = s.len() - max / 2;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    s.drain(..cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_ends_in_an_ellipsis_within_max() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("", 0), "");
        assert_eq!(truncate_chars("a", 0), "…");
        // Characters, not bytes: a cut never splits one.
        assert_eq!(truncate_chars("ééééé", 4), "ééé…");
        assert_eq!(truncate_chars("ééééé", 4).chars().count(), 4);
    }

    #[test]
    fn keep_tail_drops_the_front_on_a_char_boundary() {
        let mut s = "é".repeat(10); // 20 bytes
        keep_tail(&mut s, 20);
        assert_eq!(s.len(), 20, "at the bound nothing goes");
        s.push('x');
        keep_tail(&mut s, 20);
        assert!(s.len() <= 11 && s.ends_with("éx"), "{s:?}");
    }
}
