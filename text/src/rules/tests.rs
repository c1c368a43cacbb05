use super::*;
use std::collections::BTreeMap;

fn table(replacements: &[(&str, &str)], regex: &[(&str, &str)]) -> TextTable {
    let map = |pairs: &[(&str, &str)]| -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    TextTable {
        replacements: map(replacements),
        regex_replacements: map(regex),
        ..TextTable::default()
    }
}

#[test]
fn spoken_punctuation_in_the_middle_and_at_the_end() {
    let r = TextRules::defaults();
    let cases = [
        // Whisper's own punctuation around a command gives way to the command.
        (
            "Hello comma, how are you question mark?",
            "Hello, how are you?",
        ),
        ("Hello, comma, world period.", "Hello, world."),
        (
            "It works period it is fast full stop",
            "It works. It is fast.",
        ),
        ("Really exclamation mark", "Really!"),
        (
            "Dear John comma new line Thanks for the note.",
            "Dear John,\nThanks for the note.",
        ),
        ("First. New paragraph. Second.", "First.\n\nSecond."),
        (
            "Three items colon apples semicolon pears",
            "Three items: apples; pears",
        ),
        (
            "He said open quote hello close quote and left.",
            "He said \"hello\" and left.",
        ),
        ("a well hyphen known fact", "a well-known fact"),
        ("Wait dot dot dot okay", "Wait... okay"),
        (
            "Costs open parenthesis roughly close parenthesis",
            "Costs (roughly)",
        ),
        ("period", "."),
    ];
    for (heard, want) in cases {
        assert_eq!(r.apply(heard), want, "{heard:?}");
    }
}

#[test]
fn command_words_used_as_words_are_left_alone() {
    let r = TextRules::defaults();
    for text in [
        "It took a period of time.",
        "Put the comma there.",
        "That colon is inflamed.",
        "A new line of products.",
        "Nothing to change here, none at all.",
        "",
    ] {
        assert_eq!(r.apply(text), text, "{text:?}");
    }
}

#[test]
fn replacements_keep_their_case_and_match_whole_words() {
    let r = TextRules::new(&table(
        &[("jason", "JSON"), ("new york", "New York"), ("c++", "C++")],
        &[(r"\bk ?8 ?s\b", "Kubernetes"), (r"(\d+) percent", "$1%")],
    ))
    .unwrap();
    let cases = [
        ("Parse the Jason file", "Parse the JSON file"),
        ("JASON and jason.", "JSON and JSON."),
        ("Jasonville stays", "Jasonville stays"),
        (
            "flights to new york comma daily",
            "flights to New York, daily",
        ),
        (
            "deploy on k8s and k 8 s",
            "deploy on Kubernetes and Kubernetes",
        ),
        ("up 12 percent", "up 12%"),
        ("I write c++ daily", "I write C++ daily"),
    ];
    for (heard, want) in cases {
        assert_eq!(r.apply(heard), want, "{heard:?}");
    }
}

#[test]
fn fillers_go_with_the_punctuation_that_set_them_apart() {
    let r = TextRules::defaults();
    let cases = [
        ("Um, I think so.", "I think so."),
        ("I think, um, that it works.", "I think that it works."),
        ("So uh we go.", "So we go."),
        ("We go, um. Then we stop.", "We go. Then we stop."),
        ("Erm. Hello.", "Hello."),
        ("It's, uh, fine comma really", "It's fine, really"),
        ("Umbrella and hummus stay", "Umbrella and hummus stay"),
    ];
    for (heard, want) in cases {
        assert_eq!(r.apply(heard), want, "{heard:?}");
    }
}

#[test]
fn capitals_after_an_inserted_sentence_end() {
    let r = TextRules::defaults();
    assert_eq!(r.apply("done period next one"), "done. Next one");
    assert_eq!(r.apply("why question mark because"), "why? Because");
    assert_eq!(r.apply("see new line you"), "see\nYou");
    // A comma starts no sentence.
    assert_eq!(r.apply("yes comma sir"), "yes, sir");
}

#[test]
fn verbatim_keeps_spoken_punctuation_words() {
    let r = TextRules::new(&table(&[("jason", "JSON")], &[])).unwrap();
    assert_eq!(
        r.apply_verbatim("The jason period, um, ended."),
        "The JSON period ended."
    );
}

#[test]
fn switches_and_user_commands() {
    let off = TextRules::new(&TextTable {
        rules: Some(false),
        ..TextTable::default()
    })
    .unwrap();
    assert!(off.is_empty());
    assert_eq!(off.apply("um hello comma"), "um hello comma");
    let no_punct = TextRules::new(&TextTable {
        spoken_punctuation: Some(false),
        ..TextTable::default()
    })
    .unwrap();
    assert_eq!(no_punct.apply("um hello comma"), "hello comma");
    let mut punctuation = BTreeMap::new();
    punctuation.insert("smiley face".to_string(), ":-)".to_string());
    punctuation.insert("Period".to_string(), String::new());
    let custom = TextRules::new(&TextTable {
        punctuation: Some(punctuation),
        fillers: Some(vec!["like".into()]),
        ..TextTable::default()
    })
    .unwrap();
    assert_eq!(
        custom.apply("it was like great smiley face period"),
        "it was great:-) period"
    );
}

#[test]
fn bad_rules_are_refused_with_their_key() {
    let e = TextRules::new(&table(&[], &[("(unclosed", "x")])).unwrap_err();
    assert!(
        e.to_string().contains("regex_replacements.\"(unclosed\""),
        "{e}"
    );
    let e = TextRules::new(&table(&[("  ", "x")], &[])).unwrap_err();
    assert!(e.to_string().contains("replacements"), "{e}");
}

#[test]
fn provisional_text_holds_back_a_command_begun_at_its_end() {
    let r = TextRules::defaults();
    // "new" may begin "new line": it waits in the tentative part.
    assert_eq!(
        r.apply_provisional("Dear John comma new", "line thanks"),
        ("Dear John,".to_string(), "\nThanks".to_string())
    );
    // The next pass completes the command: the stable text only grew.
    let (stable, tentative) = r.apply_provisional("Dear John comma new line", "thanks");
    assert!(stable.starts_with("Dear John,"), "{stable:?}");
    assert_eq!(format!("{stable}{tentative}"), "Dear John,\nThanks");
    // A command in the tentative part.
    assert_eq!(
        r.apply_provisional("Hello", "comma world"),
        ("Hello".to_string(), ", world".to_string())
    );
    assert_eq!(
        r.apply_provisional("", "um hello"),
        (String::new(), "hello".to_string())
    );
}

#[test]
fn provisional_text_holds_back_the_start_of_a_replaced_phrase() {
    let r = TextRules::new(&table(&[("x eleven", "X11")], &[])).unwrap();
    let (stable, tentative) = r.apply_provisional("runs on x", "eleven");
    assert_eq!(stable, "runs on");
    assert_eq!(tentative, "X11");
    let (stable, _) = r.apply_provisional("runs on x eleven", "");
    assert_eq!(stable, "runs on X11");
}
