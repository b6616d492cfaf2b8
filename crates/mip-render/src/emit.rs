//! A small, deterministic YAML emitter for the values the tree is built from.
//!
//! The rendered files are read by people in pull requests and compared byte for byte by
//! `mip render --check`, so the layout is fixed here once: block style, two-space indent,
//! sequences indented under their key, mapping keys in insertion order (serde_json's
//! `preserve_order`), strings plain when YAML reads them back as the same string and
//! single-quoted otherwise, multi-line strings as literal blocks. Go templates (`{{ … }}`)
//! are always quoted, so every rendered file, Helm templates included, is valid YAML.

use serde_json::Value;

/// Emits one document (no `---`, ends with a newline).
pub fn document(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    let mut first = true;
    for (k, v) in m {
        if !first {
            pad(out, indent);
        }
        first = false;
        out.push_str(&string(k, indent));
        out.push(':');
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                pad(out, indent + 2);
                map(out, inner, indent + 2);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                pad(out, indent + 2);
                seq(out, items, indent + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn seq(out: &mut String, items: &[Value], indent: usize) {
    let mut first = true;
    for item in items {
        if !first {
            pad(out, indent);
        }
        first = false;
        out.push_str("- ");
        match item {
            Value::Object(inner) if !inner.is_empty() => map(out, inner, indent + 2),
            Value::Array(inner) if !inner.is_empty() => seq(out, inner, indent + 2),
            other => {
                out.push_str(&scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
    }
}

/// Words that YAML 1.1 or 1.2 readers take for something other than a string.
const RESERVED: [&str; 13] =
    ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "", "<<", "="];

fn needs_quotes(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) || s.parse::<f64>().is_ok() {
        return true;
    }
    // Anything made of digits and number punctuation only (`0.28.0`, `1_000`, `12:30`).
    if s.chars().all(|c| c.is_ascii_digit() || "._:+-eEoxX".contains(c))
        && s.chars().any(|c| c.is_ascii_digit())
    {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) && s != "-"
        || first == ' '
        || s.ends_with(' ')
        || s.ends_with(':')
    {
        return true;
    }
    s == "-"
        || s.contains(": ")
        || s.contains(" #")
        || s.contains('{')
        || s.contains('}')
        || s.contains('[')
        || s.contains(']')
        || s.contains(',')
        || s.chars().any(|c| c.is_control())
}

fn string(s: &str, indent: usize) -> String {
    if s.contains('\n')
        && !s.starts_with(' ')
        && !s.ends_with("\n\n")
        && !s.chars().any(|c| c.is_control() && c != '\n')
    {
        let (body, chomp) = match s.strip_suffix('\n') {
            Some(b) if !b.ends_with('\n') => (b, "|"),
            _ => (s, "|-"),
        };
        let mut out = chomp.to_owned();
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.extend(std::iter::repeat_n(' ', indent));
                out.push_str(line);
            }
        }
        return out;
    }
    if s.chars().any(|c| c.is_control()) {
        // JSON string syntax is valid double-quoted YAML.
        return Value::String(s.to_owned()).to_string();
    }
    if needs_quotes(s) { format!("'{}'", s.replace('\'', "''")) } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layout() {
        let v = json!({"a": 1, "b": {"c": [1, {"d": "x", "e": []}], "f": {}}, "g": ["main", "0.28.0", "{{ .x }}", "it's: y"]});
        assert_eq!(
            document(&v),
            "a: 1\nb:\n  c:\n    - 1\n    - d: x\n      e: []\n  f: {}\ng:\n  - main\n  - '0.28.0'\n  - '{{ .x }}'\n  - 'it''s: y'\n"
        );
    }

    #[test]
    fn literal_blocks() {
        let v = json!({"patch": "- op: add\n  path: /x\n"});
        assert_eq!(document(&v), "patch: |\n  - op: add\n    path: /x\n");
    }

    #[test]
    fn round_trips_through_the_parser() {
        let v = json!({"s": ["true", "1", "", "a #b", "-x", "x:", "*", "${X}", "$values/a.yaml", "p, proj:a:b, applications, get, a/*, allow", "multi\nline", "ends\n"], "n": null, "t": true});
        let text = document(&v);
        let back = mip_inventory::yaml::parse_document("t.yaml", &text).expect("parses").to_json();
        assert_eq!(back, v, "{text}");
    }
}
