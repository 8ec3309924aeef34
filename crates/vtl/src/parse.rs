//! Template text → nodes. Velocity's grammar, the part API Gateway's
//! mapping templates use: text, references (`$a.b.c('x')[0]`, `${a}`,
//! `$!a`, `$!{a}`), `#set`, `#if`/`#elseif`/`#else`/`#end`, `#foreach`,
//! `#break`, `#stop`, comments (`##`, `#* *#`), unparsed `#[[ ]]#` and
//! `\$`/`\#` escapes. A line that holds only a directive leaves nothing in
//! the output (its indentation and its newline go with it).

use crate::Error;

/// The deepest nesting of blocks and expressions a template may have.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Ref(Reference),
    Set(Reference, Expr),
    If(Vec<(Expr, Vec<Node>)>, Option<Vec<Node>>),
    Foreach(String, Expr, Vec<Node>),
    Break,
    Stop,
}

/// `$root.a.b(args)[i]`: its source text is what a null reference writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reference {
    pub(crate) root: String,
    pub(crate) path: Vec<Segment>,
    pub(crate) quiet: bool,
    pub(crate) source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Property(String),
    Method(String, Vec<Expr>),
    Index(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Literal(crate::Value),
    /// A double-quoted string: its references are rendered in.
    Interpolated(Vec<Node>),
    Ref(Reference),
    List(Vec<Expr>),
    Range(Box<Expr>, Box<Expr>),
    Map(Vec<(Expr, Expr)>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// The `$util` functions API Gateway has.
pub(crate) const UTIL_FUNCTIONS: &[&str] = &[
    "escapeJavaScript",
    "parseJson",
    "urlEncode",
    "urlDecode",
    "base64Encode",
    "base64Decode",
];

pub(crate) struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    /// Only spaces since the last newline: a directive here is alone on
    /// its line if nothing but spaces follows it.
    line_clean: bool,
}

/// Where a block ended.
#[derive(Debug, PartialEq)]
enum End {
    Eof,
    /// `#end`.
    Close,
    Else,
    ElseIf(Expr),
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Parser<'a> {
        Parser {
            src,
            pos: 0,
            depth: 0,
            line_clean: true,
        }
    }

    pub(crate) fn template(mut self) -> Result<Vec<Node>, Error> {
        let (nodes, end) = self.block()?;
        match end {
            End::Eof => Ok(nodes),
            End::Close => Err(self.error("#end without a block to end")),
            End::Else | End::ElseIf(_) => Err(self.error("#else or #elseif outside an #if")),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        let before = &self.src[..self.pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Error {
            line,
            column,
            message: message.into(),
        }
    }

    fn deeper(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Nodes up to the end of input or the `#end`/`#else`/`#elseif` of
    /// the block being read.
    fn block(&mut self) -> Result<(Vec<Node>, End), Error> {
        self.deeper()?;
        let mut nodes = Vec::new();
        let mut text = String::new();
        let end = loop {
            let Some(c) = self.peek() else { break End::Eof };
            match c {
                '\\' if self.rest()[1..].starts_with(['$', '#']) => {
                    self.pos += 1;
                    let escaped = self.peek().expect("checked");
                    text.push(escaped);
                    self.pos += 1;
                    self.line_clean = false;
                }
                '$' => match self.reference()? {
                    Some(r) => {
                        flush(&mut nodes, &mut text);
                        nodes.push(Node::Ref(r));
                        self.line_clean = false;
                    }
                    None => {
                        text.push('$');
                        self.pos += 1;
                        self.line_clean = false;
                    }
                },
                '#' => {
                    let line_start = self.line_clean;
                    let start = self.pos;
                    let comment_line = self.rest().starts_with("##");
                    match self.directive(line_start)? {
                        Directive::Text => {
                            text.push('#');
                            self.pos = start + 1;
                            self.line_clean = false;
                        }
                        Directive::Comment => {
                            // A `##` comment takes its newline with it.
                            if comment_line {
                                if line_start {
                                    trim_indent(&mut text);
                                }
                                self.line_clean = true;
                            }
                        }
                        Directive::Raw(raw) => {
                            text.push_str(&raw);
                            self.line_clean = false;
                        }
                        // `#if`/`#foreach`: their header's line was dealt
                        // with before their body, their `#end`'s in it.
                        Directive::Block(n, alone) => {
                            if alone {
                                trim_indent(&mut text);
                            }
                            flush(&mut nodes, &mut text);
                            nodes.push(n);
                        }
                        d => {
                            let alone = line_start && self.gobble_line_end();
                            if alone {
                                trim_indent(&mut text);
                            }
                            self.line_clean = alone;
                            match d {
                                Directive::Node(n) => {
                                    flush(&mut nodes, &mut text);
                                    nodes.push(n);
                                }
                                Directive::End(e) => {
                                    flush(&mut nodes, &mut text);
                                    break e;
                                }
                                _ => unreachable!("handled above"),
                            }
                        }
                    }
                }
                _ => {
                    text.push(c);
                    self.pos += c.len_utf8();
                    if c == '\n' {
                        self.line_clean = true;
                    } else if c != ' ' && c != '\t' && c != '\r' {
                        self.line_clean = false;
                    }
                }
            }
        };
        flush(&mut nodes, &mut text);
        self.depth -= 1;
        Ok((nodes, end))
    }

    /// After a directive that began its line: when only spaces are left on
    /// it, they and the newline are consumed.
    fn gobble_line_end(&mut self) -> bool {
        let rest = self.rest();
        let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        let after = &rest[spaces..];
        if after.is_empty() {
            self.pos += spaces;
            true
        } else if after.starts_with("\r\n") {
            self.pos += spaces + 2;
            true
        } else if after.starts_with('\n') {
            self.pos += spaces + 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<String> {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => return None,
        }
        let end = chars
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            .map_or(rest.len(), |(i, _)| i);
        // A trailing '-' belongs to the text after it ("$a-" is "$a" "-").
        let name = rest[..end].trim_end_matches('-');
        self.pos += name.len();
        Some(name.to_owned())
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// A reference at `$`, or `None` when the `$` is plain text.
    fn reference(&mut self) -> Result<Option<Reference>, Error> {
        let start = self.pos;
        self.pos += 1;
        let quiet = self.eat("!");
        let braced = self.eat("{");
        let Some(root) = self.ident() else {
            self.pos = start;
            return Ok(None);
        };
        let mut path = Vec::new();
        loop {
            if self.rest().starts_with('.') {
                let dot = self.pos;
                self.pos += 1;
                let Some(name) = self.ident() else {
                    self.pos = dot;
                    break;
                };
                if self.eat("(") {
                    let args = self.args(")")?;
                    path.push(Segment::Method(name, args));
                } else {
                    path.push(Segment::Property(name));
                }
            } else if self.rest().starts_with('[') {
                self.pos += 1;
                self.skip_ws();
                let index = self.expr()?;
                self.skip_ws();
                if !self.eat("]") {
                    return Err(self.error("expected ] after an index"));
                }
                path.push(Segment::Index(index));
            } else {
                break;
            }
        }
        if braced && !self.eat("}") {
            return Err(self.error(format!("${{{root}... is not closed with }}")));
        }
        if root == "util" {
            match path.first() {
                Some(Segment::Method(name, _)) if UTIL_FUNCTIONS.contains(&name.as_str()) => {}
                Some(Segment::Method(name, _) | Segment::Property(name)) => {
                    let known = UTIL_FUNCTIONS.join(", ");
                    self.pos = start;
                    return Err(
                        self.error(format!("$util.{name} is not a $util function ({known})"))
                    );
                }
                _ => {}
            }
        }
        Ok(Some(Reference {
            root,
            path,
            quiet,
            source: self.src[start..self.pos].to_owned(),
        }))
    }

    /// Comma-separated expressions up to `close`.
    fn args(&mut self, close: &str) -> Result<Vec<Expr>, Error> {
        self.deeper()?;
        let mut out = Vec::new();
        self.skip_ws();
        if self.eat(close) {
            self.depth -= 1;
            return Ok(out);
        }
        loop {
            self.skip_ws();
            out.push(self.expr()?);
            self.skip_ws();
            if self.eat(close) {
                break;
            }
            if !self.eat(",") {
                return Err(self.error(format!("expected , or {close}")));
            }
        }
        self.depth -= 1;
        Ok(out)
    }

    fn directive(&mut self, line_start: bool) -> Result<Directive, Error> {
        let start = self.pos;
        if self.eat("##") {
            let rest = self.rest();
            let line = rest.find('\n').map_or(rest.len(), |i| i + 1);
            self.pos += line;
            return Ok(Directive::Comment);
        }
        if self.eat("#*") {
            let Some(end) = self.rest().find("*#") else {
                return Err(self.error("a #* comment is not closed with *#"));
            };
            self.pos += end + 2;
            return Ok(Directive::Comment);
        }
        if self.eat("#[[") {
            let Some(end) = self.rest().find("]]#") else {
                return Err(self.error("#[[ is not closed with ]]#"));
            };
            let raw = self.rest()[..end].to_owned();
            self.pos += end + 3;
            return Ok(Directive::Raw(raw));
        }
        self.pos += 1;
        let braced = self.eat("{");
        let Some(name) = self.ident() else {
            self.pos = start;
            return Ok(Directive::Text);
        };
        if braced && !self.eat("}") {
            self.pos = start;
            return Ok(Directive::Text);
        }
        let d = match name.as_str() {
            "set" => {
                self.open_paren("#set")?;
                if self.peek() != Some('$') {
                    return Err(self.error("#set needs a reference: #set($name = value)"));
                }
                let Some(target) = self.reference()? else {
                    return Err(self.error("#set needs a reference: #set($name = value)"));
                };
                if target
                    .path
                    .iter()
                    .any(|s| !matches!(s, Segment::Property(_)))
                {
                    return Err(self.error("#set assigns to $name or $name.property"));
                }
                self.skip_ws();
                if !self.eat("=") {
                    return Err(self.error("expected = in #set"));
                }
                self.skip_ws();
                let value = self.expr()?;
                self.close_paren("#set")?;
                Directive::Node(Node::Set(target, value))
            }
            "if" => {
                let cond = self.condition("#if")?;
                let alone = self.header_alone(line_start);
                Directive::Block(self.if_chain(cond)?, alone)
            }
            "elseif" => {
                let cond = self.condition("#elseif")?;
                Directive::End(End::ElseIf(cond))
            }
            "else" => Directive::End(End::Else),
            "end" => Directive::End(End::Close),
            "foreach" => {
                self.open_paren("#foreach")?;
                if !self.eat("$") {
                    return Err(self.error("#foreach needs a variable: #foreach($x in list)"));
                }
                let Some(var) = self.ident() else {
                    return Err(self.error("#foreach needs a variable: #foreach($x in list)"));
                };
                self.skip_ws();
                if !self.eat("in") {
                    return Err(self.error("expected in: #foreach($x in list)"));
                }
                self.skip_ws();
                let list = self.expr()?;
                self.close_paren("#foreach")?;
                let alone = self.header_alone(line_start);
                let (body, end) = self.block()?;
                if end != End::Close {
                    return Err(self.error("#foreach is not closed with #end"));
                }
                Directive::Block(Node::Foreach(var, list, body), alone)
            }
            "break" => Directive::Node(Node::Break),
            "stop" => Directive::Node(Node::Stop),
            "macro" | "parse" | "include" | "define" | "evaluate" => {
                self.pos = start;
                return Err(self.error(format!(
                    "#{name} is not available in API Gateway mapping templates"
                )));
            }
            // Not a directive Velocity knows: plain text.
            _ => {
                self.pos = start;
                return Ok(Directive::Text);
            }
        };
        Ok(d)
    }

    /// A block's header alone on its line: the rest of the line goes.
    fn header_alone(&mut self, line_start: bool) -> bool {
        let alone = line_start && self.gobble_line_end();
        self.line_clean = alone;
        alone
    }

    fn if_chain(&mut self, first: Expr) -> Result<Node, Error> {
        let mut arms = Vec::new();
        let mut cond = first;
        loop {
            let (body, end) = self.block()?;
            arms.push((cond, body));
            match end {
                End::Close => return Ok(Node::If(arms, None)),
                End::ElseIf(next) => cond = next,
                End::Else => {
                    let (body, end) = self.block()?;
                    if end != End::Close {
                        return Err(self.error("#else is not closed with #end"));
                    }
                    return Ok(Node::If(arms, Some(body)));
                }
                End::Eof => return Err(self.error("#if is not closed with #end")),
            }
        }
    }

    fn open_paren(&mut self, what: &str) -> Result<(), Error> {
        self.skip_ws();
        if !self.eat("(") {
            return Err(self.error(format!("expected ( after {what}")));
        }
        self.skip_ws();
        Ok(())
    }

    fn close_paren(&mut self, what: &str) -> Result<(), Error> {
        self.skip_ws();
        if !self.eat(")") {
            return Err(self.error(format!("expected ) to close {what}")));
        }
        Ok(())
    }

    fn condition(&mut self, what: &str) -> Result<Expr, Error> {
        self.open_paren(what)?;
        let e = self.expr()?;
        self.close_paren(what)?;
        Ok(e)
    }

    fn expr(&mut self) -> Result<Expr, Error> {
        self.deeper()?;
        let e = self.or();
        self.depth -= 1;
        e
    }

    /// An operator at the position (symbols, or Velocity's words followed
    /// by a non-identifier character).
    fn op(&mut self, options: &[(&str, Op)]) -> Option<Op> {
        self.skip_ws();
        for (text, op) in options {
            if self.rest().starts_with(text) {
                let word = text.chars().all(|c| c.is_ascii_alphabetic());
                let after = self.rest()[text.len()..].chars().next();
                if word && after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                // `<` is not `<=`, `=` alone is not `==`.
                if (*text == "<" || *text == ">") && after == Some('=') {
                    continue;
                }
                self.pos += text.len();
                return Some(*op);
            }
        }
        None
    }

    fn or(&mut self) -> Result<Expr, Error> {
        let mut left = self.and()?;
        while let Some(op) = self.op(&[("||", Op::Or), ("or", Op::Or)]) {
            let right = self.and()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, Error> {
        let mut left = self.not()?;
        while let Some(op) = self.op(&[("&&", Op::And), ("and", Op::And)]) {
            let right = self.not()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, Error> {
        self.skip_ws();
        if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            self.pos += 1;
            self.deeper()?;
            let e = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if self.rest().starts_with("not")
            && !self.rest()[3..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 3;
            self.deeper()?;
            let e = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, Error> {
        let left = self.sum()?;
        let ops = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("eq", Op::Eq),
            ("ne", Op::Ne),
            ("le", Op::Le),
            ("ge", Op::Ge),
            ("lt", Op::Lt),
            ("gt", Op::Gt),
        ];
        match self.op(&ops) {
            Some(op) => {
                let right = self.sum()?;
                Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
            }
            None => Ok(left),
        }
    }

    fn sum(&mut self) -> Result<Expr, Error> {
        let mut left = self.product()?;
        while let Some(op) = self.op(&[("+", Op::Add), ("-", Op::Sub)]) {
            let right = self.product()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, Error> {
        let mut left = self.unary()?;
        while let Some(op) = self.op(&[("*", Op::Mul), ("/", Op::Div), ("%", Op::Mod)]) {
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, Error> {
        self.skip_ws();
        if self.rest().starts_with('-')
            && !self.rest()[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            self.pos += 1;
            self.deeper()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, Error> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.error("expected a value"));
        };
        match c {
            '$' => match self.reference()? {
                Some(r) => Ok(Expr::Ref(r)),
                None => Err(self.error("expected a reference after $")),
            },
            '\'' => {
                self.pos += 1;
                let Some(end) = self.rest().find('\'') else {
                    return Err(self.error("a '...' string is not closed"));
                };
                let s = self.rest()[..end].to_owned();
                self.pos += end + 1;
                Ok(Expr::Literal(crate::Value::Str(s)))
            }
            '"' => {
                self.pos += 1;
                let mut end = None;
                let mut i = 0;
                let rest = self.rest();
                let bytes = rest.as_bytes();
                while i < bytes.len() {
                    if bytes[i] == b'"' {
                        // `""` is a quote inside the string.
                        if bytes.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        end = Some(i);
                        break;
                    }
                    i += 1;
                }
                let Some(end) = end else {
                    return Err(self.error("a \"...\" string is not closed"));
                };
                let inner = rest[..end].replace("\"\"", "\"");
                self.pos += end + 1;
                let mut sub = Parser {
                    src: &inner,
                    pos: 0,
                    depth: self.depth,
                    line_clean: false,
                };
                let (nodes, e) = sub.block().map_err(|mut e| {
                    e.line = 0;
                    e
                })?;
                if e != End::Eof {
                    return Err(self.error("a directive inside a string is not closed"));
                }
                match nodes.as_slice() {
                    [] => Ok(Expr::Literal(crate::Value::Str(String::new()))),
                    [Node::Text(t)] => Ok(Expr::Literal(crate::Value::Str(t.clone()))),
                    _ => Ok(Expr::Interpolated(nodes)),
                }
            }
            '[' => {
                self.pos += 1;
                self.skip_ws();
                if self.eat("]") {
                    return Ok(Expr::List(Vec::new()));
                }
                let first = self.expr()?;
                self.skip_ws();
                if self.eat("..") {
                    let last = self.expr()?;
                    self.skip_ws();
                    if !self.eat("]") {
                        return Err(self.error("expected ] after a range"));
                    }
                    return Ok(Expr::Range(Box::new(first), Box::new(last)));
                }
                let mut items = vec![first];
                loop {
                    self.skip_ws();
                    if self.eat("]") {
                        break;
                    }
                    if !self.eat(",") {
                        return Err(self.error("expected , or ] in a list"));
                    }
                    items.push(self.expr()?);
                }
                Ok(Expr::List(items))
            }
            '{' => {
                self.pos += 1;
                let mut pairs = Vec::new();
                self.skip_ws();
                if self.eat("}") {
                    return Ok(Expr::Map(pairs));
                }
                loop {
                    let k = self.expr()?;
                    self.skip_ws();
                    if !self.eat(":") {
                        return Err(self.error("expected : in a map"));
                    }
                    let v = self.expr()?;
                    pairs.push((k, v));
                    self.skip_ws();
                    if self.eat("}") {
                        break;
                    }
                    if !self.eat(",") {
                        return Err(self.error("expected , or } in a map"));
                    }
                }
                Ok(Expr::Map(pairs))
            }
            '(' => {
                self.pos += 1;
                let e = self.expr()?;
                self.skip_ws();
                if !self.eat(")") {
                    return Err(self.error("expected )"));
                }
                Ok(e)
            }
            c if c.is_ascii_digit() || c == '-' => {
                let rest = self.rest();
                let mut end = usize::from(c == '-');
                let bytes = rest.as_bytes();
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                // A `.` followed by a digit makes a decimal (`1..3` is a range).
                let float = bytes.get(end) == Some(&b'.')
                    && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
                if float {
                    end += 1;
                    while end < bytes.len() && bytes[end].is_ascii_digit() {
                        end += 1;
                    }
                }
                let text = &rest[..end];
                self.pos += end;
                let v = if float {
                    text.parse::<f64>().map(crate::Value::Float).ok()
                } else {
                    text.parse::<i64>().map(crate::Value::Int).ok()
                };
                v.map(Expr::Literal)
                    .ok_or_else(|| self.error(format!("{text} is not a number")))
            }
            _ => {
                for (word, v) in [
                    ("true", crate::Value::Bool(true)),
                    ("false", crate::Value::Bool(false)),
                    ("null", crate::Value::Null),
                ] {
                    if self.rest().starts_with(word)
                        && !self.rest()[word.len()..]
                            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    {
                        self.pos += word.len();
                        return Ok(Expr::Literal(v));
                    }
                }
                Err(self.error(format!("unexpected {c:?} in an expression")))
            }
        }
    }
}

enum Directive {
    /// Not a directive: a plain `#`.
    Text,
    Comment,
    Raw(String),
    Node(Node),
    /// A block directive, and whether its header was alone on its line.
    Block(Node, bool),
    End(End),
}

fn flush(nodes: &mut Vec<Node>, text: &mut String) {
    if !text.is_empty() {
        nodes.push(Node::Text(std::mem::take(text)));
    }
}

/// Drops the spaces that indent the directive being removed.
fn trim_indent(text: &mut String) {
    let keep = text.trim_end_matches([' ', '\t']).len();
    text.truncate(keep);
}
