//! A streaming XLSX writer: an OOXML workbook of inline-string sheets inside a stored (not
//! deflated) ZIP, written entry by entry with data descriptors, so a sheet of any length goes
//! out without being held in memory.

use std::io::{self, Write};

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (ISO 3309, as ZIP uses it), updated incrementally.
#[derive(Clone, Copy)]
struct Crc(u32);

impl Crc {
    fn new() -> Self {
        Crc(0xFFFF_FFFF)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }
    fn value(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

struct Entry {
    name: String,
    crc: u32,
    size: u32,
    offset: u32,
}

fn too_big() -> io::Error {
    io::Error::other("the workbook outgrew the 4 GiB of a ZIP without ZIP64")
}

/// Writes a ZIP archive entry by entry.
pub struct Zip<W: Write> {
    out: W,
    offset: u64,
    done: Vec<Entry>,
    open: Option<(String, Crc, u64, u64)>,
}

impl<W: Write> Zip<W> {
    pub fn new(out: W) -> Self {
        Zip {
            out,
            offset: 0,
            done: Vec::new(),
            open: None,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Starts an entry; the previous one is finished first.
    pub fn start(&mut self, name: &str) -> io::Result<()> {
        self.finish_entry()?;
        let offset = self.offset;
        let mut h = Vec::with_capacity(30 + name.len());
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&20u16.to_le_bytes()); // version needed
        h.extend_from_slice(&(0x0008u16 | 0x0800).to_le_bytes()); // data descriptor, UTF-8 names
        h.extend_from_slice(&0u16.to_le_bytes()); // stored
        h.extend_from_slice(&0u16.to_le_bytes()); // time
        h.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
        h.extend_from_slice(&[0; 12]); // crc and sizes follow the data
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        self.put(&h)?;
        self.open = Some((name.to_owned(), Crc::new(), 0, offset));
        Ok(())
    }

    fn finish_entry(&mut self) -> io::Result<()> {
        let Some((name, crc, size, offset)) = self.open.take() else {
            return Ok(());
        };
        let size = u32::try_from(size).map_err(|_| too_big())?;
        let offset = u32::try_from(offset).map_err(|_| too_big())?;
        let crc = crc.value();
        let mut d = Vec::with_capacity(16);
        d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        self.put(&d)?;
        self.done.push(Entry {
            name,
            crc,
            size,
            offset,
        });
        Ok(())
    }

    /// Finishes the last entry and writes the central directory.
    pub fn finish(mut self) -> io::Result<W> {
        self.finish_entry()?;
        let start = u32::try_from(self.offset).map_err(|_| too_big())?;
        let entries = std::mem::take(&mut self.done);
        for e in &entries {
            let mut c = Vec::with_capacity(46 + e.name.len());
            c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            c.extend_from_slice(&20u16.to_le_bytes()); // made by
            c.extend_from_slice(&20u16.to_le_bytes()); // needed
            c.extend_from_slice(&(0x0008u16 | 0x0800).to_le_bytes());
            c.extend_from_slice(&0u16.to_le_bytes());
            c.extend_from_slice(&0u16.to_le_bytes());
            c.extend_from_slice(&0x21u16.to_le_bytes());
            c.extend_from_slice(&e.crc.to_le_bytes());
            c.extend_from_slice(&e.size.to_le_bytes());
            c.extend_from_slice(&e.size.to_le_bytes());
            c.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            c.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
            c.extend_from_slice(&e.offset.to_le_bytes());
            c.extend_from_slice(e.name.as_bytes());
            self.put(&c)?;
        }
        let size = u32::try_from(self.offset).map_err(|_| too_big())? - start;
        let n = entries.len() as u16;
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&[0; 4]);
        end.extend_from_slice(&n.to_le_bytes());
        end.extend_from_slice(&n.to_le_bytes());
        end.extend_from_slice(&size.to_le_bytes());
        end.extend_from_slice(&start.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        self.put(&end)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Zip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some((_, crc, size, _)) = self.open.as_mut() else {
            return Err(io::Error::other("no open ZIP entry"));
        };
        crc.update(buf);
        *size += buf.len() as u64;
        self.out.write_all(buf)?;
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Text as XML character data: escaped, and without the control characters XML 1.0 forbids.
pub fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn column(mut n: usize) -> String {
    let mut s = Vec::new();
    n += 1;
    while n > 0 {
        let r = (n - 1) % 26;
        s.push(b'A' + r as u8);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8_lossy(&s).into_owned()
}

/// A workbook being written: sheets one after the other, rows streamed into each.
pub struct Workbook<W: Write> {
    zip: Zip<W>,
    sheets: Vec<String>,
    row: usize,
}

impl<W: Write> Workbook<W> {
    pub fn new(out: W) -> Self {
        Workbook {
            zip: Zip::new(out),
            sheets: Vec::new(),
            row: 0,
        }
    }

    fn end_sheet(&mut self) -> io::Result<()> {
        if !self.sheets.is_empty() {
            self.zip.write_all(b"</sheetData></worksheet>")?;
        }
        Ok(())
    }

    /// Starts the next sheet.
    pub fn sheet(&mut self, name: &str) -> io::Result<()> {
        self.end_sheet()?;
        self.sheets.push(name.to_owned());
        self.row = 0;
        self.zip
            .start(&format!("xl/worksheets/sheet{}.xml", self.sheets.len()))?;
        self.zip.write_all(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>",
        )
    }

    /// Appends a row of text cells to the current sheet.
    pub fn row(&mut self, cells: &[String]) -> io::Result<()> {
        self.row += 1;
        let r = self.row;
        let mut xml = format!("<row r=\"{r}\">");
        for (i, c) in cells.iter().enumerate() {
            if c.is_empty() {
                continue;
            }
            xml.push_str(&format!(
                "<c r=\"{}{r}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{}</t></is></c>",
                column(i),
                xml_text(c)
            ));
        }
        xml.push_str("</row>");
        self.zip.write_all(xml.as_bytes())
    }

    /// Writes the workbook's parts around the sheets and closes the archive.
    pub fn finish(mut self) -> io::Result<W> {
        self.end_sheet()?;
        let n = self.sheets.len();
        let mut types = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/><Override PartName=\"/xl/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>",
        );
        let mut sheets = String::new();
        let mut rels = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
        );
        for (i, name) in self.sheets.iter().enumerate() {
            let k = i + 1;
            types.push_str(&format!("<Override PartName=\"/xl/worksheets/sheet{k}.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"));
            sheets.push_str(&format!(
                "<sheet name=\"{}\" sheetId=\"{k}\" r:id=\"rId{k}\"/>",
                xml_text(name)
            ));
            rels.push_str(&format!("<Relationship Id=\"rId{k}\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet{k}.xml\"/>"));
        }
        types.push_str("</Types>");
        rels.push_str(&format!("<Relationship Id=\"rId{}\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" Target=\"styles.xml\"/></Relationships>", n + 1));
        let parts = [
            ("[Content_Types].xml", types),
            ("_rels/.rels", "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>".to_owned()),
            ("xl/workbook.xml", format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets>{sheets}</sheets></workbook>")),
            ("xl/_rels/workbook.xml.rels", rels),
            ("xl/styles.xml", "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><fonts count=\"1\"><font><sz val=\"11\"/><name val=\"Calibri\"/></font></fonts><fills count=\"2\"><fill><patternFill patternType=\"none\"/></fill><fill><patternFill patternType=\"gray125\"/></fill></fills><borders count=\"1\"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\"/></cellStyleXfs><cellXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\"/></cellXfs></styleSheet>".to_owned()),
        ];
        for (name, body) in parts {
            self.zip.start(name)?;
            self.zip.write_all(body.as_bytes())?;
        }
        self.zip.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let mut c = Crc::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xCBF4_3926);
    }

    #[test]
    fn columns_run_a_to_ae() {
        assert_eq!(column(0), "A");
        assert_eq!(column(25), "Z");
        assert_eq!(column(26), "AA");
        assert_eq!(column(30), "AE");
    }

    #[test]
    fn xml_text_escapes_and_drops_forbidden_characters() {
        assert_eq!(xml_text("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
