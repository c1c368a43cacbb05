//! Deterministic clean-up of dictated text: spoken punctuation and layout ("comma", "new
//! line"), the user's replacements, filler words, then whitespace and capitals repaired where
//! an edit left them wrong. Applied by the worker to provisional and final text alike, and by
//! `v2m-cli refine` to any text.
//!
//! Whisper punctuates what it hears, spoken commands included ("Hello comma, world period."):
//! a command replaces the punctuation Whisper put on its own words and right before them.
//! A command word after an article or a determiner ("a period of time", "the comma") is a
//! word, not a command.

use crate::config::TextTable;
use regex::{Regex, RegexBuilder};

/// How a mark joins the words around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glue {
    /// To the word before (`,` `.` `)` a closing quote).
    Left,
    /// To the word after (`(` an opening quote).
    Right,
    /// To both (`-`, `/`).
    Both,
    /// A line break: no space on either side.
    Line,
}

/// One spoken command: its words (lower case) and what it writes.
#[derive(Debug, Clone)]
struct Command {
    words: Vec<String>,
    mark: String,
    glue: Glue,
    /// The next word starts a sentence.
    ends_sentence: bool,
}

/// English spoken punctuation, the default table.
pub const DEFAULT_PUNCTUATION: &[(&str, &str)] = &[
    ("comma", ","),
    ("period", "."),
    ("full stop", "."),
    ("question mark", "?"),
    ("exclamation mark", "!"),
    ("exclamation point", "!"),
    ("colon", ":"),
    ("semicolon", ";"),
    ("semi colon", ";"),
    ("dot dot dot", "..."),
    ("ellipsis", "..."),
    ("hyphen", "-"),
    ("open quote", "\""),
    ("close quote", "\""),
    ("end quote", "\""),
    ("unquote", "\""),
    ("open parenthesis", "("),
    ("close parenthesis", ")"),
    ("open bracket", "("),
    ("close bracket", ")"),
    ("new line", "\n"),
    ("newline", "\n"),
    ("new paragraph", "\n\n"),
];

/// Hesitations dropped by default.
pub const DEFAULT_FILLERS: &[&str] = &["um", "umm", "uh", "uhh", "uhm", "erm", "er", "hmm"];

/// Words after which a command word is a noun ("a period of time").
const DETERMINERS: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "each", "every", "per", "one", "any",
    "which", "what", "my", "your", "his", "her", "its", "our", "their", "no",
];

/// Punctuation Whisper writes on words, stripped where a command replaces it.
fn is_whisper_punct(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | '?' | '!' | ':' | ';' | '"' | '\'' | '…' | '(' | ')' | '-' | '“' | '”'
    )
}

/// A refused rule, naming its key.
#[derive(Debug, thiserror::Error)]
#[error("[text] {key}: {problem}")]
pub struct RuleError {
    /// The key (`replacements."k8s"`).
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

/// The rules a `[text]` table sets up, ready to apply.
#[derive(Debug, Clone, Default)]
pub struct TextRules {
    commands: Vec<Command>,
    longest_command: usize,
    /// Word sequences of several words that a rule turns into something else (commands,
    /// plain replacements): their beginnings wait at the end of provisional stable text.
    phrases: Vec<Vec<String>>,
    replacements: Vec<(Regex, String)>,
    fillers: Vec<String>,
}

impl TextRules {
    /// The rules of `table` (`[text]`); the defaults where it is silent, none when `rules =
    /// false`.
    pub fn new(table: &TextTable) -> Result<TextRules, RuleError> {
        if table.rules == Some(false) {
            return Ok(TextRules::default());
        }
        let mut rules = TextRules::default();
        if table.spoken_punctuation != Some(false) {
            let mut entries: Vec<(String, String)> = DEFAULT_PUNCTUATION
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for (k, v) in table.punctuation.iter().flatten() {
                let key = normalise(k);
                if key.is_empty() {
                    return Err(RuleError {
                        key: format!("punctuation.{k:?}"),
                        problem: "a command needs a word".into(),
                    });
                }
                entries.retain(|(e, _)| *e != key);
                if !v.is_empty() {
                    entries.push((key, v.clone()));
                }
            }
            rules.commands = entries
                .into_iter()
                .map(|(k, mark)| command(&k, mark))
                .collect();
            // Longest first: "new paragraph" before "new line" never clash, but "semi colon"
            // must win over "colon" on its second word.
            rules
                .commands
                .sort_by_key(|c| std::cmp::Reverse(c.words.len()));
            rules.longest_command = rules.commands.first().map_or(0, |c| c.words.len());
        }
        let mut replacements: Vec<(String, Regex, String)> = Vec::new();
        for (k, v) in table.replacements.iter().flatten() {
            let words = normalise(k);
            if words.is_empty() {
                return Err(RuleError {
                    key: format!("replacements.{k:?}"),
                    problem: "nothing to replace".into(),
                });
            }
            let escaped = regex::escape(k.trim());
            let start = if k.trim().starts_with(|c: char| c.is_alphanumeric()) {
                r"\b"
            } else {
                ""
            };
            let end = if k.trim().ends_with(|c: char| c.is_alphanumeric()) {
                r"\b"
            } else {
                ""
            };
            let re = RegexBuilder::new(&format!("{start}{escaped}{end}"))
                .case_insensitive(true)
                .build()
                .map_err(|e| RuleError {
                    key: format!("replacements.{k:?}"),
                    problem: e.to_string(),
                })?;
            replacements.push((k.clone(), re, v.clone()));
        }
        // Longer phrases first, so "new york times" is replaced before "new york".
        replacements.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        rules.phrases = rules
            .commands
            .iter()
            .map(|c| c.words.clone())
            .chain(
                replacements
                    .iter()
                    .map(|(k, _, _)| normalise(k).split(' ').map(str::to_string).collect()),
            )
            .filter(|w: &Vec<String>| w.len() > 1)
            .collect();
        for (k, v) in table.regex_replacements.iter().flatten() {
            let re = Regex::new(k).map_err(|e| RuleError {
                key: format!("regex_replacements.{k:?}"),
                problem: e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            })?;
            replacements.push((k.clone(), re, v.clone()));
        }
        rules.replacements = replacements.into_iter().map(|(_, re, v)| (re, v)).collect();
        rules.fillers = match &table.fillers {
            Some(f) => f
                .iter()
                .map(|w| normalise(w))
                .filter(|w| !w.is_empty())
                .collect(),
            None => DEFAULT_FILLERS.iter().map(|w| w.to_string()).collect(),
        };
        Ok(rules)
    }

    /// The default rules (an empty `[text]` table).
    pub fn defaults() -> TextRules {
        TextRules::new(&TextTable::default()).expect("the defaults are valid")
    }

    /// Whether any rule is set up.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.replacements.is_empty() && self.fillers.is_empty()
    }

    /// `text` with every rule applied.
    pub fn apply(&self, text: &str) -> String {
        self.run(text, true)
    }

    /// `text` with the replacements and fillers only: a recording's "period" is a word.
    pub fn apply_verbatim(&self, text: &str) -> String {
        self.run(text, false)
    }

    /// Provisional text: `stable` (only grows) and its `tentative` tail, both with the rules
    /// applied. Words at the end of `stable` that may begin a command ("new", "question")
    /// wait in the tentative part, so a command completed by the next pass does not take
    /// back stable text.
    pub fn apply_provisional(&self, stable: &str, tentative: &str) -> (String, String) {
        let words: Vec<&str> = stable.split_whitespace().collect();
        let held = self.held_back(&words);
        let kept = words[..words.len() - held].join(" ");
        let moved = words[words.len() - held..].join(" ");
        let stable_out = self.apply(&kept);
        let full = self.apply(&join(&[&kept, &moved, tentative]));
        let tentative_out = match full.strip_prefix(stable_out.as_str()) {
            Some(rest) if !stable_out.is_empty() => rest.trim_start_matches(' ').to_string(),
            _ if stable_out.is_empty() => full,
            _ => self.apply(&join(&[&moved, tentative])),
        };
        (stable_out, tentative_out)
    }

    /// How many of the last `words` are the start of a longer command or replaced phrase.
    fn held_back(&self, words: &[&str]) -> usize {
        let longest = self.phrases.iter().map(Vec::len).max().unwrap_or(0);
        for n in (1..longest.min(words.len() + 1)).rev() {
            let tail: Vec<String> = words[words.len() - n..].iter().map(|w| core(w).1).collect();
            if self
                .phrases
                .iter()
                .any(|p| p.len() > n && p[..n] == tail[..])
            {
                return n;
            }
        }
        0
    }

    fn run(&self, text: &str, punctuation: bool) -> String {
        let mut t = text.to_string();
        for (re, to) in &self.replacements {
            t = re.replace_all(&t, to.as_str()).into_owned();
        }
        let tokens: Vec<&str> = t.split_whitespace().collect();
        let mut out: Vec<Piece> = Vec::with_capacity(tokens.len());
        let mut capitalise_next = false;
        let mut i = 0;
        while i < tokens.len() {
            if punctuation && let Some((n, c)) = self.command_at(&tokens, i, &out) {
                // Whisper's guess before a mark gives way to it; a line break keeps it.
                if matches!(c.glue, Glue::Left | Glue::Both)
                    && let Some(Piece::Word(w)) = out.last_mut()
                {
                    let trimmed = w.trim_end_matches(is_whisper_punct).len();
                    if trimmed > 0 {
                        w.truncate(trimmed);
                    }
                }
                out.push(Piece::Mark(c.mark.clone(), c.glue));
                capitalise_next |= c.ends_sentence;
                i += n;
                continue;
            }
            let (_, word) = core(tokens[i]);
            if self.fillers.contains(&word) {
                let tail: String = tokens[i]
                    .chars()
                    .rev()
                    .take_while(|&c| is_whisper_punct(c))
                    .collect();
                let at_start = out
                    .last()
                    .is_none_or(|p| matches!(p, Piece::Mark(_, Glue::Line)) || p.ends_sentence());
                if let Some(end) = tail.chars().find(|c| matches!(c, '.' | '?' | '!')) {
                    // "we go, um." : the sentence ends on the word before.
                    if let Some(Piece::Word(w)) = out.last_mut() {
                        let kept = w.trim_end_matches([',', ';', ':']).len();
                        w.truncate(kept);
                        if !w.ends_with(['.', '?', '!']) {
                            w.push(end);
                        }
                    }
                    capitalise_next = true;
                } else if tail.contains(',')
                    && let Some(Piece::Word(w)) = out.last_mut()
                    && w.ends_with(',')
                {
                    // ", um," was Whisper's way of setting the filler apart.
                    w.pop();
                }
                if at_start && tokens[i].starts_with(|c: char| c.is_uppercase()) {
                    capitalise_next = true;
                }
                i += 1;
                continue;
            }
            let mut w = tokens[i].to_string();
            if capitalise_next {
                w = capitalise(&w);
                capitalise_next = false;
            }
            out.push(Piece::Word(w));
            i += 1;
        }
        render(&out)
    }

    /// The command starting at `tokens[i]`, with how many tokens it takes; none after a
    /// determiner.
    fn command_at(&self, tokens: &[&str], i: usize, before: &[Piece]) -> Option<(usize, &Command)> {
        let end = (i + self.longest_command).min(tokens.len());
        let words: Vec<String> = tokens[i..end].iter().map(|t| core(t).1).collect();
        let c = self
            .commands
            .iter()
            .find(|c| c.words.len() <= words.len() && c.words[..] == words[..c.words.len()])?;
        if let Some(Piece::Word(w)) = before.last() {
            let (bare, lower) = core(w);
            if bare && DETERMINERS.contains(&lower.as_str()) {
                return None;
            }
        }
        Some((c.words.len(), c))
    }
}

/// What the rebuilt text is made of.
#[derive(Debug)]
enum Piece {
    Word(String),
    Mark(String, Glue),
}

impl Piece {
    fn ends_sentence(&self) -> bool {
        match self {
            Piece::Word(w) => w.ends_with(['.', '?', '!']),
            Piece::Mark(m, _) => m.ends_with(['.', '?', '!']),
        }
    }
}

fn render(pieces: &[Piece]) -> String {
    let mut out = String::new();
    let mut glue_next = true;
    for p in pieces {
        let (text, glue) = match p {
            Piece::Word(w) => (w.as_str(), None),
            Piece::Mark(m, g) => (m.as_str(), Some(*g)),
        };
        let glue_left = matches!(glue, Some(Glue::Left | Glue::Both | Glue::Line));
        if !glue_next && !glue_left {
            out.push(' ');
        }
        if glue == Some(Glue::Line) {
            while out.ends_with(' ') {
                out.pop();
            }
        }
        out.push_str(text);
        glue_next = matches!(glue, Some(Glue::Right | Glue::Both | Glue::Line));
    }
    out.trim_matches(' ').to_string()
}

/// A command from its table entry: its words and how its mark joins the text.
fn command(key: &str, mark: String) -> Command {
    let words: Vec<String> = key.split(' ').map(str::to_string).collect();
    let opening = words
        .first()
        .is_some_and(|w| matches!(w.as_str(), "open" | "begin" | "start"));
    let glue = if mark.contains('\n') {
        Glue::Line
    } else if mark.starts_with(['(', '[', '{', '“', '‘', '¿', '¡']) || (opening && mark.len() <= 3)
    {
        Glue::Right
    } else if matches!(mark.as_str(), "-" | "/" | "_") {
        Glue::Both
    } else {
        Glue::Left
    };
    let ends_sentence = mark.ends_with(['.', '?', '!']) && mark != "..." || mark.contains('\n');
    Command {
        words,
        mark,
        glue,
        ends_sentence,
    }
}

/// Whether `token` is a bare word (no punctuation on it), and its lower-case letters.
fn core(token: &str) -> (bool, String) {
    let bare = token.trim_matches(is_whisper_punct);
    (bare.len() == token.len(), bare.to_lowercase())
}

/// Lower case, single spaces, no punctuation: how table keys and heard words compare.
fn normalise(s: &str) -> String {
    s.split_whitespace()
        .map(|w| w.trim_matches(is_whisper_punct).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) if f.is_lowercase() => f.to_uppercase().chain(c).collect(),
        _ => w.to_string(),
    }
}

fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
