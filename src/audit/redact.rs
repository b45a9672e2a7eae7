//! Explanations echo what a request sent (a token type, a scope, an issuer); a client that puts
//! a token or a secret in the wrong parameter must not get it into the audit log or an error
//! body. Whatever looks like one is cut to a short prefix.

/// Runs of token characters (base64url, JWT dots, percent-escapes) at least this long are
/// elided: a secret is 43, a JWT far more; an agent id (a UUID) is 36, and stays.
const LONGEST_KEPT: usize = 39;
/// What stays of an elided run, enough to recognise it.
const PREFIX: usize = 8;
/// The longest explanation kept, in characters.
const MAX_CHARS: usize = 512;

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '=' | '%')
}

/// `text` with every long run of token characters cut to its first few, and the whole cut to
/// [`MAX_CHARS`].
pub fn elide_tokens(text: &str) -> String {
    fn flush(run: &mut String, out: &mut String) {
        if run.chars().count() > LONGEST_KEPT {
            out.extend(run.chars().take(PREFIX));
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    }
    let mut out = String::with_capacity(text.len().min(MAX_CHARS + 3));
    let mut run = String::new();
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    if out.chars().count() > MAX_CHARS {
        out = out.chars().take(MAX_CHARS).collect();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::elide_tokens;

    #[test]
    fn a_token_in_an_explanation_is_cut_to_its_prefix() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
        assert_eq!(
            elide_tokens(&format!("subject_token_type \"{jwt}\" is not supported")),
            "subject_token_type \"eyJhbGci…\" is not supported"
        );
        let secret = "Zm9vYmFyYmF6cXV4cXV1eHF1dXpmb29iYXJiYXpxdXg";
        assert_eq!(secret.len(), 43);
        assert_eq!(elide_tokens(secret), "Zm9vYmFy…");
    }

    #[test]
    fn ids_names_and_urls_are_kept() {
        let text = "agent 01a22f5f-af22-75d6-a1a8-9869a4a83016 holds no role on api://hotel-api \
                    (issuer https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0)";
        assert_eq!(elide_tokens(text), text);
    }

    #[test]
    fn a_long_explanation_is_bounded() {
        let text = "a ".repeat(1000);
        let cut = elide_tokens(&text);
        assert_eq!(cut.chars().count(), 513);
        assert!(cut.ends_with('…'));
    }
}
