//! A minimal XML reader and Canonical XML 1.1 (inclusive, without comments) for the subset
//! of XML that NVIDIA's reference integrity manifests use, written for XMLDSig
//! verification and nothing else.
//!
//! The subset: UTF-8, an optional XML declaration, one root element, elements with
//! attributes and namespace declarations, character data with the five predefined entities
//! and character references. Everything else (DOCTYPE, comments, processing instructions,
//! CDATA sections, `xml:` attributes, undeclaring a namespace) is rejected as
//! [`Reason::RimMalformed`], so that canonicalization never has to guess: a construct it
//! does not implement cannot reach it.
//!
//! Canonicalization follows W3C Canonical XML 1.1 for this subset: no XML declaration,
//! start and end tags for empty elements, namespace declarations rendered where a namespace
//! node first appears (or changes) in the output, sorted by prefix with the default first;
//! attributes sorted by namespace URI then local name (unqualified first); the escapes of
//! sections 2.3 (text: `&amp; &lt; &gt; &#xD;`; attributes: `&amp; &lt; &quot; &#x9; &#xA;
//! &#xD;`). Verifying a real manifest's DigestValue and signature with it is the check that
//! it canonicalizes as the signer did.

use crate::reason::{reject, Reason, Rejection};
use std::collections::BTreeMap;

/// An attribute (not a namespace declaration), its name resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    pub(crate) qname: String,
    /// The namespace URI ("" for an unprefixed attribute).
    pub(crate) ns: String,
    pub(crate) local: String,
    /// The value after attribute-value normalization and entity decoding.
    pub(crate) value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) qname: String,
    /// The element's namespace URI ("" if none).
    pub(crate) ns: String,
    pub(crate) local: String,
    /// Namespace declarations on this element: prefix ("" for the default) to URI.
    pub(crate) ns_decls: Vec<(String, String)>,
    pub(crate) attrs: Vec<Attr>,
    pub(crate) children: Vec<Node>,
}

impl Element {
    /// The value of the attribute with this namespace URI and local name.
    pub(crate) fn attr(&self, ns: &str, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == ns && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// Child elements, in order.
    pub(crate) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| match c {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The concatenated text of the direct text children.
    pub(crate) fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|c| match c {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Whether every text child is whitespace (element-only content).
    pub(crate) fn only_whitespace_text(&self) -> bool {
        self.children.iter().all(|c| match c {
            Node::Text(t) => t.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')),
            Node::Element(_) => true,
        })
    }
}

fn malformed<T>(at: usize, what: impl Into<String>) -> Result<T, Rejection> {
    reject(
        Reason::RimMalformed,
        format!("RIM XML at byte {at}: {}", what.into()),
    )
}

/// Nesting deeper than this is not a manifest.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn starts_with(&self, p: &str) -> bool {
        self.rest().starts_with(p)
    }

    fn skip_ws(&mut self) {
        let n = self
            .rest()
            .find(|c: char| !matches!(c, ' ' | '\t' | '\n' | '\r'))
            .unwrap_or(self.rest().len());
        self.pos += n;
    }

    fn expect(&mut self, p: &str) -> Result<(), Rejection> {
        if self.starts_with(p) {
            self.pos += p.len();
            Ok(())
        } else {
            malformed(self.pos, format!("expected {p:?}"))
        }
    }

    fn name(&mut self) -> Result<&'a str, Rejection> {
        let start = self.pos;
        let rest = self.rest();
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            let ok = if i == 0 {
                c.is_ascii_alphabetic() || c == '_'
            } else {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
            };
            if !ok {
                break;
            }
            end = i + c.len_utf8();
        }
        if end == 0 {
            return malformed(start, "expected a name");
        }
        let name = &rest[..end];
        if name.matches(':').count() > 1 || name.starts_with(':') || name.ends_with(':') {
            return malformed(start, format!("name {name:?} is not a qualified name"));
        }
        self.pos += end;
        Ok(name)
    }

    /// Decode entity and character references in `raw` (attribute values: whitespace
    /// characters become spaces first).
    fn decode(raw: &str, at: usize, attribute: bool) -> Result<String, Rejection> {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(i) = rest.find(['&', '<', '\t', '\n', '\r']) {
            out.push_str(&rest[..i]);
            let c = rest.as_bytes()[i];
            match c {
                b'<' => return malformed(at, "'<' in character data or attribute value"),
                b'\t' | b'\n' | b'\r' => {
                    out.push(if attribute { ' ' } else { char::from(c) });
                    rest = &rest[i + 1..];
                }
                _ => {
                    let Some(end) = rest[i..].find(';') else {
                        return malformed(at, "unterminated reference");
                    };
                    let name = &rest[i + 1..i + end];
                    let ch = match name {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "quot" => '"',
                        "apos" => '\'',
                        _ => {
                            let code = if let Some(hex) = name.strip_prefix("#x") {
                                u32::from_str_radix(hex, 16).ok()
                            } else if let Some(dec) = name.strip_prefix('#') {
                                dec.parse::<u32>().ok()
                            } else {
                                None
                            };
                            match code.and_then(char::from_u32) {
                                Some(ch) if ch != '\0' => ch,
                                _ => {
                                    return malformed(at, format!("unsupported reference &{name};"))
                                }
                            }
                        }
                    };
                    out.push(ch);
                    rest = &rest[i + end + 1..];
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// One element; `scope` holds the namespace bindings in force at its parent.
    fn element(
        &mut self,
        scope: &BTreeMap<String, String>,
        depth: usize,
    ) -> Result<Element, Rejection> {
        if depth > MAX_DEPTH {
            return malformed(self.pos, "elements nested too deeply");
        }
        let start = self.pos;
        self.expect("<")?;
        let qname = self.name()?;
        let mut raw_attrs: Vec<(&str, String, usize)> = Vec::new();
        let mut ns_decls: Vec<(String, String)> = Vec::new();
        let empty = loop {
            let before = self.pos;
            self.skip_ws();
            if self.starts_with("/>") {
                self.pos += 2;
                break true;
            }
            if self.starts_with(">") {
                self.pos += 1;
                break false;
            }
            if before == self.pos {
                return malformed(self.pos, "expected whitespace before an attribute");
            }
            let at = self.pos;
            let name = self.name()?;
            self.skip_ws();
            self.expect("=")?;
            self.skip_ws();
            let quote = match self.rest().chars().next() {
                Some(q @ ('"' | '\'')) => q,
                _ => return malformed(self.pos, "expected a quoted attribute value"),
            };
            self.pos += 1;
            let Some(len) = self.rest().find(quote) else {
                return malformed(at, "unterminated attribute value");
            };
            let raw = &self.rest()[..len];
            self.pos += len + 1;
            let value = Self::decode(raw, at, true)?;
            if name == "xmlns" || name.starts_with("xmlns:") {
                let prefix = name.strip_prefix("xmlns:").unwrap_or("").to_owned();
                if value.is_empty() {
                    return malformed(at, format!("{name}=\"\" (undeclaring) is not supported"));
                }
                if prefix == "xml" || prefix == "xmlns" {
                    return malformed(at, format!("{name} may not be declared"));
                }
                if ns_decls.iter().any(|(p, _)| *p == prefix) {
                    return malformed(at, format!("{name} declared twice"));
                }
                ns_decls.push((prefix, value));
            } else {
                if name.starts_with("xml:") {
                    return malformed(at, format!("attribute {name} is not supported"));
                }
                raw_attrs.push((name, value, at));
            }
        };
        let mut inner = scope.clone();
        for (p, uri) in &ns_decls {
            inner.insert(p.clone(), uri.clone());
        }
        let resolve =
            |qname: &str, at: usize, attribute: bool| -> Result<(String, String), Rejection> {
                match qname.split_once(':') {
                    Some((prefix, local)) => match inner.get(prefix) {
                        Some(uri) => Ok((uri.clone(), local.to_owned())),
                        None => malformed(at, format!("prefix {prefix:?} is not declared")),
                    },
                    // Unprefixed attributes are in no namespace; elements in the default one.
                    None if attribute => Ok((String::new(), qname.to_owned())),
                    None => Ok((inner.get("").cloned().unwrap_or_default(), qname.to_owned())),
                }
            };
        let (ns, local) = resolve(qname, start, false)?;
        let mut attrs: Vec<Attr> = Vec::with_capacity(raw_attrs.len());
        for (name, value, at) in raw_attrs {
            let (ans, alocal) = resolve(name, at, true)?;
            if attrs.iter().any(|a| a.ns == ans && a.local == alocal) {
                return malformed(at, format!("attribute {name} appears twice"));
            }
            attrs.push(Attr {
                qname: name.to_owned(),
                ns: ans,
                local: alocal,
                value,
            });
        }
        let mut children = Vec::new();
        if !empty {
            loop {
                let text_start = self.pos;
                let Some(lt) = self.rest().find('<') else {
                    return malformed(start, format!("element {qname} is not closed"));
                };
                if lt > 0 {
                    let raw = &self.rest()[..lt];
                    children.push(Node::Text(Self::decode(raw, text_start, false)?));
                    self.pos += lt;
                }
                if self.starts_with("</") {
                    self.pos += 2;
                    let at = self.pos;
                    let end = self.name()?;
                    if end != qname {
                        return malformed(at, format!("</{end}> closes <{qname}>"));
                    }
                    self.skip_ws();
                    self.expect(">")?;
                    break;
                }
                if self.starts_with("<!") || self.starts_with("<?") {
                    return malformed(
                        self.pos,
                        "comments, CDATA sections, DOCTYPE and processing instructions are \
                         not supported",
                    );
                }
                children.push(Node::Element(self.element(&inner, depth + 1)?));
            }
        }
        Ok(Element {
            qname: qname.to_owned(),
            ns,
            local,
            ns_decls,
            attrs,
            children,
        })
    }
}

/// Parse a document of the supported subset; returns its root element.
pub(crate) fn parse(bytes: &[u8]) -> Result<Element, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::new(
            Reason::RimMalformed,
            format!("RIM XML is not UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    // XML 1.0 section 2.11: line ends are normalized to LF before parsing.
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut p = Parser {
        s: &normalized,
        pos: 0,
    };
    p.skip_ws();
    if p.starts_with("<?xml ") || p.starts_with("<?xml\t") || p.starts_with("<?xml\n") {
        let Some(end) = p.rest().find("?>") else {
            return malformed(p.pos, "unterminated XML declaration");
        };
        p.pos += end + 2;
        p.skip_ws();
    }
    if p.starts_with("<!") || p.starts_with("<?") {
        return malformed(
            p.pos,
            "comments, DOCTYPE and processing instructions are not supported",
        );
    }
    let root = p.element(&BTreeMap::new(), 0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return malformed(p.pos, "content after the root element");
    }
    Ok(root)
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// Canonical XML 1.1 of the subtree at `el`, as the apex of the node set: `scope` is the
/// namespace bindings in force at its parent (all of them are rendered on the apex, as
/// inclusive canonicalization of a document subset does; empty for a whole document).
/// Elements for which `omit` holds are left out with their subtrees (the enveloped
/// signature transform).
pub(crate) fn canonicalize(
    el: &Element,
    scope: &BTreeMap<String, String>,
    omit: &dyn Fn(&Element) -> bool,
) -> String {
    let mut out = String::new();
    c14n(el, scope, &BTreeMap::new(), omit, &mut out);
    out
}

fn c14n(
    el: &Element,
    scope: &BTreeMap<String, String>,
    rendered: &BTreeMap<String, String>,
    omit: &dyn Fn(&Element) -> bool,
    out: &mut String,
) {
    let mut inscope = scope.clone();
    for (p, uri) in &el.ns_decls {
        inscope.insert(p.clone(), uri.clone());
    }
    out.push('<');
    out.push_str(&el.qname);
    // BTreeMap order: "" (the default namespace) first, then prefixes.
    for (prefix, uri) in &inscope {
        if rendered.get(prefix) == Some(uri) {
            continue;
        }
        if prefix.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(prefix);
            out.push_str("=\"");
        }
        escape_attr(uri, out);
        out.push('"');
    }
    let mut attrs: Vec<&Attr> = el.attrs.iter().collect();
    attrs.sort_by(|a, b| (&a.ns, &a.local).cmp(&(&b.ns, &b.local)));
    for a in attrs {
        out.push(' ');
        out.push_str(&a.qname);
        out.push_str("=\"");
        escape_attr(&a.value, out);
        out.push('"');
    }
    out.push('>');
    for child in &el.children {
        match child {
            Node::Text(t) => escape_text(t, out),
            Node::Element(e) if omit(e) => {}
            Node::Element(e) => c14n(e, &inscope, &inscope, omit, out),
        }
    }
    out.push_str("</");
    out.push_str(&el.qname);
    out.push('>');
}

/// The namespace bindings in force at `target` (its own declarations included), found by
/// walking down from `root`; `None` if `target` is not in the tree.
pub(crate) fn scope_of(root: &Element, target: &Element) -> Option<BTreeMap<String, String>> {
    fn walk(
        el: &Element,
        target: &Element,
        scope: &BTreeMap<String, String>,
    ) -> Option<BTreeMap<String, String>> {
        let mut inner = scope.clone();
        for (p, uri) in &el.ns_decls {
            inner.insert(p.clone(), uri.clone());
        }
        if std::ptr::eq(el, target) {
            return Some(inner);
        }
        el.elements().find_map(|c| walk(c, target, &inner))
    }
    walk(root, target, &BTreeMap::new())
}

/// Fuzzing entry: parse, canonicalize, and check that the canonical form parses and
/// canonicalizes to itself (canonicalization is idempotent).
pub(crate) fn fuzz(bytes: &[u8]) {
    let Ok(root) = parse(bytes) else {
        return;
    };
    let once = canonicalize(&root, &BTreeMap::new(), &|_| false);
    let again = parse(once.as_bytes()).expect("a canonical form parses");
    assert_eq!(
        canonicalize(&again, &BTreeMap::new(), &|_| false),
        once,
        "canonicalization is not idempotent"
    );
    let first = root.elements().next();
    if let Some(first) = first {
        let scope = scope_of(&root, first).expect("a child is in the tree");
        let _ = canonicalize(first, &scope, &|_| false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n_doc(xml: &str) -> String {
        canonicalize(&parse(xml.as_bytes()).unwrap(), &BTreeMap::new(), &|_| {
            false
        })
    }

    #[test]
    fn canonicalizes_the_w3c_style_cases_of_the_subset() {
        // Empty elements, attribute order (unqualified first, then by namespace URI),
        // superfluous namespace declarations dropped, whitespace kept, declaration gone.
        let xml = "<?xml version=\"1.0\"?>\n<a xmlns=\"urn:d\" xmlns:z=\"urn:a\" xmlns:b=\"urn:b\" z:k=\"1\" b:k=\"2\" y=\"3\" x='4'>\n  <b:e xmlns:b=\"urn:b\"/>\n  <c xmlns:q=\"urn:q\" v=\"&lt;&amp;&gt;&quot;&#9;\">t&gt;&#xD;</c>\n</a>\n";
        assert_eq!(
            c14n_doc(xml),
            "<a xmlns=\"urn:d\" xmlns:b=\"urn:b\" xmlns:z=\"urn:a\" x=\"4\" y=\"3\" z:k=\"1\" b:k=\"2\">\n  <b:e></b:e>\n  <c xmlns:q=\"urn:q\" v=\"&lt;&amp;>&quot;&#x9;\">t&gt;&#xD;</c>\n</a>"
        );
        // Attribute whitespace is normalized to spaces by the parser.
        assert_eq!(c14n_doc("<a v=\"x\ty\nz\"/>"), "<a v=\"x y z\"></a>");
    }

    #[test]
    fn a_subset_apex_renders_every_namespace_in_scope() {
        let root = parse(b"<r xmlns=\"urn:d\" xmlns:p=\"urn:p\"><p:s xmlns:ds=\"urn:ds\"><ds:i><ds:j/></ds:i></p:s></r>").unwrap();
        let s = root.elements().next().unwrap();
        let i = s.elements().next().unwrap();
        let scope = scope_of(&root, s).unwrap();
        assert_eq!(
            canonicalize(i, &scope, &|_| false),
            "<ds:i xmlns=\"urn:d\" xmlns:ds=\"urn:ds\" xmlns:p=\"urn:p\"><ds:j></ds:j></ds:i>"
        );
        // Omitting an element leaves the text around it.
        assert_eq!(
            canonicalize(&root, &BTreeMap::new(), &|e| e.local == "s"),
            "<r xmlns=\"urn:d\" xmlns:p=\"urn:p\"></r>"
        );
    }

    #[test]
    fn constructs_outside_the_subset_are_rejected() {
        for bad in [
            "<a><!-- c --></a>",
            "<a><![CDATA[x]]></a>",
            "<!DOCTYPE a><a/>",
            "<a><?pi x?></a>",
            "<a xml:lang=\"en\"/>",
            "<a xmlns:p=\"\"/>",
            "<p:a/>",
            "<a b=\"1\" b=\"2\"/>",
            "<a>&unknown;</a>",
            "<a></b>",
            "<a>",
            "<a/><b/>",
            "<a b=\"<\"/>",
            "<a b=\"1\"c=\"2\"/>",
        ] {
            let err = parse(bad.as_bytes()).unwrap_err();
            assert_eq!(err.reason, Reason::RimMalformed, "{bad}: {err}");
        }
        assert_eq!(
            parse(b"<a>\xff</a>").unwrap_err().reason,
            Reason::RimMalformed
        );
        let deep = "<a>".repeat(MAX_DEPTH + 2);
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().reason,
            Reason::RimMalformed
        );
    }
}
