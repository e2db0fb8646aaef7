"""Near-duplicate machinery: datasketch-equal signatures, exact counts of exact and near duplicates, dedup output."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from alignline.cli import main
from alignline.data.quality.check import run_checks
from alignline.data.quality.dedup import DuplicateFinder, components
from alignline.data.quality.gates import load_gate_config
from alignline.data.quality.minhash import MinHasher, optimal_bands, signatures_from_shingles
from alignline.data.quality.text import WordBatch, fold32, ngram_hashes, normalized, word_hashes, words
from support import write_jsonl

VOCAB = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "su", "ti", "va", "ze") for b in range(500)]


def passage(rng: random.Random, n: int = 80) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def dup_dataset() -> tuple[list[dict], dict]:
    """60 unique chats; +6 exact copies (4 singles, 1 group of 3), +3 near copies, +1 half-changed control."""
    rng = random.Random(7)
    base = [passage(rng) for _ in range(60)]

    def chat(text: str) -> dict:  # the first 30 words ask, the rest answer
        cut = [i for i, ch in enumerate(text) if ch == " "][29]
        return {
            "messages": [{"role": "user", "content": text[:cut]}, {"role": "assistant", "content": text[cut + 1 :]}]
        }

    recs = [chat(t) for t in base]

    for i in range(4):  # exact after normalization: case, punctuation, spacing
        recs.append(chat(base[i].upper().replace(" ", "  ", 3).replace(" ", " , ", 50) + " !"))
    recs += [chat(base[4]), chat(base[4])]
    for i in (10, 11, 12):  # one word appended: Jaccard of word 3-grams 78/79
        recs.append(chat(base[i] + " extraword"))
    half = base[20].split()
    recs.append(chat(" ".join(half[:40] + [rng.choice(VOCAB) for _ in range(40)])))  # Jaccard ~0.3: not a dup
    return recs, {"n": 70, "exact": 6, "near": 3, "clusters": 8}


def test_signatures_equal_datasketch():
    datasketch = pytest.importorskip("datasketch")
    hasher = MinHasher(num_perm=64, ngram=3)
    texts = ["The quick brown fox jumps over the lazy dog again", "a b", "one two three four five"]
    per = [word_hashes(words(t)) for t in texts]
    sig = hasher.signatures(per)
    h, owner = ngram_hashes(per, 3)
    for i in range(len(texts)):
        m = datasketch.MinHash(num_perm=64, seed=1, hashfunc=lambda x: x)
        m.update_batch([int(x) for x in fold32(h[owner == i])])
        assert np.array_equal(m.hashvalues, sig[i])


def test_signatures_do_not_depend_on_chunking():
    hasher = MinHasher(num_perm=32, ngram=2)
    batch = WordBatch.of([words("a b c d e f g"), [], words("x y"), words("q r s t u v w x y z")])
    h, owner = ngram_hashes(batch, 2)
    whole = signatures_from_shingles(fold32(h), owner, 4, hasher.a, hasher.b)
    assert np.array_equal(whole, signatures_from_shingles(fold32(h), owner, 4, hasher.a, hasher.b, chunk=3))
    assert np.array_equal(whole, hasher.signatures(batch)) and (whole[1] == 0xFFFFFFFF).all()


def test_band_parameters_follow_datasketch_rule():
    lsh = pytest.importorskip("datasketch.lsh")
    for t in (0.5, 0.8, 0.9):
        assert optimal_bands(t, 128) == lsh._optimal_param(t, 128, 0.5, 0.5)
    assert MinHasher(128, 3, 0.8).bands * MinHasher(128, 3, 0.8).rows <= 128


def test_ngram_hashes_respect_record_boundaries():
    per = [word_hashes(["a", "b", "c", "d"]), word_hashes(["x"]), word_hashes([])]
    h, owner = ngram_hashes(per, 3)
    assert owner.tolist() == [0, 0, 1]  # 2 trigrams of the first, 1 whole-record shingle of the short one
    h2, owner2 = ngram_hashes(per, 3, short=False)
    assert owner2.tolist() == [0, 0]
    assert normalized("Hello,  WORLD!") == "hello world"


def test_components_and_finder_counts(tmp_path):
    assert components(5, np.array([0, 3]), np.array([1, 4])).tolist() == [0, 0, 2, 3, 3]
    recs, want = dup_dataset()
    finder = DuplicateFinder(MinHasher(128, 3, 0.8), workdir=str(tmp_path))
    texts = ["\n".join(m["content"] for m in r["messages"]) for r in recs]
    ws = [words(t) for t in texts]
    finder.add(WordBatch.of(ws[:33]), [" ".join(w) for w in ws[:33]])  # two batches
    finder.add(WordBatch.of(ws[33:]), [" ".join(w) for w in ws[33:]])
    res = finder.finish()
    assert (res.n, res.exact_removed, res.near_removed, res.cluster_count()) == (70, 6, 3, 8)
    keep = res.keep_mask()
    assert keep[:60].all() and not keep[60:69].any() and keep[69]  # the first of each cluster stays
    assert list(tmp_path.iterdir()) == []  # the signature file is gone


def test_check_reports_duplicates_and_gate(tmp_path):
    recs, want = dup_dataset()
    path = write_jsonl(tmp_path / "train.jsonl", recs)
    report = run_checks([str(path)], None, load_gate_config(), progress=False)
    d = report["duplicates"]
    assert (d["records"], d["exact_duplicates"], d["near_duplicates"], d["clusters"]) == (70, 6, 3, 8)
    assert d["duplicate_share"] == pytest.approx(9 / 70)
    top = d["largest_clusters"][0]
    assert top["size"] == 3 and top["exact"] and top["member_ids"][0].endswith("line 5")
    assert all(c["examples"] for c in d["largest_clusters"])
    g = next(g for g in report["gates"] if g["name"] == "duplicate_share")
    assert g["passed"] is False and g["threshold"] == 0.02


def test_dedup_command_keeps_one_per_cluster(tmp_path, capsys):
    recs, _ = dup_dataset()
    path = write_jsonl(tmp_path / "train.jsonl", recs)
    out = tmp_path / "clean.jsonl"
    assert main(["data", "dedup", str(path), "--out", str(out), "--quiet"]) == 0
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert kept == recs[:60] + recs[69:]
    assert "kept 61 of 70 records (6 exact and 3 near duplicates removed, 8 clusters)" in capsys.readouterr().out
    # CSV out, read back by the check: the deduplicated copy has no duplicates left
    out2 = tmp_path / "clean.csv"
    assert main(["data", "dedup", str(path), "--out", str(out2), "--quiet"]) == 0
    assert (
        main(["data", "check", str(out2), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    )  # no refusals: a warning only
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["records"] == 61 and report["duplicates"]["removed_by_dedup"] == 0


def test_dedup_refuses_to_overwrite_its_input(tmp_path, capsys):
    path = write_jsonl(tmp_path / "train.jsonl", dup_dataset()[0])
    assert main(["data", "dedup", str(path), "--out", str(path), "--quiet"]) == 2
    assert "overwrite the input" in capsys.readouterr().err
