//! CloudWatch Logs JSON filter patterns, evaluated locally: the subset the
//! templates use (`$.a.b` and `$.a[0]` selectors, `=` and `!=` against
//! quoted strings with `*` wildcards or integers, `EXISTS` and `NOT EXISTS`,
//! `&&`, `||`, parentheses).
//! As in CloudWatch, a comparison with a field the event lacks is false,
//! `!=` included. The same semantics as `scripts/filter-share.py`.

use serde_json::Value;

/// A parsed pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `""`: every event.
    All,
    /// A JSON expression.
    Expr(Node),
}

#[derive(Debug, Clone)]
pub enum Node {
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Cmp {
        path: String,
        equal: bool,
        literal: Literal,
    },
    /// `EXISTS` / `NOT EXISTS`.
    Exists {
        path: String,
        exists: bool,
    },
}

#[derive(Debug, Clone)]
pub enum Literal {
    Text(String),
    Number(i64),
}

fn tokens(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' => i += 1,
            b'(' | b')' => {
                out.push((b[i] as char).to_string());
                i += 1;
            }
            b'&' | b'|' => {
                out.push(text[i..i + 2].to_owned());
                i += 2;
            }
            b'!' => {
                out.push("!=".into());
                i += 2;
            }
            b'=' => {
                out.push("=".into());
                i += 1;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                out.push(text[i..=j].to_owned());
                i = j + 1;
            }
            _ => {
                let mut j = i;
                while j < b.len() && !b" ()=!&|".contains(&b[j]) {
                    j += 1;
                }
                out.push(text[i..j].to_owned());
                i = j;
            }
        }
    }
    out
}

struct Parser {
    t: Vec<String>,
    i: usize,
}

impl Parser {
    fn take(&mut self) -> String {
        self.i += 1;
        self.t.get(self.i - 1).cloned().expect("pattern ends early")
    }
    fn peek(&self) -> Option<&str> {
        self.t.get(self.i).map(String::as_str)
    }
    fn expr(&mut self) -> Node {
        let mut n = self.conj();
        while self.peek() == Some("||") {
            self.take();
            n = Node::Or(Box::new(n), Box::new(self.conj()));
        }
        n
    }
    fn conj(&mut self) -> Node {
        let mut n = self.atom();
        while self.peek() == Some("&&") {
            self.take();
            n = Node::And(Box::new(n), Box::new(self.atom()));
        }
        n
    }
    fn atom(&mut self) -> Node {
        let tok = self.take();
        if tok == "(" {
            let n = self.expr();
            assert_eq!(self.take(), ")", "unbalanced parentheses");
            return n;
        }
        assert!(tok.starts_with("$."), "expected a selector, got {tok}");
        match self.peek() {
            Some("EXISTS") => {
                self.take();
                return Node::Exists {
                    path: tok,
                    exists: true,
                };
            }
            Some("NOT") => {
                self.take();
                assert_eq!(self.take(), "EXISTS", "NOT must be followed by EXISTS");
                return Node::Exists {
                    path: tok,
                    exists: false,
                };
            }
            _ => {}
        }
        let op = self.take();
        let lit = self.take();
        let literal = if lit.starts_with('"') {
            Literal::Text(serde_json::from_str(&lit).expect("a JSON string"))
        } else {
            Literal::Number(lit.parse().expect("an integer"))
        };
        Node::Cmp {
            path: tok,
            equal: op == "=",
            literal,
        }
    }
}

/// Parses a pattern as CloudWatch reads the templates' defaults.
pub fn parse(pattern: &str) -> Pattern {
    let text = pattern.trim();
    if text.is_empty() {
        return Pattern::All;
    }
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .expect("a JSON filter pattern is wrapped in braces");
    let mut p = Parser {
        t: tokens(inner),
        i: 0,
    };
    let n = p.expr();
    assert!(p.peek().is_none(), "trailing tokens in {pattern}");
    Pattern::Expr(n)
}

fn select<'v>(event: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = event;
    for part in path.trim_start_matches("$.").split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, Some(rest.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (part, None),
        };
        cur = cur.get(name)?;
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

fn eval(node: &Node, event: &Value) -> bool {
    match node {
        Node::Or(a, b) => eval(a, event) || eval(b, event),
        Node::And(a, b) => eval(a, event) && eval(b, event),
        Node::Exists { path, exists } => select(event, path).is_some() == *exists,
        Node::Cmp {
            path,
            equal,
            literal,
        } => {
            let Some(v) = select(event, path) else {
                return false;
            };
            let hit = match (literal, v) {
                (Literal::Text(t), Value::String(s)) => wildcard(t, s),
                (Literal::Number(n), Value::Number(m)) => m.as_i64() == Some(*n),
                _ => return false,
            };
            hit == *equal
        }
    }
}

impl Pattern {
    /// True when CloudWatch would forward `event`.
    pub fn passes(&self, event: &Value) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Expr(n) => eval(n, event),
        }
    }
}
