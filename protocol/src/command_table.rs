//! Which arguments of a command are keys, and whether each is read or written.
//!
//! Built once at load (and again when another module loads) from the server's own `COMMAND`
//! reply, so it knows exactly the commands this server has, module commands included. Key
//! positions come from the key specs (Redis ≥ 7.0); a spec the table cannot follow by itself
//! (type `unknown`, or flagged `incomplete`) marks the command as *movable*, and the filter then
//! asks the server (`GetCommandKeysWithFlags`). Pure Rust: the reply is parsed from a
//! [`CommandReply`] tree, so the table is unit-tested without a server.

use rustc_hash::FxHashMap;

/// Whether an access reads or writes the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The command reads the key.
    Read,
    /// The command writes (or deletes) the key.
    Write,
}

/// A command's arguments, as the filter sees them.
pub trait Args {
    /// Number of arguments, the command name included.
    fn count(&self) -> usize;
    /// Argument `i` (0 = the command name).
    fn get(&self, i: usize) -> Option<&[u8]>;
}

impl<T: AsRef<[u8]>> Args for [T] {
    fn count(&self) -> usize {
        self.len()
    }
    fn get(&self, i: usize) -> Option<&[u8]> {
        <[T]>::get(self, i).map(AsRef::as_ref)
    }
}

/// A reply of `COMMAND`, reduced to what the table needs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CommandReply {
    Int(i64),
    Str(Vec<u8>),
    Array(Vec<CommandReply>),
    Nil,
}

/// What the filter does with a command besides counting its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// A command whose keys are counted.
    Keys,
    /// Not counted itself: its inner commands are (`EVAL`, `FCALL`, `EXEC`, `MULTI`, ...).
    Script,
    /// `SELECT db`: changes the client's database.
    Select,
    /// `RESET`: puts the client back in database 0.
    Reset,
    /// No keys at all (`PING`, `INFO`, ...).
    Keyless,
}

/// Where a key spec starts looking.
#[derive(Debug, Clone, PartialEq)]
enum BeginSearch {
    Index(usize),
    /// The first argument after `keyword`, searched from `start_from` (negative: from the end,
    /// backwards).
    Keyword {
        keyword: Box<[u8]>,
        start_from: i64,
    },
}

/// How a key spec finds its keys from where it starts.
#[derive(Debug, Clone, PartialEq)]
enum FindKeys {
    Range {
        last_key: i64,
        key_step: usize,
        limit: usize,
    },
    KeyNum {
        key_num_idx: usize,
        first_key: usize,
        key_step: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct KeySpec {
    begin: BeginSearch,
    find: FindKeys,
    access: Access,
}

/// One command (or subcommand) of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    pub name: Box<str>,
    pub kind: CommandKind,
    /// Whether the command as a whole writes (the fallback for keys whose spec says neither).
    pub access: Access,
    /// The key specs cannot all be followed here: ask the server for the key positions.
    pub movable: bool,
    /// Flagged `readonly`: a replica can serve it.
    pub readonly: bool,
    /// Flagged `blocking`: it may wait for data (`XREAD BLOCK`), so only the master serves it.
    pub blocking: bool,
    /// Its reply depends only on the data (no `nondeterministic_output` tip, as `SRANDMEMBER`
    /// has): a cached reply is what the server would say.
    pub deterministic: bool,
    key_specs: Box<[KeySpec]>,
    /// The common shape, one key at a fixed position (`GET k`, `SET k v`, `HGET k f`), found
    /// without walking the specs.
    single_key: Option<(usize, Access)>,
    has_subcommands: bool,
}

/// Scripts and functions: they declare their keys, and the commands they run are the ones
/// that touch them.
pub const SCRIPTS: &[&str] = &[
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// Commands that run other commands (scripts, transactions); the filter sees the inner ones.
fn runs_others(name: &str) -> bool {
    SCRIPTS.contains(&name) || name == "exec" || name == "multi"
}
/// Longest command name (with `|subcommand`) the table looks up; longer ones are unknown.
const MAX_NAME: usize = 64;

/// The command table: lower-case name (`object|encoding` for subcommands) → spec.
#[derive(Debug, Default)]
pub struct CommandTable {
    specs: Vec<CommandSpec>,
    by_name: FxHashMap<Box<[u8]>, u32>,
    /// Names of up to 16 bytes packed into two words, open addressing: the filter's lookup of
    /// `GET` is a dozen instructions instead of a lower-cased copy and a string hash.
    packed: Box<[PackedSlot]>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PackedSlot {
    name: PackedName,
    /// Index into `specs` + 1; 0 = empty.
    spec: u32,
    /// The command's [`OneKey`] shape, packed (see [`OneKey::pack`]); 0 = another shape.
    one_key: u32,
}

/// A name of at most 16 bytes with its length: the bytes are read as two
/// (possibly overlapping) words, so that packing costs a few loads instead of a loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PackedName {
    lo: u64,
    hi: u64,
    len: u64,
}

/// The common shape of a command, found from the name alone: keys counted, one key at a fixed
/// position, not movable, no subcommands (`GET k`, `SET k v`, `HGET k f`, `INCR k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneKey {
    /// The key's argument index.
    pub position: usize,
    /// How the command touches the key (its key spec's flags).
    pub key: Access,
    /// Whether the command as a whole writes ([`CommandSpec::access`]).
    pub command: Access,
}

impl OneKey {
    /// Position in the upper bits, one bit per access, and a low bit so that 0 means none.
    fn pack(self) -> u32 {
        let bit = |a: Access| u32::from(a == Access::Write);
        (self.position as u32) << 3 | bit(self.key) << 2 | bit(self.command) << 1 | 1
    }

    #[inline]
    fn unpack(packed: u32) -> Option<OneKey> {
        let access = |bit: u32| {
            if packed & bit != 0 {
                Access::Write
            } else {
                Access::Read
            }
        };
        (packed != 0).then(|| OneKey {
            position: (packed >> 3) as usize,
            key: access(4),
            command: access(2),
        })
    }
}

/// What [`CommandTable::lookup_shape`] finds.
#[derive(Debug, Clone, Copy)]
pub enum Shape<'a> {
    /// The common shape, answered from the name table without reading the spec.
    OneKey(OneKey),
    /// Any other command (or subcommand).
    Spec(&'a CommandSpec),
}

impl PackedName {
    /// The name's bytes as sent, not lower-cased (see [`CommandTable::packed_find`]).
    #[inline]
    fn read(name: &[u8]) -> Option<PackedName> {
        let n = name.len();
        // Overlapping reads cover every byte, and the length tells the overlaps apart.
        let (lo, hi) = match n {
            1..=3 => {
                let (first, mid, last) = (name[0], name[n / 2], name[n - 1]);
                (
                    u64::from(first) | u64::from(mid) << 8 | u64::from(last) << 16,
                    0,
                )
            }
            4..=7 => {
                let (head, _) = name.split_first_chunk::<4>()?;
                let (_, tail) = name.split_last_chunk::<4>()?;
                (
                    u64::from(u32::from_le_bytes(*head))
                        | u64::from(u32::from_le_bytes(*tail)) << 32,
                    0,
                )
            }
            8..=16 => {
                let (head, _) = name.split_first_chunk::<8>()?;
                let (_, tail) = name.split_last_chunk::<8>()?;
                (u64::from_le_bytes(*head), u64::from_le_bytes(*tail))
            }
            _ => return None,
        };
        Some(PackedName {
            lo,
            hi,
            len: n as u64,
        })
    }

    /// The same name lower-cased.
    #[inline]
    fn lowered(self) -> PackedName {
        PackedName {
            lo: lower_word(self.lo),
            hi: lower_word(self.hi),
            len: self.len,
        }
    }

    #[inline]
    fn slot(&self, mask: usize) -> usize {
        let h = (self.lo ^ self.hi.rotate_left(29) ^ self.len).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 40) as usize & mask
    }
}

impl CommandTable {
    /// Builds the table from the reply of `COMMAND` (RESP2 shape: key specs as flat arrays).
    /// Entries the table cannot understand are left out (and so are not counted).
    pub fn from_command_reply(reply: &CommandReply) -> CommandTable {
        let mut table = CommandTable::default();
        if let CommandReply::Array(entries) = reply {
            for entry in entries {
                table.add_entry(entry, None);
            }
        }
        table.pack();
        table
    }

    fn add_entry(&mut self, entry: &CommandReply, parent: Option<&str>) {
        let Some(spec) = parse_entry(entry) else {
            return;
        };
        if let Some(CommandReply::Array(subs)) = as_array(entry).and_then(|a| a.get(9)) {
            for sub in subs {
                self.add_entry(sub, Some(&spec.name));
            }
        }
        // Subcommand entries already carry "container|sub" as their name since 7.0; a parent
        // passed here only guards against servers that list the bare subcommand name.
        let name = match parent {
            Some(p) if !spec.name.contains('|') => format!("{p}|{}", spec.name),
            _ => spec.name.to_string(),
        };
        let index = self.specs.len() as u32;
        self.specs.push(CommandSpec {
            name: name.clone().into_boxed_str(),
            ..spec
        });
        self.by_name
            .insert(name.into_bytes().into_boxed_slice(), index);
    }

    /// Fills the packed table: a power of two at least four times its entries (two a name), so
    /// probes are short.
    fn pack(&mut self) {
        let size = (self.by_name.len() * 8).next_power_of_two().max(16);
        let mut packed = vec![PackedSlot::default(); size].into_boxed_slice();
        let mask = size - 1;
        for (name, &index) in &self.by_name {
            let one_key = self
                .specs
                .get(index as usize)
                .and_then(CommandSpec::one_key)
                .map_or(0, OneKey::pack);
            // Each name in lower case and in upper case, as clients send them: either is then
            // found without lower-casing it first.
            let lower = PackedName::read(name);
            let upper = PackedName::read(&name.to_ascii_uppercase()).filter(|u| Some(*u) != lower);
            for p in [lower, upper].into_iter().flatten() {
                let mut i = p.slot(mask);
                while packed[i].spec != 0 {
                    i = (i + 1) & mask;
                }
                packed[i] = PackedSlot {
                    name: p,
                    spec: index + 1,
                    one_key,
                };
            }
        }
        self.packed = packed;
    }

    /// Number of commands and subcommands in the table.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether the table is empty (COMMAND could not be read).
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Heap bytes held, roughly: specs, names, key specs and both indexes.
    pub fn memory_bytes(&self) -> usize {
        let names: usize = self.specs.iter().map(|s| 2 * s.name.len()).sum();
        let key_specs: usize = self
            .specs
            .iter()
            .map(|s| s.key_specs.len() * std::mem::size_of::<KeySpec>())
            .sum();
        self.specs.capacity() * std::mem::size_of::<CommandSpec>()
            + self.by_name.capacity() * (std::mem::size_of::<(Box<[u8]>, u32)>() + 1)
            + self.packed.len() * std::mem::size_of::<PackedSlot>()
            + names
            + key_specs
    }

    /// The spec of the command in `args` (its subcommand's, for containers such as `OBJECT`).
    /// Never allocates.
    #[inline]
    pub fn lookup<A: Args + ?Sized>(&self, args: &A) -> Option<&CommandSpec> {
        let name = args.get(0)?;
        let spec = match PackedName::read(name) {
            Some(p) => self.spec(self.packed_find(p)?)?,
            None => self.get(name)?,
        };
        self.subcommand(spec, name, args)
    }

    /// The filter's lookup: [`CommandTable::lookup`], except that a command of the common shape
    /// is answered from the name table alone. Never allocates.
    #[inline]
    pub fn lookup_shape<A: Args + ?Sized>(&self, args: &A) -> Option<Shape<'_>> {
        let name = args.get(0)?;
        let spec = match PackedName::read(name) {
            Some(p) => {
                let slot = self.packed_find(p)?;
                if let Some(one) = OneKey::unpack(slot.one_key) {
                    return Some(Shape::OneKey(one));
                }
                self.spec(slot)?
            }
            None => self.get(name)?,
        };
        self.subcommand(spec, name, args).map(Shape::Spec)
    }

    #[inline]
    fn spec(&self, slot: &PackedSlot) -> Option<&CommandSpec> {
        self.specs.get((slot.spec as usize).checked_sub(1)?)
    }

    /// `spec` itself, or for a container the spec of the subcommand `args` names.
    #[inline]
    fn subcommand<'a, A: Args + ?Sized>(
        &'a self,
        spec: &'a CommandSpec,
        name: &[u8],
        args: &A,
    ) -> Option<&'a CommandSpec> {
        if !spec.has_subcommands {
            return Some(spec);
        }
        let mut buf = [0u8; MAX_NAME];
        let n = lower_into(&mut buf, 0, name)?;
        *buf.get_mut(n)? = b'|';
        let m = lower_into(&mut buf, n + 1, args.get(1)?)?;
        self.get(&buf[..m])
    }

    /// The slot of a name as sent: the table holds every name in lower and in upper case, so a
    /// name in either is found as it is, and only another (`Get`, or an unknown name) is
    /// lower-cased and looked up again.
    #[inline]
    fn packed_find(&self, p: PackedName) -> Option<&PackedSlot> {
        self.packed_get(p).or_else(|| {
            let lower = p.lowered();
            if lower == p {
                None
            } else {
                self.packed_get(lower)
            }
        })
    }

    #[inline]
    fn packed_get(&self, p: PackedName) -> Option<&PackedSlot> {
        let mask = self.packed.len().checked_sub(1)?;
        let mut i = p.slot(mask);
        loop {
            let slot = self.packed.get(i)?;
            if slot.spec == 0 {
                return None;
            }
            if slot.name == p {
                return Some(slot);
            }
            i = (i + 1) & mask;
        }
    }

    /// Looks up a name of any length (lower-cased here; unknown when over `MAX_NAME`).
    fn get(&self, name: &[u8]) -> Option<&CommandSpec> {
        let mut buf = [0u8; MAX_NAME];
        let n = lower_into(&mut buf, 0, name)?;
        let &index = self.by_name.get(&buf[..n])?;
        self.specs.get(index as usize)
    }
}

/// ASCII-lower-cases the eight bytes of a word at once (bytes ≥ 0x80 are left alone).
#[inline]
fn lower_word(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let seven = x & LOW7;
    // The high bit of each byte: set when the byte is ≥ 'A', and when it is > 'Z'.
    let ge_a = seven + 0x3f3f_3f3f_3f3f_3f3f;
    let gt_z = seven + 0x2525_2525_2525_2525;
    let upper = (ge_a ^ gt_z) & !x & HIGH;
    x | (upper >> 2)
}

/// Lower-cases `src` into `buf[at..]`; returns the end, or None when it does not fit.
fn lower_into(buf: &mut [u8; MAX_NAME], at: usize, src: &[u8]) -> Option<usize> {
    let end = at.checked_add(src.len())?;
    let dst = buf.get_mut(at..end)?;
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_ascii_lowercase();
    }
    Some(end)
}

impl CommandSpec {
    /// The command's shape when it is the common one (see [`OneKey`]).
    pub fn one_key(&self) -> Option<OneKey> {
        let (position, key) = self.single_key?;
        let fits = position < 1 << 28;
        (fits && self.kind == CommandKind::Keys && !self.movable && !self.has_subcommands)
            .then_some(OneKey {
                position,
                key,
                command: self.access,
            })
    }

    /// Flagged `write`, yet no key spec writes: the write is to the keys it names.
    /// `XREADGROUP`'s stream is `RO` in its spec, but it moves the group's pending list, which
    /// `XPENDING` and `XINFO` show.
    pub fn writes_its_read_keys(&self) -> bool {
        self.access == Access::Write
            && !self.key_specs.is_empty()
            && self.key_specs.iter().all(|k| k.access == Access::Read)
    }

    /// Calls `f(argument index, access)` for each key of the command in `args`, found from the
    /// key specs. Must not be used for `movable` commands (the caller asks the server).
    /// Positions outside the arguments are skipped: a malformed command is counted for the keys
    /// it has, and the server then rejects it.
    #[inline]
    pub fn for_each_key<A: Args + ?Sized>(&self, args: &A, mut f: impl FnMut(usize, Access)) {
        let argc = args.count();
        if let Some((pos, access)) = self.single_key {
            if pos < argc {
                f(pos, access);
            }
            return;
        }
        for spec in self.key_specs.iter() {
            let Some(start) = spec.begin.start(args, argc) else {
                continue;
            };
            let access = spec.access;
            match spec.find {
                FindKeys::Range {
                    last_key,
                    key_step,
                    limit,
                } => {
                    let last = if last_key >= 0 {
                        start.saturating_add(last_key as usize)
                    } else {
                        let from_end = argc as i64 + last_key;
                        if from_end < start as i64 {
                            continue;
                        }
                        let mut last = from_end as usize;
                        if last_key == -1 && limit > 1 {
                            let span = (argc - start) / limit;
                            last = start + span.saturating_sub(1);
                        }
                        last
                    };
                    let last = last.min(argc.saturating_sub(1));
                    let mut i = start;
                    while i <= last && i < argc {
                        f(i, access);
                        i += key_step.max(1);
                    }
                }
                FindKeys::KeyNum {
                    key_num_idx,
                    first_key,
                    key_step,
                } => {
                    let Some(n) = args
                        .get(start + key_num_idx)
                        .and_then(parse_count)
                        .filter(|&n| n > 0)
                    else {
                        continue;
                    };
                    let mut i = start + first_key;
                    for _ in 0..n {
                        if i >= argc {
                            break;
                        }
                        f(i, access);
                        i += key_step.max(1);
                    }
                }
            }
        }
    }
}

impl BeginSearch {
    fn start<A: Args + ?Sized>(&self, args: &A, argc: usize) -> Option<usize> {
        match self {
            BeginSearch::Index(i) => (*i < argc).then_some(*i),
            BeginSearch::Keyword {
                keyword,
                start_from,
            } => {
                let matches =
                    |i: usize| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(keyword));
                let found = if *start_from >= 0 {
                    (*start_from as usize..argc).find(|&i| matches(i))
                } else {
                    let first = argc as i64 + start_from;
                    (1..=first.max(0) as usize).rev().find(|&i| matches(i))
                };
                found.map(|i| i + 1).filter(|&i| i < argc)
            }
        }
    }
}

/// Parses a non-negative decimal count argument without allocating.
pub fn parse_count(arg: &[u8]) -> Option<usize> {
    if arg.is_empty() || arg.len() > 18 {
        return None;
    }
    arg.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + usize::from(b - b'0'))
    })
}

fn as_array(r: &CommandReply) -> Option<&[CommandReply]> {
    match r {
        CommandReply::Array(a) => Some(a),
        _ => None,
    }
}

fn as_str(r: &CommandReply) -> Option<&str> {
    match r {
        CommandReply::Str(s) => std::str::from_utf8(s).ok(),
        _ => None,
    }
}

fn as_int(r: &CommandReply) -> Option<i64> {
    match r {
        CommandReply::Int(i) => Some(*i),
        _ => None,
    }
}

/// Looks up `name` in a flat field–value array (RESP2's shape of a map).
fn field<'a>(map: &'a [CommandReply], name: &str) -> Option<&'a CommandReply> {
    map.chunks_exact(2)
        .find(|kv| as_str(&kv[0]).is_some_and(|k| k.eq_ignore_ascii_case(name)))
        .map(|kv| &kv[1])
}

fn strings(r: Option<&CommandReply>) -> impl Iterator<Item = &str> {
    r.and_then(as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(as_str)
}

fn parse_entry(entry: &CommandReply) -> Option<CommandSpec> {
    let e = as_array(entry)?;
    let name = as_str(e.first()?)?.to_ascii_lowercase();
    let mut writes = false;
    let mut movable_flag = false;
    let mut readonly = false;
    let mut blocking = false;
    for flag in strings(e.get(2)) {
        match flag {
            "write" => writes = true,
            "movablekeys" => movable_flag = true,
            "readonly" => readonly = true,
            "blocking" => blocking = true,
            _ => {}
        }
    }
    let deterministic = !strings(e.get(7)).any(|tip| tip.starts_with("nondeterministic_output"));
    let mut movable = false;
    let access = if writes { Access::Write } else { Access::Read };
    let has_subcommands = e
        .get(9)
        .and_then(as_array)
        .is_some_and(|subs| !subs.is_empty());
    let mut key_specs = Vec::new();
    for spec in e.get(8).and_then(as_array).unwrap_or_default() {
        match parse_key_spec(spec, access) {
            Some(s) => key_specs.push(s),
            None => movable = true,
        }
    }
    // `movablekeys` with keyword or keynum specs is followed here; without any spec (a module
    // command with a getkeys callback) only the server knows.
    movable |= movable_flag && key_specs.is_empty();
    // Servers without key specs (or modules that registered none) still give first/last/step.
    let first = e.get(3).and_then(as_int).unwrap_or(0);
    if key_specs.is_empty() && first > 0 {
        let last = e.get(4).and_then(as_int).unwrap_or(first);
        let step = e.get(5).and_then(as_int).unwrap_or(1).max(1);
        key_specs.push(KeySpec {
            begin: BeginSearch::Index(first as usize),
            find: FindKeys::Range {
                last_key: if last < 0 { last } else { last - first },
                key_step: step as usize,
                limit: 0,
            },
            access,
        });
    }
    let kind = if runs_others(&name) {
        CommandKind::Script
    } else if name == "select" {
        CommandKind::Select
    } else if name == "reset" {
        CommandKind::Reset
    } else if key_specs.is_empty() && !movable {
        CommandKind::Keyless
    } else {
        CommandKind::Keys
    };
    let single_key = match key_specs.as_slice() {
        [
            KeySpec {
                begin: BeginSearch::Index(pos),
                find: FindKeys::Range { last_key: 0, .. },
                access,
            },
        ] => Some((*pos, *access)),
        _ => None,
    };
    Some(CommandSpec {
        name: name.into_boxed_str(),
        kind,
        access,
        movable: movable && kind == CommandKind::Keys,
        readonly,
        blocking,
        deterministic,
        key_specs: key_specs.into_boxed_slice(),
        single_key,
        has_subcommands,
    })
}

/// Parses one key spec; None when the table cannot follow it (the command is then movable).
fn parse_key_spec(spec: &CommandReply, command_access: Access) -> Option<KeySpec> {
    let spec = as_array(spec)?;
    let mut access = None;
    for flag in strings(field(spec, "flags")) {
        match flag.to_ascii_uppercase().as_str() {
            "RO" => access = Some(Access::Read),
            "RW" | "OW" | "RM" => access = Some(Access::Write),
            // VARIABLE_FLAGS (SET with GET, ...) keeps the positions; the flags given are the
            // common case. INCOMPLETE specs miss keys: the server must find them.
            "INCOMPLETE" => return None,
            _ => {}
        }
    }
    let begin = as_array(field(spec, "begin_search")?)?;
    let begin_spec = as_array(field(begin, "spec")?)?;
    let begin = match as_str(field(begin, "type")?)? {
        "index" => BeginSearch::Index(usize::try_from(as_int(field(begin_spec, "index")?)?).ok()?),
        "keyword" => BeginSearch::Keyword {
            keyword: as_str(field(begin_spec, "keyword")?)?.as_bytes().into(),
            start_from: as_int(field(begin_spec, "startfrom")?)?,
        },
        _ => return None,
    };
    let find = as_array(field(spec, "find_keys")?)?;
    let find_spec = as_array(field(find, "spec")?)?;
    let uint =
        |name: &str| -> Option<usize> { usize::try_from(as_int(field(find_spec, name)?)?).ok() };
    let find = match as_str(field(find, "type")?)? {
        "range" => FindKeys::Range {
            last_key: as_int(field(find_spec, "lastkey")?)?,
            key_step: uint("keystep")?,
            limit: uint("limit")?,
        },
        "keynum" => FindKeys::KeyNum {
            key_num_idx: uint("keynumidx")?,
            first_key: uint("firstkey")?,
            key_step: uint("keystep")?,
        },
        _ => return None,
    };
    Some(KeySpec {
        begin,
        find,
        access: access.unwrap_or(command_access),
    })
}

/// A table shaped like Redis 7.0's `COMMAND` reply, for unit tests here and in the module.
#[cfg(any(test, feature = "fixture"))]
pub mod fixture;
#[cfg(test)]
mod tests;
