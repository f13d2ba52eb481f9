//! Escaping of values printed into tables: labels come from manifests (`resnet_32`, `50%`,
//! `a|b`) and must come out as text, not markup.

/// LaTeX: the ten special characters, as text-mode commands.
pub fn latex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '\\' => out.push_str("\\textbackslash{}"),
            '<' => out.push_str("\\textless{}"),
            '>' => out.push_str("\\textgreater{}"),
            _ => out.push(c),
        }
    }
    out
}

/// Markdown table cells: a backslash before every character that could start markup, and
/// `|`, which would end the cell.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            latex("a_b 50% & $x^2$ {y} #1 ~ \\"),
            "a\\_b 50\\% \\& \\$x\\textasciicircum{}2\\$ \\{y\\} \\#1 \\textasciitilde{} \\textbackslash{}"
        );
        assert_eq!(markdown("a|b *c* _d_ `e`"), "a\\|b \\*c\\* \\_d\\_ \\`e\\`");
        assert_eq!(markdown("57.1 ± 0.3"), "57.1 ± 0.3");
    }
}
