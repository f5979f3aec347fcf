//! JSON text written by hand in ASCII: the shapes a host takes as one-byte text (the Node
//! package's decisions and batch errors).

/// JSON text written by hand, ASCII only: a decision is a few known keys, strings, numbers and
/// booleans, and a generic serialiser spent a sixth of a Node decision's time writing them.
pub(crate) struct AsciiJson(pub(crate) String);

impl AsciiJson {
    pub(crate) fn raw(&mut self, text: &str) {
        self.0.push_str(text);
    }

    pub(crate) fn number(&mut self, n: u64) {
        use std::fmt::Write as _;
        let _ = write!(self.0, "{n}");
    }

    /// A JSON string: `"` and `\` escaped, control characters and every non-ASCII character
    /// as `\u` escapes (UTF-16 code units: a surrogate pair above U+FFFF). Runs of characters
    /// that need no escape are copied whole.
    pub(crate) fn string(&mut self, s: &str) {
        use std::fmt::Write as _;
        self.0.push('"');
        let bytes = s.as_bytes();
        let (mut run, mut i) = (0, 0);
        while let Some(&b) = bytes.get(i) {
            if (b' '..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                i += 1;
                continue;
            }
            // `i` is at a character boundary: an ASCII byte, or the first byte of a character
            self.0.push_str(s.get(run..i).unwrap_or_default());
            let width = match b {
                b'"' => self.push(r#"\""#),
                b'\\' => self.push(r"\\"),
                b'\n' => self.push(r"\n"),
                b'\r' => self.push(r"\r"),
                b'\t' => self.push(r"\t"),
                _ => {
                    let c = s.get(i..).and_then(|rest| rest.chars().next()).unwrap_or(char::REPLACEMENT_CHARACTER);
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let _ = write!(self.0, r"\u{unit:04x}");
                    }
                    c.len_utf8()
                }
            };
            i += width;
            run = i;
        }
        self.0.push_str(s.get(run..).unwrap_or_default());
        self.0.push('"');
    }

    /// Writes an escape standing for one ASCII byte; that byte's width.
    fn push(&mut self, escape: &str) -> usize {
        self.0.push_str(escape);
        1
    }

    pub(crate) fn strings(&mut self, list: &[String]) {
        self.0.push('[');
        for (i, s) in list.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.string(s);
        }
        self.0.push(']');
    }
}
