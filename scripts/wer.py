#!/usr/bin/env python3
"""Scores bench-quant.sh's transcripts: one `quant:` line per variant.

  wer.py SETS_DIR MODEL.VARIANT MODEL
      reads SETS_DIR/{dev,hard}.tsv (file<TAB>truth) and SETS_DIR/MODEL.VARIANT.{dev,hard}.jsonl
      (v2m-worker transcribe --report --whole); the normaliser is v2m_worker::eval's.
"""
import json
import re
import statistics as st
import sys

NUMBERS = dict(zip("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                   "fifteen sixteen seventeen eighteen nineteen".split(), map(str, range(20))))
NUMBERS.update(twenty="20", thirty="30", forty="40", fifty="50", sixty="60", seventy="70", eighty="80",
               ninety="90")
ABBREV = {"mister": "mr", "missus": "mrs", "doctor": "dr"}


def words(text):
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text).replace("'", "")
    return [NUMBERS.get(w, ABBREV.get(w, w)) for w in text.split()]


def edits(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def score(sets, label, name):
    truth = dict(line.rstrip("\n").split("\t", 1) for line in open(f"{sets}/{name}.tsv"))
    rows = [json.loads(line) for line in open(f"{sets}/{label}.{name}.jsonl")]
    mem = rows.pop() if rows and "peak_rss_mb" in rows[-1] else {}
    e = n = 0
    for r in rows:
        t = words(truth[r["file"]])
        e += edits(t, words(r["text"]))
        n += len(t)
    return 100 * e / max(n, 1), rows, mem


def main():
    sets, label, model = sys.argv[1:4]
    dev, rows, _ = score(sets, label, "dev")
    hard, more, mem = score(sets, label, "hard")
    rows += more
    p50 = lambda k: st.median(r[k] for r in rows)  # noqa: E731
    print(f"quant: model={model} variant={label[len(model) + 1:]} dev_wer={dev:.1f}% hard_wer={hard:.1f}% "
          f"encoder_p50_ms={p50('encoder_ms'):.0f} token_p50_ms={p50('token_ms'):.2f} "
          f"utterance_p50_ms={p50('total_ms'):.0f} "
          f"rss_mb={mem.get('peak_rss_mb', 0):.0f}", flush=True)


if __name__ == "__main__":
    main()
