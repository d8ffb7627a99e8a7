//! Reading records from CSV or JSON Lines (optionally gzip-compressed), one at a time, with
//! the line number and raw text of each, so an unreadable record can be quarantined while the
//! rest of the file goes on.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use flate2::read::MultiGzDecoder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv { delimiter: u8 },
    JsonLines,
}

impl Format {
    /// From the file name: `.jsonl`/`.ndjson`/`.json` (also under `.gz`) are JSON Lines,
    /// `.tsv` is tab-separated, anything else CSV.
    pub fn from_path(path: &Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
            Self::JsonLines
        } else if name.ends_with(".tsv") {
            Self::Csv { delimiter: b'\t' }
        } else {
            Self::Csv { delimiter: b',' }
        }
    }
}

/// Why a record could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("wrong column count: {got} fields, the header has {expected}")]
    WrongColumnCount { expected: usize, got: usize },
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A NUL character: no database text holds one (PostgreSQL refuses it).
    #[error("NUL byte in a value")]
    NulByte,
}

impl ReadError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::WrongColumnCount { .. } => "wrong column count",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::MalformedJson(_) => "malformed JSON",
            Self::NulByte => "NUL byte",
        }
    }
}

/// One record: where it was and its values, or why it could not be read (with its text).
#[derive(Debug, Clone)]
pub struct Record {
    pub line: u64,
    pub values: Result<Values, (ReadError, String)>,
}

#[derive(Debug, Clone)]
pub enum Values {
    /// CSV fields, in header order (see [`Records::header`]).
    Csv(csv::StringRecord),
    Json(HashMap<String, String>),
}

impl Values {
    /// The record as text again, for the quarantine.
    pub fn raw(&self, delimiter: u8) -> String {
        match self {
            Values::Csv(record) => {
                join_csv(record.iter().map(std::borrow::Cow::Borrowed), delimiter)
            }
            Values::Json(map) => serde_json::to_string(map).unwrap_or_default(),
        }
    }

    /// The value of CSV field `index`, or of JSON key `key`.
    pub fn field(&self, index: Option<usize>, key: &str) -> Option<&str> {
        match self {
            Values::Csv(record) => index.and_then(|i| record.get(i)),
            Values::Json(map) => map.get(key).map(String::as_str),
        }
    }
}

/// Counts bytes read from the underlying file (compressed bytes for `.gz`), for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Writes every line end (`\r\n`, or a lone `\r` as classic Mac files have) as `\n`. The CSV
/// reader ends records at any of them but numbers a record by the `\n`s before it as it
/// starts, which puts every record after a `\r\n` one line short and every record after a
/// lone `\r` on the same line; after this a refused record is named by the line a user sees.
struct LfLines<R> {
    inner: R,
    /// A `\r` read last, whose fate waits on the next byte.
    held: bool,
}

impl<R: BufRead> Read for LfLines<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.held {
            self.held = false;
            if self.inner.fill_buf()?.first() != Some(&b'\n') {
                out[0] = b'\n';
                return Ok(1);
            }
            // `\r\n`: the `\n` that follows stands for both.
        }
        let avail = self.inner.fill_buf()?;
        let take = avail.len().min(out.len());
        let (mut used, mut written) = (0, 0);
        while used < take {
            let b = avail[used];
            used += 1;
            if b == b'\r' {
                match avail.get(used) {
                    Some(b'\n') => continue,
                    Some(_) => out[written] = b'\n',
                    None => {
                        self.held = true;
                        break;
                    }
                }
            } else {
                out[written] = b;
            }
            written += 1;
        }
        self.inner.consume(used);
        if written == 0 && (used > 0 || self.held) {
            return self.read(out);
        }
        Ok(written)
    }
}

/// A stream of records.
pub struct Records {
    format: Format,
    csv: Option<csv::Reader<Box<dyn Read + Send>>>,
    lines: Option<Box<dyn BufRead + Send>>,
    header: Vec<String>,
    line: u64,
    bytes: Arc<AtomicU64>,
}

impl Records {
    /// Opens `path`; `.gz` files are decompressed on the fly.
    pub fn open(path: &Path, format: Format) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let is_gz = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = Counting {
            inner: file,
            count: bytes.clone(),
        };
        let reader: Box<dyn Read + Send> = if is_gz {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                1 << 16,
                counted,
            )))
        } else {
            Box::new(counted)
        };
        Self::new(reader, format, bytes)
    }

    /// Reads from memory (HTTP bodies, tests).
    pub fn from_bytes(data: Vec<u8>, format: Format) -> std::io::Result<Self> {
        let bytes = Arc::new(AtomicU64::new(0));
        let reader: Box<dyn Read + Send> = Box::new(Counting {
            inner: std::io::Cursor::new(data),
            count: bytes.clone(),
        });
        Self::new(reader, format, bytes)
    }

    fn new(
        reader: Box<dyn Read + Send>,
        format: Format,
        bytes: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let mut records = Self {
            format,
            csv: None,
            lines: None,
            header: Vec::new(),
            line: 0,
            bytes,
        };
        match format {
            Format::Csv { delimiter } => {
                let reader: Box<dyn Read + Send> = Box::new(LfLines {
                    inner: BufReader::with_capacity(1 << 16, reader),
                    held: false,
                });
                let mut csv = csv::ReaderBuilder::new()
                    .delimiter(delimiter)
                    .flexible(true)
                    .has_headers(true)
                    .from_reader(reader);
                let header = csv.byte_headers().map_err(std::io::Error::other)?.clone();
                records.header = header
                    .iter()
                    .map(|h| {
                        String::from_utf8_lossy(h)
                            .trim()
                            .trim_start_matches('\u{feff}')
                            .to_owned()
                    })
                    .collect();
                records.csv = Some(csv);
            }
            Format::JsonLines => {
                records.lines = Some(Box::new(BufReader::with_capacity(1 << 16, reader)));
            }
        }
        Ok(records)
    }

    /// CSV header names (empty for JSON Lines, whose keys are per record).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// A CSV source with nothing in it: no header row (zero bytes, or only blank lines). A
    /// header without records is not empty; it reads no rows.
    pub fn is_empty_csv(&self) -> bool {
        matches!(self.format, Format::Csv { .. })
            && self.header.iter().all(String::is_empty)
            && self.header.len() <= 1
    }

    /// The line reading has reached (for a source that breaks off half-way).
    pub fn line(&self) -> u64 {
        match &self.csv {
            Some(csv) => csv.position().line(),
            None => self.line,
        }
    }

    /// Bytes consumed from the source so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The delimiter, for turning records back into text.
    pub fn delimiter(&self) -> u8 {
        match self.format {
            Format::Csv { delimiter } => delimiter,
            Format::JsonLines => b',',
        }
    }

    /// The next record, or `None` at the end. I/O errors end the file with an error.
    pub fn next_record(&mut self) -> std::io::Result<Option<Record>> {
        if let Some(csv) = self.csv.as_mut() {
            let mut record = csv::ByteRecord::new();
            loop {
                if !csv
                    .read_byte_record(&mut record)
                    .map_err(std::io::Error::other)?
                {
                    return Ok(None);
                }
                // Blank lines carry no record.
                if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
                    continue;
                }
                break;
            }
            let line = record.position().map_or(0, |p| p.line());
            let width = record.len();
            let values = match csv::StringRecord::from_byte_record(record) {
                Err(e) => {
                    let bytes = e.into_byte_record();
                    let raw = join_csv(bytes.iter().map(String::from_utf8_lossy), self.delimiter());
                    Err((ReadError::InvalidUtf8, without_nul(raw)))
                }
                Ok(fields) if width != self.header.len() => {
                    let raw = join_csv(
                        fields.iter().map(std::borrow::Cow::Borrowed),
                        self.delimiter(),
                    );
                    Err((
                        ReadError::WrongColumnCount {
                            expected: self.header.len(),
                            got: width,
                        },
                        without_nul(raw),
                    ))
                }
                Ok(fields) if fields.iter().any(|f| f.contains('\0')) => {
                    let raw = join_csv(
                        fields.iter().map(std::borrow::Cow::Borrowed),
                        self.delimiter(),
                    );
                    Err((ReadError::NulByte, without_nul(raw)))
                }
                Ok(fields) => Ok(Values::Csv(fields)),
            };
            return Ok(Some(Record { line, values }));
        }
        let Some(lines) = self.lines.as_mut() else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if lines.read_until(b'\n', &mut buf)? == 0 {
                return Ok(None);
            }
            self.line += 1;
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buf.pop();
            }
            if !buf.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        let values = match std::str::from_utf8(&buf) {
            Err(_) => Err((
                ReadError::InvalidUtf8,
                without_nul(String::from_utf8_lossy(&buf).into_owned()),
            )),
            Ok(text) => {
                match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
                    Err(e) => Err((
                        ReadError::MalformedJson(e.to_string()),
                        without_nul(text.to_owned()),
                    )),
                    Ok(map) => {
                        let map: HashMap<String, String> =
                            map.into_iter().map(|(k, v)| (k, json_text(v))).collect();
                        if map
                            .iter()
                            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
                        {
                            Err((ReadError::NulByte, without_nul(text.to_owned())))
                        } else {
                            Ok(Values::Json(map))
                        }
                    }
                }
            }
        };
        Ok(Some(Record {
            line: self.line,
            values,
        }))
    }
}

/// A record's text for the quarantine, NUL characters (raw, or decoded from `\u0000`)
/// shown as U+FFFD: no database text holds a NUL.
fn without_nul(raw: String) -> String {
    if raw.contains('\0') {
        raw.replace('\0', "\u{fffd}")
    } else {
        raw
    }
}

/// A JSON value as the text a CSV cell would hold.
pub fn json_text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Fields joined as CSV text (quotes where needed), for the quarantine.
fn join_csv<'a>(fields: impl Iterator<Item = std::borrow::Cow<'a, str>>, delimiter: u8) -> String {
    let mut out = String::new();
    for (i, text) in fields.enumerate() {
        if i > 0 {
            out.push(delimiter as char);
        }
        if text.contains([delimiter as char, '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], format: Format) -> Vec<Record> {
        let mut r = Records::from_bytes(data.to_vec(), format).unwrap();
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec);
        }
        out
    }

    #[test]
    fn csv_records_carry_line_numbers_and_problems() {
        let mut data = b"id,name,qty\n1,a,2\n2,b\n3,\"multi\nline\",4\n4,".to_vec();
        data.extend_from_slice(b"\xff\xfe,5\n\n");
        let recs = read_all(&data, Format::Csv { delimiter: b',' });
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].line, 2);
        assert!(recs[0].values.is_ok());
        let (error, raw) = recs[1].values.as_ref().unwrap_err();
        assert_eq!(
            error,
            &ReadError::WrongColumnCount {
                expected: 3,
                got: 2
            }
        );
        assert_eq!(raw, "2,b");
        assert_eq!(recs[2].line, 4);
        assert!(recs[2].values.is_ok(), "quoted newline stays in one record");
        let (error, raw) = recs[3].values.as_ref().unwrap_err();
        assert_eq!(error, &ReadError::InvalidUtf8);
        assert_eq!(raw, "4,\u{fffd}\u{fffd},5");
    }

    #[test]
    fn json_lines_read_values_as_text() {
        let data =
            b"{\"id\": \"1\", \"qty\": 2, \"note\": null}\n\n{\"id\": \"2\", \"qty\n{\"id\": 3}\n";
        let recs = read_all(data, Format::JsonLines);
        assert_eq!(recs.len(), 3);
        let Ok(Values::Json(m)) = &recs[0].values else {
            panic!()
        };
        assert_eq!(m["qty"], "2");
        assert_eq!(m["note"], "");
        assert_eq!(recs[1].line, 3);
        assert_eq!(
            recs[1].values.as_ref().unwrap_err().0.reason(),
            "malformed JSON"
        );
        assert_eq!(recs[2].line, 4);
    }

    #[test]
    fn a_csv_without_a_header_row_is_empty() {
        let csv = Format::Csv { delimiter: b',' };
        for data in [&b""[..], b"\n", b"\n\n  \n", b"\xef\xbb\xbf"] {
            let r = Records::from_bytes(data.to_vec(), csv).unwrap();
            assert!(r.is_empty_csv(), "{data:?}: {:?}", r.header());
        }
        for data in [&b"id,name\n"[..], b"id", b",,\n"] {
            let r = Records::from_bytes(data.to_vec(), csv).unwrap();
            assert!(!r.is_empty_csv(), "{data:?}");
        }
        let r = Records::from_bytes(Vec::new(), Format::JsonLines).unwrap();
        assert!(!r.is_empty_csv());
    }

    #[test]
    fn a_nul_is_refused_at_its_line_and_never_kept() {
        let recs = read_all(
            b"id,name\n1,a\n2,b\0c\n3,c\n",
            Format::Csv { delimiter: b',' },
        );
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].line, 3);
        let (error, raw) = recs[1].values.as_ref().unwrap_err();
        assert_eq!(error.reason(), "NUL byte");
        assert_eq!(raw, "2,b\u{fffd}c");
        assert!(recs[2].values.is_ok());
        let recs = read_all(
            b"{\"id\": \"1\"}\n{\"id\": \"2\\u0000\"}\n{\"id\\u0000\": 3}\n",
            Format::JsonLines,
        );
        let reasons: Vec<&str> = recs
            .iter()
            .map(|r| r.values.as_ref().map_or_else(|e| e.0.reason(), |_| "ok"))
            .collect();
        assert_eq!(reasons, ["ok", "NUL byte", "NUL byte"]);
        assert!(recs.iter().all(|r| match &r.values {
            Err((_, raw)) => !raw.contains('\0'),
            Ok(_) => true,
        }));
    }

    #[test]
    fn lines_ending_in_crlf_or_a_lone_cr_are_counted_as_lines() {
        let recs = read_all(b"id,n\r1,a\r2\r\n3,c\r", Format::Csv { delimiter: b',' });
        let lines: Vec<u64> = recs.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        let crlf = read_all(
            b"id,n\r\n1,a\r\n2\r\n3,c\r\n",
            Format::Csv { delimiter: b',' },
        );
        let lines: Vec<u64> = crlf.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        assert_eq!(
            recs[1].values.as_ref().unwrap_err().0.reason(),
            "wrong column count"
        );
        // One byte at a time, a held `\r` still becomes what the next byte decides.
        for capacity in [1, 2, 64] {
            let mut r = LfLines {
                inner: BufReader::with_capacity(capacity, &b"a\rb\r\n\r\nc\r"[..]),
                held: false,
            };
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, b"a\nb\n\nc\n", "capacity {capacity}");
        }
    }

    #[test]
    fn formats_follow_the_file_name() {
        assert_eq!(
            Format::from_path(Path::new("a/b.csv.gz")),
            Format::Csv { delimiter: b',' }
        );
        assert_eq!(Format::from_path(Path::new("x.JSONL")), Format::JsonLines);
        assert_eq!(
            Format::from_path(Path::new("x.ndjson.gz")),
            Format::JsonLines
        );
        assert_eq!(
            Format::from_path(Path::new("x.tsv")),
            Format::Csv { delimiter: b'\t' }
        );
    }
}
