//! JSON written straight into a buffer, member by member. Exports render hundreds of thousands
//! of objects; building a `serde_json::Value` tree for each one (and freeing it) cost more than
//! writing the text.

/// An object being written; [`Obj::close`] ends it.
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Obj<'a> {
    pub fn open(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, empty: true }
    }

    pub fn close(self) {
        self.out.push(b'}');
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        text(self.out, key);
        self.out.push(b':');
    }

    /// `key: "value"`.
    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        text(self.out, value);
    }

    /// `key: {…}`, its members written by `f`.
    pub fn obj(&mut self, key: &str, f: impl FnOnce(&mut Obj<'_>)) {
        self.key(key);
        let mut o = Obj::open(self.out);
        f(&mut o);
        o.close();
    }

    /// `key: […]`, its elements written by `f`.
    pub fn arr(&mut self, key: &str, f: impl FnOnce(&mut Arr<'_>)) {
        self.key(key);
        let mut a = Arr::open(self.out);
        f(&mut a);
        a.close();
    }
}

/// An array being written.
pub struct Arr<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Arr<'a> {
    fn open(out: &'a mut Vec<u8>) -> Arr<'a> {
        out.push(b'[');
        Arr { out, empty: true }
    }

    fn close(self) {
        self.out.push(b']');
    }

    fn next(&mut self) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
    }

    /// An object element, its members written by `f`.
    pub fn obj(&mut self, f: impl FnOnce(&mut Obj<'_>)) {
        self.next();
        let mut o = Obj::open(self.out);
        f(&mut o);
        o.close();
    }

    /// A string element.
    pub fn str(&mut self, value: &str) {
        self.next();
        text(self.out, value);
    }
}

/// A JSON string, escaped by serde_json (writing into a `Vec` cannot fail).
fn text(out: &mut Vec<u8>, s: &str) {
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_serde_json_would() {
        let mut out = Vec::new();
        let mut o = Obj::open(&mut out);
        o.str("a", "line\nbreak \"quoted\" \u{1}");
        o.arr("b", |a| {
            a.str("x");
            a.obj(|o| o.str("c", "d"));
        });
        o.obj("e", |_| ());
        o.arr("f", |_| ());
        o.close();
        let back: serde_json::Value =
            serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            back,
            serde_json::json!({"a": "line\nbreak \"quoted\" \u{1}", "b": ["x", {"c": "d"}], "e": {}, "f": []})
        );
    }
}
