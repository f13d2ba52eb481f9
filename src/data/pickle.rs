//! A small, strict reader for the Python pickles of the CIFAR "python version" archives: a dict
//! of lists, strings and one numpy uint8 array. Only the opcodes those files (protocol 2, written
//! by Python 2's cPickle, or re-pickled by Python 3) use are accepted; anything else is an error,
//! never code execution.

use std::collections::HashMap;

/// A decoded pickle value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A `module.name` reference (only numpy's array/dtype constructors are accepted).
    Global(String, String),
    /// `callable(*args)` followed by an optional `__setstate__(state)`.
    Object {
        callable: Box<Value>,
        args: Box<Value>,
        state: Option<Box<Value>>,
    },
}

impl Value {
    /// The text of a str or bytes key (py2 pickles store keys as byte strings).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Removes and returns a dict entry (to move large payloads out without copying).
    pub fn take(&mut self, key: &str) -> Option<Value> {
        match self {
            Value::Dict(items) => {
                let i = items.iter().position(|(k, _)| k.as_text() == Some(key))?;
                Some(items.swap_remove(i).1)
            }
            _ => None,
        }
    }

    /// Looks a key up in a dict value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

const ALLOWED_GLOBALS: [(&str, &str); 7] = [
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
];

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

/// Parses a whole pickle stream; the error string says what and at which byte offset.
pub fn parse(data: &[u8]) -> Result<Value, String> {
    let mut m = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let at = m.pos;
        let op = m.take(1)?[0];
        if op == b'.' {
            return m.pop().map_err(|e| format!("at byte {at}: {e}"));
        }
        m.step(op).map_err(|e| format!("at byte {at}: {e}"))?;
    }
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let slice = &self.data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn sized(&mut self, len_bytes: usize) -> Result<&'a [u8], String> {
        let n = self.uint(len_bytes)?;
        let n = usize::try_from(n).map_err(|_| "length overflow".to_string())?;
        self.take(n)
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("unterminated line")?;
        self.pos += end + 1;
        String::from_utf8(rest[..end].to_vec()).map_err(|_| "non-UTF-8 name".to_string())
    }

    fn pop(&mut self) -> Result<Value, String> {
        self.stack.pop().ok_or_else(|| "stack underflow".to_string())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("MARK missing")?;
        if mark > self.stack.len() {
            return Err("MARK beyond stack".into());
        }
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack.last_mut().ok_or_else(|| "stack underflow".into())
    }

    fn push_str(&mut self, bytes: &[u8]) -> Result<(), String> {
        let s = String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8 string")?;
        self.stack.push(Value::Str(s));
        Ok(())
    }

    fn global(&mut self, module: String, name: String) -> Result<(), String> {
        if !ALLOWED_GLOBALS.contains(&(module.as_str(), name.as_str())) {
            return Err(format!("refusing global {module}.{name}"));
        }
        self.stack.push(Value::Global(module, name));
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), String> {
        let top = self.stack.last().ok_or("PUT on empty stack")?;
        // Writers memoise the pixel payload and the array holding it, but these files never
        // fetch them again; copying them would double peak memory for nothing.
        if !is_large(top) {
            self.memo.insert(key, top.clone());
        }
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), String> {
        let v = self.memo.get(&key).ok_or("unknown memo key")?.clone();
        self.stack.push(v);
        Ok(())
    }

    fn extend_top(&mut self, items: Vec<Value>) -> Result<(), String> {
        match self.top()? {
            Value::List(list) => {
                list.extend(items);
                Ok(())
            }
            _ => Err("APPEND to non-list".into()),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("odd SETITEMS".into());
        }
        let mut it = items.into_iter();
        let pairs: Vec<(Value, Value)> = std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect();
        match self.top()? {
            Value::Dict(d) => {
                d.extend(pairs);
                Ok(())
            }
            _ => Err("SETITEM on non-dict".into()),
        }
    }

    fn step(&mut self, op: u8) -> Result<(), String> {
        match op {
            0x80 => {
                self.take(1)?;
            }
            0x95 => {
                self.take(8)?;
            }
            b'}' => self.stack.push(Value::Dict(Vec::new())),
            b']' => self.stack.push(Value::List(Vec::new())),
            b')' => self.stack.push(Value::Tuple(Vec::new())),
            b'(' => self.marks.push(self.stack.len()),
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'K' => {
                let v = self.uint(1)? as i64;
                self.stack.push(Value::Int(v));
            }
            b'M' => {
                let v = self.uint(2)? as i64;
                self.stack.push(Value::Int(v));
            }
            b'J' => {
                let v = self.uint(4)? as u32 as i32;
                self.stack.push(Value::Int(i64::from(v)));
            }
            0x8a => {
                let bytes = self.sized(1)?;
                if bytes.len() > 8 {
                    return Err("LONG1 wider than 64 bits".into());
                }
                let neg = bytes.last().is_some_and(|b| b & 0x80 != 0);
                let fill = if neg { u64::MAX } else { 0 };
                let v = bytes.iter().rev().fold(fill, |acc, b| (acc << 8) | u64::from(*b));
                self.stack.push(Value::Int(v as i64));
            }
            b'G' => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                self.stack.push(Value::Float(f64::from_be_bytes(a)));
            }
            b'U' => {
                let b = self.sized(1)?;
                self.stack.push(Value::Bytes(b.to_vec()));
            }
            b'T' | b'B' => {
                let b = self.sized(4)?;
                self.stack.push(Value::Bytes(b.to_vec()));
            }
            b'C' => {
                let b = self.sized(1)?;
                self.stack.push(Value::Bytes(b.to_vec()));
            }
            0x8e => {
                let b = self.sized(8)?;
                self.stack.push(Value::Bytes(b.to_vec()));
            }
            0x8c => {
                let b = self.sized(1)?;
                self.push_str(b)?;
            }
            b'X' => {
                let b = self.sized(4)?;
                self.push_str(b)?;
            }
            0x8d => {
                let b = self.sized(8)?;
                self.push_str(b)?;
            }
            b'q' => {
                let k = self.uint(1)? as u32;
                self.memo_put(k)?;
            }
            b'r' => {
                let k = self.uint(4)? as u32;
                self.memo_put(k)?;
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memo_put(k)?;
            }
            b'h' => {
                let k = self.uint(1)? as u32;
                self.memo_get(k)?;
            }
            b'j' => {
                let k = self.uint(4)? as u32;
                self.memo_get(k)?;
            }
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if self.stack.len() < n {
                    return Err("stack underflow".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(items));
            }
            b'a' => {
                let v = self.pop()?;
                self.extend_top(vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_top(items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(module, name)?;
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.global(m, n)?,
                    _ => return Err("STACK_GLOBAL needs two strings".into()),
                }
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                if let Some(bytes) = latin1_bytes(&callable, &args) {
                    self.stack.push(Value::Bytes(bytes));
                    return Ok(());
                }
                self.stack.push(Value::Object {
                    callable: Box::new(callable),
                    args: Box::new(args),
                    state: None,
                });
            }
            b'b' => {
                let state = self.pop()?;
                match self.top()? {
                    Value::Object { state: s, .. } => *s = Some(Box::new(state)),
                    _ => return Err("BUILD on a non-object".into()),
                }
            }
            other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
        }
        Ok(())
    }
}

fn is_large(v: &Value) -> bool {
    match v {
        Value::Bytes(b) => b.len() > 4096,
        Value::Tuple(items) => items.iter().any(is_large),
        Value::Object { state, .. } => state.as_deref().is_some_and(is_large),
        _ => false,
    }
}

/// Python 3 writes `bytes` at protocol 2 as `_codecs.encode(text, "latin1")`.
fn latin1_bytes(callable: &Value, args: &Value) -> Option<Vec<u8>> {
    let Value::Global(m, n) = callable else {
        return None;
    };
    let Value::Tuple(a) = args else { return None };
    match (m.as_str(), n.as_str(), a.as_slice()) {
        ("_codecs", "encode", [Value::Str(text), Value::Str(enc)]) if enc == "latin1" => {
            text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
        }
        _ => None,
    }
}

/// A numpy uint8 array recovered from `numpy.core.multiarray._reconstruct` + `__setstate__`.
pub struct U8Array {
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Extracts a C-ordered uint8 numpy array; anything else (other dtype, Fortran order,
/// inconsistent length) is an error.
pub fn u8_array(value: Value) -> Result<U8Array, String> {
    let Value::Object {
        state: Some(state), ..
    } = value
    else {
        return Err("expected a numpy array".into());
    };
    let Value::Tuple(parts) = *state else {
        return Err("numpy array state is not a tuple".into());
    };
    let Ok([_version, Value::Tuple(shape), dtype, fortran, raw]) = <[Value; 5]>::try_from(parts) else {
        return Err("numpy array state has an unexpected layout".into());
    };
    let shape = shape
        .iter()
        .map(|d| match d {
            Value::Int(n) if *n >= 0 => Ok(*n as usize),
            _ => Err("bad array dimension".to_string()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_u8_dtype(&dtype)?;
    if matches!(fortran, Value::Bool(true)) {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let data = match raw {
        Value::Bytes(b) => b,
        _ => return Err("array payload is not a byte string".into()),
    };
    if data.len() != shape.iter().product::<usize>() {
        return Err(format!(
            "array payload has {} bytes for shape {shape:?}",
            data.len()
        ));
    }
    Ok(U8Array { shape, data })
}

fn check_u8_dtype(dtype: &Value) -> Result<(), String> {
    let Value::Object { args, .. } = dtype else {
        return Err("array dtype is not a numpy dtype".into());
    };
    match args.as_ref() {
        Value::Tuple(a) if a.first().and_then(Value::as_text) == Some("u1") => Ok(()),
        _ => Err("array dtype is not uint8".into()),
    }
}

/// Extracts a list of non-negative integers.
pub fn int_list(value: &Value) -> Result<Vec<usize>, String> {
    let Value::List(items) = value else {
        return Err("expected a list of labels".into());
    };
    items
        .iter()
        .map(|v| match v {
            Value::Int(n) if *n >= 0 => Ok(*n as usize),
            _ => Err("label is not a non-negative integer".to_string()),
        })
        .collect()
}
