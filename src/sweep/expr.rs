//! Filter expressions of sweep files: arithmetic and comparisons over numeric scenario
//! fields named by dotted path, e.g. `parallel.tp * parallel.pp <= 64`.
//!
//! Grammar: `cmp := sum (op sum)?` with `op` one of `== != <= >= < >`; `sum := prod
//! (('+'|'-') prod)*`; `prod := atom (('*'|'/'|'%') atom)*`; `atom := number | path |
//! '(' sum ')' | '-' atom`. Booleans evaluate to 1 (true) or 0 (false).

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Literal.
    Num(f64),
    /// Dotted field path.
    Field(String),
    /// Negation.
    Neg(Box<Expr>),
    /// Binary operation.
    Bin(Box<Expr>, Op, Box<Expr>),
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// +
    Add,
    /// -
    Sub,
    /// *
    Mul,
    /// /
    Div,
    /// %
    Rem,
    /// ==
    Eq,
    /// !=
    Ne,
    /// <=
    Le,
    /// >=
    Ge,
    /// <
    Lt,
    /// >
    Gt,
}

/// Longest filter accepted, in bytes.
pub const MAX_LEN: usize = 1000;
/// Deepest nesting of parentheses and unary minus accepted.
pub const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.sum()?;
        for (t, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(t) {
                let r = self.sum()?;
                return Ok(Expr::Bin(Box::new(l), op, Box::new(r)));
            }
        }
        Ok(l)
    }
    fn sum(&mut self) -> Result<Expr, String> {
        let mut l = self.prod()?;
        loop {
            let op = if self.eat("+") {
                Op::Add
            } else if self.eat("-") {
                Op::Sub
            } else {
                return Ok(l);
            };
            l = Expr::Bin(Box::new(l), op, Box::new(self.prod()?));
        }
    }
    fn prod(&mut self) -> Result<Expr, String> {
        let mut l = self.atom()?;
        loop {
            let op = if self.eat("*") {
                Op::Mul
            } else if self.eat("/") {
                Op::Div
            } else if self.eat("%") {
                Op::Rem
            } else {
                return Ok(l);
            };
            l = Expr::Bin(Box::new(l), op, Box::new(self.atom()?));
        }
    }
    fn nested(&mut self) -> Result<Expr, String> {
        if self.eat("(") {
            let e = self.sum()?;
            if !self.eat(")") {
                return Err(format!("expected ')' at character {}", self.i + 1));
            }
            return Ok(e);
        }
        self.eat("-");
        Ok(Expr::Neg(Box::new(self.atom()?)))
    }
    fn atom(&mut self) -> Result<Expr, String> {
        self.ws();
        if self.s[self.i..].starts_with(b"(") || self.s[self.i..].starts_with(b"-") {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(format!(
                    "nested more than {MAX_DEPTH} deep (parentheses and minus signs) at character {}",
                    self.i + 1
                ));
            }
            let e = self.nested();
            self.depth -= 1;
            return e;
        }
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || b"._".contains(&self.s[self.i])) {
            self.i += 1;
        }
        let tok = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        if tok.is_empty() {
            return Err(format!("expected a number or a field at character {}", start + 1));
        }
        match tok.parse::<f64>() {
            Ok(v) => Ok(Expr::Num(v)),
            Err(_) if tok.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => Ok(Expr::Field(tok.to_string())),
            Err(_) => Err(format!("'{tok}' is neither a number nor a field path")),
        }
    }
}

/// Parses `text`.
pub fn parse(text: &str) -> Result<Expr, String> {
    if text.len() > MAX_LEN {
        return Err(format!(
            "{} characters long, more than the limit of {MAX_LEN}",
            text.len()
        ));
    }
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let e = p.cmp()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected '{}' at character {}", &text[p.i..], p.i + 1));
    }
    Ok(e)
}

impl Expr {
    /// Evaluates with `lookup` resolving field paths.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<f64>) -> Result<f64, String> {
        Ok(match self {
            Expr::Num(v) => *v,
            Expr::Field(f) => lookup(f).ok_or_else(|| format!("field `{f}` has no numeric value at this point"))?,
            Expr::Neg(e) => -e.eval(lookup)?,
            Expr::Bin(l, op, r) => {
                let (a, b) = (l.eval(lookup)?, r.eval(lookup)?);
                let t = |c: bool| if c { 1.0 } else { 0.0 };
                match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => a / b,
                    Op::Rem => a % b,
                    Op::Eq => t((a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)),
                    Op::Ne => t((a - b).abs() > 1e-9 * a.abs().max(b.abs()).max(1.0)),
                    Op::Le => t(a <= b),
                    Op::Ge => t(a >= b),
                    Op::Lt => t(a < b),
                    Op::Gt => t(a > b),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates_with_precedence() {
        let look = |f: &str| match f {
            "parallel.tp" => Some(8.0),
            "parallel.pp" => Some(4.0),
            "cluster.num_gpus" => Some(64.0),
            _ => None,
        };
        let e = parse("parallel.tp * parallel.pp * 2 == cluster.num_gpus").unwrap();
        assert_eq!(e.eval(&look).unwrap(), 1.0);
        assert_eq!(parse("1 + 2 * 3").unwrap().eval(&look).unwrap(), 7.0);
        assert_eq!(parse("(1 + 2) * 3 > 8").unwrap().eval(&look).unwrap(), 1.0);
        assert_eq!(parse("-parallel.tp % 3").unwrap().eval(&look).unwrap(), -2.0);
        assert!(parse("parallel.tp *").is_err());
        assert!(parse("tp ) ").is_err());
        assert!(parse("model.layers > 2").unwrap().eval(&look).is_err());
    }

    /// Deep nesting and long filters are refused with a clear error, not a stack overflow.
    #[test]
    fn deep_or_long_filters_are_refused() {
        let look = |_: &str| Some(1.0);
        let nest = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(parse(&nest(MAX_DEPTH)).unwrap().eval(&look).unwrap(), 1.0);
        let e = parse(&nest(MAX_DEPTH + 1)).unwrap_err();
        assert!(e.contains("nested more than 64 deep"), "{e}");
        let e = parse(&format!("{}1", "-".repeat(MAX_DEPTH + 1))).unwrap_err();
        assert!(e.contains("nested more than 64 deep"), "{e}");
        let e = parse(&nest(100_000)).unwrap_err();
        assert!(e.contains("more than the limit of 1000"), "{e}");
        let e = parse(&"1 + ".repeat(300)).unwrap_err();
        assert!(e.contains("more than the limit"), "{e}");
    }
}
